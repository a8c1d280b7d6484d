"""Tests for the fake OpenAI-compatible LLM server (bench/fake_llm.py).

If ``tests/`` has no ``__init__.py``, pytest's default (prepend) import mode
imports this directory as the top-level package ``bench`` and it would shadow
the real ``bench`` package at the repository root. In that case extend our
``__path__`` so ``bench.fake_llm`` still resolves to the real module.
"""

import os as _os

if __name__ == "bench":  # pragma: no cover - depends on how pytest imported us
    _real_bench = _os.path.join(
        _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "bench"
    )
    if _os.path.isdir(_real_bench) and _real_bench not in __path__:
        __path__.append(_real_bench)
