"""``python -m bench.fake_llm``: run the fake LLM server (see :mod:`bench.fake_llm.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
