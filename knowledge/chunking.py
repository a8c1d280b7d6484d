"""Split extracted units into chunks of at most `size` tokens sharing `overlap` tokens.

Tokens: a word (`\\w+`) or a single punctuation mark, found with one regex. That is close enough to a
BPE token count for sizing chunks (English BPE runs ~1.3 tokens per word; punctuation counted apart
brings ours near it), needs no model files, and is fast. Chunks are cut on token boundaries and
keep the original text between them (spacing, newlines), so `token_count` is exact for our tokenizer.

Strategies, always within one unit (a page, slide, sheet or section), so a chunk has one page:
- fixed: windows of `size` tokens, each starting `size - overlap` tokens after the previous one;
- recursive: cut at paragraphs, then lines, then sentences, then words until every piece fits,
  pack neighbouring pieces up to `size - overlap`, then prefix each chunk with the last `overlap`
  tokens before it;
- markdown: sections split at headings (units without headings are split at their `#` lines),
  small neighbouring sections merged only under the same top-level heading, then as recursive.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from knowledge.extraction import Unit, markdown_sections

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
FIXED, RECURSIVE, MARKDOWN = "fixed", "recursive", "markdown"
_SEPARATORS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?;:])\s+"))


@dataclass
class ChunkDraft:
    text: str
    ordinal: int
    metadata: dict[str, Any] = field(default_factory=dict)
    token_count: int = 0


def count_tokens(text: str) -> int:
    return sum(1 for _ in TOKEN_RE.finditer(text))


class _Tokens:
    """Token spans of one text, for cutting it on token boundaries."""

    def __init__(self, text: str) -> None:
        self.text = text
        spans = [m.span() for m in TOKEN_RE.finditer(text)]
        self.starts = [s for s, _e in spans]
        self.ends = [e for _s, e in spans]

    def __len__(self) -> int:
        return len(self.starts)

    def index(self, char: int) -> int:
        """Index of the first token starting at or after `char`."""
        return bisect_left(self.starts, char)

    def slice(self, first: int, stop: int) -> str:
        return self.text[self.starts[first] : self.ends[stop - 1]]


def _fixed(tokens: _Tokens, size: int, overlap: int) -> list[tuple[int, int]]:
    windows, start, n = [], 0, len(tokens)
    while start < n:
        stop = min(start + size, n)
        windows.append((start, stop))
        if stop == n:
            break
        start = stop - overlap
    return windows


def _pieces(tokens: _Tokens, first: int, stop: int, level: int, budget: int) -> list[tuple[int, int]]:
    """Token ranges of at most `budget` tokens, cut at the coarsest separator that makes them fit."""
    if stop - first <= budget:
        return [(first, stop)] if stop > first else []
    if level == len(_SEPARATORS):
        return [(i, min(i + budget, stop)) for i in range(first, stop, budget)]
    text, lo, hi = tokens.text, tokens.starts[first], tokens.ends[stop - 1]
    cuts = [tokens.index(m.end()) for m in _SEPARATORS[level].finditer(text, lo, hi)]
    pieces, begin = [], first
    for cut in [*cuts, stop]:
        pieces.extend(_pieces(tokens, begin, min(cut, stop), level + 1, budget))
        begin = max(begin, min(cut, stop))
    return pieces


def _pack(pieces: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    packed: list[tuple[int, int]] = []
    for first, stop in pieces:
        if packed and stop - packed[-1][0] <= budget:
            packed[-1] = (packed[-1][0], stop)
        else:
            packed.append((first, stop))
    return packed


def _recursive(tokens: _Tokens, size: int, overlap: int) -> list[tuple[int, int]]:
    budget = size - overlap
    packed = _pack(_pieces(tokens, 0, len(tokens), 0, budget), budget)
    ranges = []
    for i, (first, stop) in enumerate(packed):
        # Reach back into the previous chunk only, so a chunk never repeats more than one neighbour.
        start = max(first - overlap, packed[i - 1][0]) if i else first
        ranges.append((start, stop))
    return ranges


def _merge_sections(units: list[Unit], budget: int) -> list[Unit]:
    """Merge small neighbouring sections that share a top-level heading; never across one."""
    merged: list[Unit] = []
    for unit in units:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.page == unit.page
            and last.heading_path[:1] == unit.heading_path[:1]
            and count_tokens(last.text) + count_tokens(unit.text) <= budget
        ):
            common = []
            for a, b in zip(last.heading_path, unit.heading_path, strict=False):
                if a != b:
                    break
                common.append(a)
            merged[-1] = Unit(last.text + "\n\n" + unit.text, page=last.page, heading_path=common)
        else:
            merged.append(unit)
    return merged


def _sections(units: list[Unit]) -> list[Unit]:
    out: list[Unit] = []
    for unit in units:
        if unit.heading_path:
            out.append(unit)
            continue
        for section in markdown_sections(unit.text):
            out.append(Unit(section.text, page=unit.page, heading_path=section.heading_path))
    return out


def chunk(units: list[Unit], strategy: str, size: int, overlap: int, *, source: str = "") -> list[ChunkDraft]:
    """Chunks of at most `size` tokens; neighbours in one unit share up to `overlap` tokens
    (`overlap` is capped at half of `size`, so every chunk still moves forward)."""
    if size < 1 or overlap < 0:
        raise ValueError("chunk size must be positive and overlap not negative")
    overlap = min(overlap, size // 2)
    if strategy == MARKDOWN:
        units = _merge_sections(_sections(units), size - overlap)
    elif strategy not in (FIXED, RECURSIVE):
        raise ValueError(f"unknown chunking strategy {strategy!r}")
    drafts: list[ChunkDraft] = []
    for unit in units:
        tokens = _Tokens(unit.text)
        ranges = _fixed(tokens, size, overlap) if strategy == FIXED else _recursive(tokens, size, overlap)
        for first, stop in ranges:
            metadata = {"page": unit.page, "heading_path": list(unit.heading_path), "source": source}
            drafts.append(ChunkDraft(tokens.slice(first, stop), len(drafts), metadata, stop - first))
    return drafts
