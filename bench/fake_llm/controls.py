"""Parsing of the ``[[...]]`` control markers in the last user message."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .common import raw_decode


@dataclass(frozen=True)
class Controls:
    """Parsed control markers of one user message."""

    text: str  # message text with all markers removed (stripped)
    tools: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON text)
    error: tuple[int, int | None] | None = None  # (status, fail_first_n)
    reply: str | None = None
    json_text: str | None = None
    latency_ms: float | None = None
    first_token_ms: float | None = None
    clock: int | None = None  # stream this many tokens, each the wall-clock time (ns) it was sent


_MARKER_RE = re.compile(r"\[\[(tool|error|reply|json|latency|first_token|clock):")
_TOOL_NAME_RE = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*")
_CLOSE_RE = re.compile(r"\s*\]\]")
_ERROR_RE = re.compile(r"\s*(\d{3})\s*(?::\s*(\d+)\s*)?\]\]")
_NUMBER_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*\]\]")
_WS_START_RE = re.compile(r"\s*")


@lru_cache(maxsize=4096)
def parse_controls(text: str) -> Controls:
    """Parse ``[[...]]`` control markers out of ``text``.

    Malformed markers are left in the text untouched.
    """
    if "[[" not in text:
        return Controls(text=text.strip())
    tools: list[tuple[str, str]] = []
    error = reply = json_text = latency = first_token = clock = None
    kept: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _MARKER_RE.search(text, pos)
        if m is None:
            break
        kind = m.group(1)
        start, cur = m.start(), m.end()
        end = -1
        if kind == "tool":
            nm = _TOOL_NAME_RE.match(text, cur)
            if nm:
                name, cur = nm.group(1), nm.end()
                args: Any = {}
                ok = True
                if cur < n and text[cur] != "]":
                    try:
                        args, cur = raw_decode(text, cur)
                    except ValueError:
                        ok = False
                if ok:
                    cm = _CLOSE_RE.match(text, cur)
                    if cm:
                        tools.append((name, json.dumps(args)))
                        end = cm.end()
        elif kind == "json":
            jstart = _WS_START_RE.match(text, cur).end()  # type: ignore[union-attr]
            try:
                _value, cur2 = raw_decode(text, jstart)
            except ValueError:
                cur2 = -1
            if cur2 >= 0:
                cm = _CLOSE_RE.match(text, cur2)
                if cm:
                    json_text = text[jstart:cur2]
                    end = cm.end()
        elif kind == "reply":
            close = text.find("]]", cur)
            if close >= 0:
                reply = text[cur:close]
                end = close + 2
        elif kind == "error":
            em = _ERROR_RE.match(text, cur)
            if em:
                error = (int(em.group(1)), int(em.group(2)) if em.group(2) else None)
                end = em.end()
        else:  # latency / first_token / clock
            nm2 = _NUMBER_RE.match(text, cur)
            if nm2:
                if kind == "latency":
                    latency = float(nm2.group(1))
                elif kind == "clock":
                    clock = int(float(nm2.group(1)))
                else:
                    first_token = float(nm2.group(1))
                end = nm2.end()
        if end < 0:  # malformed: keep the "[[" literally and continue after it
            kept.append(text[pos : start + 2])
            pos = start + 2
            continue
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    clean = " ".join(seg for seg in (k.strip() for k in kept) if seg)
    return Controls(
        text=clean,
        tools=tuple(tools),
        error=error,
        reply=reply,
        json_text=json_text,
        latency_ms=latency,
        first_token_ms=first_token,
        clock=clock,
    )
