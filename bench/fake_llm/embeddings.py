"""Deterministic feature-hashing embeddings with a small synonym map."""

from __future__ import annotations

import base64
import math
import re
import struct
import zlib
from functools import lru_cache
from typing import Any

from .common import DEFAULT_EMBEDDING_DIM

_SYNONYM_GROUPS = (
    ("car", "cars", "automobile", "automobiles", "vehicle", "vehicles", "auto", "autos", "motorcar"),
    ("dog", "dogs", "puppy", "puppies", "pup", "canine", "canines", "hound", "doggy"),
    ("cat", "cats", "kitten", "kittens", "kitty", "feline", "felines"),
    ("buy", "buys", "bought", "buying", "purchase", "purchases", "purchased", "purchasing", "acquire"),
    ("sell", "sells", "sold", "selling", "vend"),
    ("happy", "glad", "joyful", "cheerful", "delighted", "joyous", "content"),
    ("sad", "unhappy", "sorrowful", "miserable", "gloomy"),
    ("doctor", "doctors", "physician", "physicians", "medic", "clinician"),
    ("big", "large", "huge", "enormous", "giant"),
    ("small", "little", "tiny", "miniature"),
    ("fast", "quick", "rapid", "speedy", "swift"),
    ("house", "home", "residence", "dwelling"),
    ("start", "begin", "commence", "initiate"),
    ("end", "finish", "conclude", "terminate"),
    ("child", "children", "kid", "kids"),
    ("film", "films", "movie", "movies"),
    ("error", "errors", "bug", "bugs", "fault", "defect"),
    ("money", "cash", "funds", "currency"),
    ("smart", "intelligent", "clever", "bright"),
    ("help", "assist", "assistance", "support"),
)
_SYNONYMS: dict[str, str] = {w: group[0] for group in _SYNONYM_GROUPS for w in group}
_STOPWORDS_TEXT = """
a an the of to in on at for and or but is are was were be been being it its this that these those
with as by from i you he she we they me my your our their his her them us do does did so than then
there here what which who whom how why when where not no can could would should will shall may might
must have has had just also very some any all
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_EMBED_WORD_RE = re.compile(r"[a-z0-9]+")


def _stem(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "xes", "zes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def embedding_terms(text: str) -> list[str]:
    """Normalised terms used for embeddings (lowercase, stopwords removed, stemmed, synonyms)."""
    out = []
    for w in _EMBED_WORD_RE.findall(text.lower()):
        if w in _STOPWORDS:
            continue
        canon = _SYNONYMS.get(w)
        if canon is None:
            s = _stem(w)
            canon = _SYNONYMS.get(s, s)
        out.append(canon)
    return out


@lru_cache(maxsize=16384)
def _term_hash(term: str) -> int:
    return zlib.crc32(b"fake-embed:" + term.encode("utf-8"))


@lru_cache(maxsize=8192)
def embed_text(text: str, dim: int = DEFAULT_EMBEDDING_DIM) -> tuple[float, ...]:
    """Deterministic L2-normalised feature-hashing embedding of ``text``."""
    vec = [0.0] * dim
    terms = embedding_terms(text)
    if not terms:
        vec[0] = 1.0
        return tuple(vec)
    for term in terms:
        h = _term_hash(term)
        vec[h % dim] += -1.0 if (h >> 31) & 1 else 1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # pathological cancellation
        vec[0] = 1.0
        return tuple(vec)
    inv = 1.0 / norm
    return tuple(v * inv if v else 0.0 for v in vec)


@lru_cache(maxsize=8192)
def embed_b64(text: str, dim: int) -> str:
    """``embed_text`` as base64 of little-endian float32s (``encoding_format="base64"``)."""
    vec = embed_text(text, dim)
    return base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode("ascii")


def _token_ids_text(ids: list[int]) -> str:
    """Stand-in text for a token-id array: ``"tok1 tok2 ..."``."""
    return " ".join(f"tok{t}" for t in ids)


def embedding_inputs(inp: Any) -> list[str] | None:
    """The texts of an embeddings ``input`` (``None`` when it is invalid)."""
    if isinstance(inp, str):
        return [inp]
    if isinstance(inp, list):
        if not inp:
            return None
        if all(isinstance(x, int) for x in inp):  # a single token array
            return [_token_ids_text(inp)]
        out = []
        for x in inp:
            if isinstance(x, str):
                out.append(x)
            elif isinstance(x, list) and all(isinstance(t, int) for t in x):
                out.append(_token_ids_text(x))
            else:
                return None
        return out
    return None
