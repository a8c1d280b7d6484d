"""Fake OpenAI-compatible LLM server for tests and benchmarks.

A small aiohttp app, bound to 127.0.0.1 only, that speaks enough of the OpenAI
HTTP API for the ``openai`` client and agno's ``OpenAIChat`` model to work
against it:

* ``GET  /v1/models`` and ``GET /v1/models/{id}``
* ``POST /v1/chat/completions`` (streaming and non-streaming, tool calls,
  ``response_format``, ``usage``, ``stream_options.include_usage``)
* ``POST /v1/embeddings`` (deterministic feature-hashing bag of words with a
  small synonym map; ``float`` and ``base64`` encodings)
* ``GET  /_stats`` (call counts, and ``connections``: distinct client TCP
  connections that made API calls), ``POST /_reset``, ``GET /_requests``
  (recent request bodies), ``GET|POST /_config`` (runtime knobs) — test helpers

Every route is also served without the ``/v1`` prefix. Any ``Authorization``
header (or none) is accepted.

Behaviour is driven by markers in the content of the *last user message*, so
tests can steer it through any client or framework:

``[[tool:NAME {json args}]]``
    If the request's ``tools`` include NAME, answer with a tool call to NAME
    with those arguments (args are optional, default ``{}``). Several markers
    give parallel tool calls. Once ``tool`` role messages follow the last user
    message, the answer is the text ``"Tool result: <tool content>"`` (several
    results are joined with ``"\\n"``).
``[[error:CODE]]`` / ``[[error:CODE:N]]``
    Answer HTTP CODE with an OpenAI-style error body. With ``:N`` only the
    first N requests carrying that exact user message fail; later ones are
    answered normally (handy for retry tests). Counters reset on ``/_reset``.
``[[reply:some text]]``
    The reply is exactly ``some text``.
``[[json:{...}]]``
    The reply is exactly that JSON text (any JSON value).
``[[latency:MS]]`` / ``[[first_token:MS]]``
    Per-request per-token latency / first-token latency in milliseconds.

Without markers the reply is ``"Echo: <last user message>"`` (markers
stripped). With ``response_format`` of type ``json_schema`` (and no
``[[json:...]]``/``[[reply:...]]``) the reply is a minimal JSON object
satisfying the schema's required properties; with ``json_object`` it is ``{}``.
``tool_choice`` naming a function (or ``"required"``) without a marker calls
that function (or the first tool) with minimal arguments built from its
parameter schema; ``tool_choice="none"`` disables tool calls.

Latency: ``token_latency_ms`` (server-wide, settable at runtime) is slept before
every emitted token; ``first_token_ms`` additionally before the first one.
Per request they can be overridden with the ``X-Fake-Token-Latency-Ms`` and
``X-Fake-First-Token-Ms`` headers (markers win over headers).

Usage accounting: ``prompt_tokens`` is the sum over messages of
``max(words, ceil(chars / 4))``; ``completion_tokens`` is the number of emitted
word tokens (for tool calls: the number of argument chunks, plus one per call
for the name chunk).

Run standalone::

    python -m bench.fake_llm --port 8765 --token-latency-ms 0

or in-process (background thread with its own event loop)::

    with FakeLLMServer(token_latency_ms=0) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")

or as a child process with the same Python API (better for benchmarks, no GIL
sharing with the code under test)::

    with FakeLLMProcess() as srv:
        ...

Modules: ``controls`` (markers), ``schema`` (minimal JSON from a schema),
``embeddings``, ``text`` (tokens), ``chat`` (chat completions), ``app``
(aiohttp app and the other routes), ``state``/``responses`` (shared state and
HTTP helpers), ``server`` (the Python API) and ``cli``.
"""

from __future__ import annotations

# ``name as name``: public names re-exported as before the split, but not in ``__all__``.
from .app import handle_config as handle_config
from .app import handle_embeddings as handle_embeddings
from .app import handle_model as handle_model
from .app import handle_models as handle_models
from .app import handle_requests as handle_requests
from .app import handle_reset as handle_reset
from .app import handle_stats as handle_stats
from .app import make_app
from .chat import handle_chat as handle_chat
from .cli import main as main
from .common import DEFAULT_EMBEDDING_DIM, MODELS
from .common import HOST as HOST
from .controls import Controls as Controls
from .controls import parse_controls
from .embeddings import embed_text
from .embeddings import embedding_terms as embedding_terms
from .schema import minimal_from_schema
from .server import FakeLLMProcess, FakeLLMServer
from .state import FakeLLMState
from .text import content_text as content_text
from .text import estimate_tokens as estimate_tokens
from .text import split_tokens as split_tokens

__all__ = [
    "FakeLLMServer",
    "FakeLLMProcess",
    "FakeLLMState",
    "make_app",
    "embed_text",
    "parse_controls",
    "minimal_from_schema",
    "MODELS",
    "DEFAULT_EMBEDDING_DIM",
]
