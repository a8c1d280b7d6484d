"""Chunks respect size and overlap, stay within one page, and carry their headings."""

from __future__ import annotations

import pytest

from knowledge.chunking import TOKEN_RE, chunk, count_tokens
from knowledge.extraction import Unit

WORDS = [f"w{i}" for i in range(1000)]


def _tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def test_the_tokenizer_counts_words_and_punctuation():
    assert _tokens("Hello, world! It's 3.5") == ["Hello", ",", "world", "!", "It", "'", "s", "3", ".", "5"]
    assert count_tokens("Hello, world!") == 4


def test_fixed_windows_have_the_size_and_share_exactly_the_overlap():
    drafts = chunk([Unit(" ".join(WORDS))], "fixed", 100, 20)

    assert [d.token_count for d in drafts[:-1]] == [100] * (len(drafts) - 1)
    for before, after in zip(drafts, drafts[1:], strict=False):
        assert _tokens(before.text)[-20:] == _tokens(after.text)[:20]
    # Every token is covered, in order, once the overlaps are removed.
    rebuilt = _tokens(drafts[0].text) + [t for d in drafts[1:] for t in _tokens(d.text)[20:]]
    assert rebuilt == WORDS
    assert [d.ordinal for d in drafts] == list(range(len(drafts)))


def test_token_count_matches_the_text():
    drafts = chunk([Unit("Alpha, beta; gamma.\n\nDelta " * 50)], "recursive", 30, 5)

    assert all(d.token_count == count_tokens(d.text) <= 30 for d in drafts)


def test_recursive_cuts_at_paragraphs_before_sentences():
    paragraphs = [" ".join(f"p{p}w{i}" for i in range(30)) + "." for p in range(4)]
    drafts = chunk([Unit("\n\n".join(paragraphs))], "recursive", 70, 0)

    # Two 31-token paragraphs fit in 70; a paragraph is never split when it fits.
    assert [d.text for d in drafts] == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]


def test_recursive_splits_long_sentences_by_words_and_respects_size():
    sentence = " ".join(WORDS[:500])  # no separator at all
    drafts = chunk([Unit(sentence)], "recursive", 64, 16)

    assert max(d.token_count for d in drafts) <= 64
    for before, after in zip(drafts, drafts[1:], strict=False):
        assert _tokens(after.text)[:16] == _tokens(before.text)[-16:]


def test_recursive_prefers_sentence_boundaries():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    drafts = chunk([Unit(text)], "recursive", 40, 0)

    assert all(d.text.endswith(".") for d in drafts)
    assert all(d.token_count <= 40 for d in drafts)


def test_chunks_never_cross_pages_and_keep_the_page():
    units = [Unit("first page text", page=1), Unit("second page text", page=2)]

    drafts = chunk(units, "recursive", 100, 10, source="report.pdf")

    assert [(d.text, d.metadata) for d in drafts] == [
        ("first page text", {"page": 1, "heading_path": [], "source": "report.pdf"}),
        ("second page text", {"page": 2, "heading_path": [], "source": "report.pdf"}),
    ]


def test_markdown_puts_heading_paths_in_metadata():
    text = "# Install\nRun make.\n## Linux\nUse apt.\n# Usage\nOpen the app.\n"

    drafts = chunk([Unit(text)], "markdown", 200, 0)

    # Sections under one top heading may share a chunk; a new top heading always starts one.
    assert [d.metadata["heading_path"] for d in drafts] == [["Install"], ["Usage"]]
    assert drafts[0].text == "# Install\nRun make.\n\n## Linux\nUse apt."
    assert drafts[1].text == "# Usage\nOpen the app."


def test_markdown_keeps_sub_headings_when_sections_are_large():
    body = " ".join(WORDS[:60])
    text = f"# Guide\n{body}\n## Setup\n{body}\n## Deploy\n{body}\n"

    drafts = chunk([Unit(text)], "markdown", 80, 10)

    assert {tuple(d.metadata["heading_path"]) for d in drafts} == {
        ("Guide",),
        ("Guide", "Setup"),
        ("Guide", "Deploy"),
    }
    assert all(d.token_count <= 80 for d in drafts)


def test_markdown_uses_extracted_heading_paths():
    units = [Unit("Refunds\nWithin 30 days.", heading_path=["Policies", "Refunds"])]

    drafts = chunk(units, "markdown", 100, 0)

    assert drafts[0].metadata["heading_path"] == ["Policies", "Refunds"]


def test_overlap_is_capped_at_half_the_size():
    drafts = chunk([Unit(" ".join(WORDS[:100]))], "fixed", 10, 50)

    assert [_tokens(d.text) for d in drafts[:2]] == [WORDS[0:10], WORDS[5:15]]


@pytest.mark.parametrize(
    ("size", "overlap", "strategy"), [(0, 0, "fixed"), (10, -1, "fixed"), (10, 0, "bogus")]
)
def test_bad_settings_are_refused(size, overlap, strategy):
    with pytest.raises(ValueError):
        chunk([Unit("x")], strategy, size, overlap)
