"""The validated shape of an AgentVersion's config.

A version's JSON is parsed through `AgentConfig` at save time and again when the runtime builds the
agent, so nothing downstream ever sees an unchecked config. Errors come back as field paths
(e.g. `tools.0.config.url`) so forms and the API can show them beside the field.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TOOL_TYPES = (
    "calculator",
    "datetime",
    "web_search",
    "http",
    "agent",
    "knowledge_search",
    "integration",
    "mcp",
)
HANDOFF_MODES = ("route", "coordinate", "broadcast")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelChoice(_Strict):
    provider: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)


class ModelSettings(ModelChoice):
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    fallback: ModelChoice | None = None


def _check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}")
    if schema.get("type") not in (None, "object"):
        raise ValueError("the schema's top-level type must be 'object'")
    return schema


class HttpToolConfig(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(
        min_length=8, max_length=2000, description="URL template, e.g. https://api.example.com/items/{id}"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Values may reference secrets as {{secret:NAME}}"
    )
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError("the URL must start with http:// or https://")
        return v

    @field_validator("parameters")
    @classmethod
    def _params(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_json_schema(v)


class ToolSpec(_Strict):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    type: Literal[
        "calculator", "datetime", "web_search", "http", "agent", "knowledge_search", "integration", "mcp"
    ]
    name: str = Field(default="", max_length=64, pattern=r"^[a-zA-Z0-9_]*$")
    description: str = Field(default="", max_length=1000)
    config: dict[str, Any] = Field(default_factory=dict)
    ask_before_run: bool = False

    @model_validator(mode="after")
    def _typed_config(self) -> ToolSpec:
        if self.type == "http":
            if not self.name:
                raise ValueError("an HTTP tool needs a name (letters, digits and underscores)")
            if not self.description:
                raise ValueError("an HTTP tool needs a description, so the model knows when to call it")
            self.config = HttpToolConfig.model_validate(self.config).model_dump()
        elif self.type == "agent":
            agent_id = self.config.get("agent_id")
            if not isinstance(agent_id, int) or agent_id <= 0:
                raise ValueError(
                    "an agent tool needs config.agent_id, the id of another agent of this organization"
                )
        return self

    @property
    def function_name(self) -> str:
        return self.name or self.type


class Handoff(_Strict):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    agent_id: int = Field(gt=0)
    description: str = Field(default="", max_length=1000)


class InputGuardrails(_Strict):
    pii_redaction: bool = False
    prompt_injection: bool = False
    max_length: int | None = Field(default=None, ge=1, le=200_000)
    blocked_topics: list[str] = Field(default_factory=list, max_length=50)


class OutputGuardrails(_Strict):
    json_schema: dict[str, Any] | None = None
    pii_redaction: bool = False

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_json_schema(v) if v is not None else None


class Guardrails(_Strict):
    input: InputGuardrails = Field(default_factory=InputGuardrails)
    output: OutputGuardrails = Field(default_factory=OutputGuardrails)


class OutputType(_Strict):
    name: str = Field(default="text", max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_json_schema(v) if v is not None else None


class MemorySettings(_Strict):
    enabled: bool = False
    max_items: int = Field(default=20, ge=1, le=200)


class KnowledgeSettings(_Strict):
    knowledge_base_ids: list[int] = Field(default_factory=list)
    top_k: int = Field(default=5, ge=1, le=50)
    threshold: float = Field(default=0.0, ge=0, le=1)
    token_budget: int = Field(default=2000, ge=100, le=50_000)


class AgentConfig(_Strict):
    instructions: str = Field(default="", max_length=50_000)
    model: ModelSettings
    tools: list[ToolSpec] = Field(default_factory=list, max_length=50)
    tool_call_limit: int = Field(default=10, ge=0, le=100)
    handoffs: list[Handoff] = Field(default_factory=list, max_length=20)
    handoff_mode: Literal["route", "coordinate", "broadcast"] = "route"
    guardrails: Guardrails = Field(default_factory=Guardrails)
    output_type: OutputType = Field(default_factory=OutputType)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    @model_validator(mode="after")
    def _unique_tool_names(self) -> AgentConfig:
        seen: set[str] = set()
        for tool in self.tools:
            if tool.function_name in seen and tool.type not in ("calculator", "datetime", "web_search"):
                raise ValueError(f"two tools are named “{tool.function_name}”; tool names must be unique")
            seen.add(tool.function_name)
        return self

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ConfigError(Exception):
    """Config validation failed; `errors` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def parse_config(data: dict[str, Any]) -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            # A tool's typed config is validated inside ToolSpec, so pydantic reports its fields as
            # `tools.0.url`; the field really lives at `tools.0.config.url`.
            if len(loc) >= 3 and loc[0] == "tools" and loc[2] not in ToolSpec.model_fields:
                loc.insert(2, "config")
            path = ".".join(loc) or "config"
            message = err["msg"].removeprefix("Value error, ")
            errors.setdefault(path, []).append(message)
        raise ConfigError(errors)
