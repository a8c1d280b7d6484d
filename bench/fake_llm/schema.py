"""Minimal JSON instances from a JSON schema (structured outputs, forced tool calls)."""

from __future__ import annotations

import json
import math
from typing import Any

_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "duration": "P0D",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "email": "x@example.com",
    "uri": "http://example.com",
    "url": "http://example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def minimal_from_schema(schema: Any, root: dict[str, Any] | None = None, _depth: int = 0) -> Any:
    """A minimal instance satisfying ``schema``'s required properties.

    strings -> "x" (or a valid value for well-known formats / minLength),
    numbers -> 0 (respecting minimum), booleans -> false, arrays -> [] (or
    minItems copies), objects -> required properties recursively; enum/const
    take their first value; $ref / anyOf / oneOf / allOf are followed.
    """
    if root is None:
        root = schema if isinstance(schema, dict) else {}
    if _depth > 40 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return minimal_from_schema(_resolve_ref(schema["$ref"], root), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if not non_null:
                return None
            return minimal_from_schema(non_null[0], root, _depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: Any = None
        for sub in all_of:
            v = minimal_from_schema(sub, root, _depth + 1)
            if isinstance(merged, dict) and isinstance(v, dict):
                merged.update(v)
            elif merged is None:
                merged = v
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        if rest.get("properties") or rest.get("required"):
            extra = minimal_from_schema(rest, root, _depth + 1)
            if isinstance(merged, dict) and isinstance(extra, dict):
                merged.update(extra)
        return merged
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null_types = [t for t in typ if t != "null"]
        typ = non_null_types[0] if non_null_types else "null"
    if typ is None:
        if "properties" in schema or "required" in schema:
            typ = "object"
        elif "items" in schema:
            typ = "array"
        else:
            return "x"
    if typ == "object":
        props = schema.get("properties") or {}
        out: dict[str, Any] = {}
        for name in schema.get("required") or ():
            out[name] = minimal_from_schema(props.get(name, {}), root, _depth + 1)
        return out
    if typ == "array":
        count = int(schema.get("minItems") or 0)
        if count <= 0:
            return []
        item_schema = schema.get("items")
        prefix = schema.get("prefixItems")
        items = []
        for i in range(count):
            if isinstance(prefix, list) and i < len(prefix):
                items.append(minimal_from_schema(prefix[i], root, _depth + 1))
            else:
                items.append(minimal_from_schema(item_schema or {}, root, _depth + 1))
        return items
    if typ == "string":
        fmt = schema.get("format")
        if fmt in _STRING_FORMATS:
            return _STRING_FORMATS[fmt]
        return "x" * max(1, int(schema.get("minLength") or 1))
    if typ in ("integer", "number"):
        value: float = 0
        if "minimum" in schema and schema["minimum"] is not None and schema["minimum"] > value:
            value = schema["minimum"]
        xmin = schema.get("exclusiveMinimum")
        if isinstance(xmin, (int, float)) and value <= xmin:
            value = xmin + 1
        if "maximum" in schema and schema["maximum"] is not None and schema["maximum"] < value:
            value = schema["maximum"]
        if typ == "integer":
            return int(math.ceil(value))
        return value
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    return "x"


def response_format_text(response_format: Any) -> str | None:
    """Reply text demanded by ``response_format`` (``None``: free text)."""
    if not isinstance(response_format, dict):
        return None
    rtype = response_format.get("type")
    if rtype == "json_schema":
        js = response_format.get("json_schema") or {}
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            return "{}"
        return json.dumps(minimal_from_schema(schema, schema))
    if rtype == "json_object":
        return "{}"
    return None
