"""Guardrails: checks on the user's input before the model sees it, and on the output after.

They run as agno pre/post hooks on the *current* input only (history goes in separately), and a
trip becomes a `guardrail` event in the run, shown in the chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import jsonschema
from agno.exceptions import CheckTrigger, InputCheckError, OutputCheckError

from agents.config import Guardrails

PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "credit_card": re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "phone": re.compile(r"(?<!\w)\+?\d[\d\s().-]{7,}\d\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"),
}
INJECTION_PATTERNS = [
    r"ignore (all |any )?(the )?(previous|prior|above) (instructions|prompts?)",
    r"disregard (all |any )?(the )?(previous|prior|above)",
    r"forget (everything|all) (you|that)",
    r"you are now (in )?(developer|dan|jailbreak)",
    r"reveal (your|the) (system )?(prompt|instructions)",
    r"act as (an? )?unrestricted",
    r"\bjailbreak\b",
]
_INJECTION_RE = re.compile("|".join(INJECTION_PATTERNS), re.IGNORECASE)


@dataclass
class Trip:
    stage: str
    rule: str
    message: str
    blocks: bool = False  # it stopped the run (the input hook's, as it raises)


def redact_pii(text: str) -> tuple[str, list[str]]:
    found: list[str] = []
    for name, pattern in PII_PATTERNS.items():
        text, n = pattern.subn(f"[{name.upper()} REDACTED]", text)
        if n:
            found.append(name)
    return text, found


def check_input(text: str, rules: Guardrails) -> tuple[str, list[Trip], Trip | None]:
    """Returns (possibly redacted text, non-blocking notes, blocking trip or None)."""
    notes: list[Trip] = []
    cfg = rules.input
    if cfg.max_length and len(text) > cfg.max_length:
        return (
            text,
            notes,
            Trip(
                "input",
                "max_length",
                f"The message is {len(text)} characters; this agent accepts at most {cfg.max_length}.",
            ),
        )
    if cfg.prompt_injection and _INJECTION_RE.search(text):
        return (
            text,
            notes,
            Trip("input", "prompt_injection", "The message looks like a prompt-injection attempt."),
        )
    lowered = text.lower()
    for topic in cfg.blocked_topics:
        if topic.strip() and re.search(rf"\b{re.escape(topic.strip().lower())}\b", lowered):
            return (
                text,
                notes,
                Trip("input", "blocked_topic", f"This agent does not discuss “{topic.strip()}”."),
            )
    if cfg.pii_redaction:
        text, found = redact_pii(text)
        if found:
            notes.append(
                Trip("input", "pii_redaction", f"Redacted before sending to the model: {', '.join(found)}.")
            )
    return text, notes, None


def check_output(
    content: Any, rules: Guardrails, schema: dict[str, Any] | None
) -> tuple[Any, list[Trip], Trip | None]:
    notes: list[Trip] = []
    effective_schema = rules.output.json_schema or schema
    if effective_schema is not None:
        if not isinstance(content, dict | list):
            return content, notes, Trip("output", "json_schema", "The model did not return JSON.")
        try:
            jsonschema.validate(content, effective_schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            return (
                content,
                notes,
                Trip("output", "json_schema", f"The output fails its schema at {where}: {exc.message}"),
            )
    if rules.output.pii_redaction and isinstance(content, str):
        content, found = redact_pii(content)
        if found:
            notes.append(Trip("output", "pii_redaction", f"Redacted from the reply: {', '.join(found)}."))
    return content, notes, None


def input_hook(rules: Guardrails, on_trip: Any) -> Any:
    """An agno pre-hook applying `check_input` to the current input and reporting trips through on_trip."""

    def guard(run_input: Any) -> None:
        text = run_input.input_content_string()
        new_text, notes, blocking = check_input(text, rules)
        for note in notes:
            on_trip(note)
        if blocking is not None:
            on_trip(replace(blocking, blocks=True))
            raise InputCheckError(blocking.message, check_trigger=CheckTrigger.INPUT_NOT_ALLOWED)
        if new_text != text:
            run_input.input_content = new_text

    return guard


__all__ = [
    "InputCheckError",
    "OutputCheckError",
    "Trip",
    "check_input",
    "check_output",
    "input_hook",
    "redact_pii",
]
