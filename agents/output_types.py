"""Built-in output types. `text` is free text; the others are JSON Schemas the reply must satisfy."""

from __future__ import annotations

from typing import Any

from agents.config import OutputType

BUILTIN_OUTPUT_TYPES: dict[str, dict[str, Any]] = {
    "text": {"description": "Free text (markdown).", "schema": None},
    "classification": {
        "description": "One label from a set, with a confidence between 0 and 1.",
        "schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reason": {"type": "string"},
            },
            "required": ["label", "confidence"],
        },
    },
    "extraction": {
        "description": "Entities pulled out of the input: type and value, with an optional source span.",
        "schema": {
            "type": "object",
            "properties": {
                "entities": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string"},
                            "value": {"type": "string"},
                            "source": {"type": "string"},
                        },
                        "required": ["type", "value"],
                    },
                }
            },
            "required": ["entities"],
        },
    },
    "summary": {
        "description": "A short summary and its key points.",
        "schema": {
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "key_points": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["summary", "key_points"],
        },
    },
}


def resolve_schema(output_type: OutputType) -> dict[str, Any] | None:
    """The JSON Schema a reply must satisfy, or None for free text. A custom schema wins over the name."""
    if output_type.schema_ is not None:
        return output_type.schema_
    builtin = BUILTIN_OUTPUT_TYPES.get(output_type.name)
    return builtin["schema"] if builtin else None
