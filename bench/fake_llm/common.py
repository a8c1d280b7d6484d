"""Constants and JSON helpers shared by the fake LLM server modules."""

from __future__ import annotations

import json

HOST = "127.0.0.1"
DEFAULT_EMBEDDING_DIM = 384
MODELS = ("fake-gpt", "fake-gpt-mini", "fake-embed")
MODEL_CREATED = 1700000000

JSON_CT = "application/json"

encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
loads = json.loads
raw_decode = json.JSONDecoder().raw_decode
