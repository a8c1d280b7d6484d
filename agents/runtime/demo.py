"""The offline demo model: answers deterministically with no API key, so a fresh install still chats.

Every reply says it comes from the demo model. It streams word by word, reports token usage, and can
call a tool when asked with `call <tool> {json}` (handy for trying tools without a provider).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from agno.metrics import MessageMetrics
from agno.models.base import Model
from agno.models.response import ModelResponse

DEMO_PREFIX = "[Demo model: no API key is configured, so this is a canned reply.]"


@dataclass
class DemoModel(Model):
    id: str = "demo-echo"
    name: str = "DemoModel"
    provider: str = "Demo"

    def _reply(self, messages: list[Any], tools: list[Any] | None) -> str | dict[str, Any]:
        last = messages[-1]
        if last.role == "tool":
            return f"{DEMO_PREFIX} The tool returned: {last.content}"
        text = (last.get_content_string() or "").strip()
        if text.startswith("call ") and tools:
            _, _, rest = text.partition(" ")
            name, _, args = rest.partition(" ")
            try:
                json.loads(args or "{}")
            except ValueError:
                args = "{}"
            return {
                "id": "call_demo",
                "type": "function",
                "function": {"name": name, "arguments": args or "{}"},
            }
        return f"{DEMO_PREFIX} You said: {text}"

    @staticmethod
    def _usage(messages: list[Any], out: str) -> MessageMetrics:
        used = sum(len((m.get_content_string() or "").split()) for m in messages)
        produced = len(out.split())
        return MessageMetrics(input_tokens=used, output_tokens=produced, total_tokens=used + produced)

    def invoke(
        self,
        messages,
        assistant_message,
        response_format=None,
        tools=None,
        tool_choice=None,  # type: ignore[no-untyped-def, override]
        run_response=None,
        compress_tool_results=False,
        **kwargs,
    ) -> ModelResponse:
        reply = self._reply(messages, tools)
        if isinstance(reply, dict):
            return ModelResponse(
                role="assistant", content="", tool_calls=[reply], response_usage=self._usage(messages, "")
            )
        return ModelResponse(role="assistant", content=reply, response_usage=self._usage(messages, reply))

    async def ainvoke(self, *args, **kwargs) -> ModelResponse:  # type: ignore[no-untyped-def, override]
        return self.invoke(*args, **kwargs)

    def invoke_stream(
        self,
        messages,
        assistant_message,
        response_format=None,
        tools=None,
        tool_choice=None,  # type: ignore[no-untyped-def, override]
        run_response=None,
        compress_tool_results=False,
        **kwargs,
    ) -> Iterator[ModelResponse]:
        reply = self._reply(messages, tools)
        if isinstance(reply, dict):
            yield ModelResponse(role="assistant", tool_calls=[reply])
            return
        for i, word in enumerate(reply.split(" ")):
            yield ModelResponse(role="assistant", content=word if i == 0 else " " + word)
        yield ModelResponse(response_usage=self._usage(messages, reply))

    async def ainvoke_stream(self, *args, **kwargs) -> AsyncIterator[ModelResponse]:  # type: ignore[no-untyped-def, override]
        for delta in self.invoke_stream(*args, **kwargs):
            yield delta

    def _parse_provider_response(self, response, **kwargs):  # type: ignore[no-untyped-def, override]
        return response

    def _parse_provider_response_delta(self, response):  # type: ignore[no-untyped-def, override]
        return response
