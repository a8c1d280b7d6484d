"""Text helpers: word tokens, token estimates, message content."""

from __future__ import annotations

import re
from typing import Any

_TOKEN_RE = re.compile(r"\s*\S+")


def split_tokens(text: str) -> list[str]:
    """Split into word tokens (leading whitespace attached); ``"".join`` == text."""
    if not text:
        return []
    toks = _TOKEN_RE.findall(text)
    if not toks:
        return [text]
    consumed = sum(map(len, toks))
    if consumed != len(text):  # trailing whitespace
        toks[-1] += text[consumed:]
    return toks


def estimate_tokens(text: str) -> int:
    """Token estimate: ``max(words, ceil(chars / 4))``."""
    if not text:
        return 0
    return max(len(text.split()), (len(text) + 3) // 4)


def content_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                t = p.get("text")
                if isinstance(t, str):
                    parts.append(t)
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return str(content)
