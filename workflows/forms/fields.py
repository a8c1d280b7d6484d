"""Form fields for node configs: comma lists, `name: value` mappings, JSON objects, and templates and
expressions checked for syntax as they are typed (references to nodes are checked when the graph is saved)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from workflows.expressions import ExpressionError, parse_expression, template_references

TEMPLATE_HELP = "Text with {{ … }} parts: input.text, vars.name, nodes.<id>.output, last, item."


class CommaListField(forms.CharField):
    """`a, b, c` <-> ["a", "b", "c"]."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [part.strip() for part in text.split(",") if part.strip()]


class MappingField(forms.CharField):
    """An object of name -> template: a JSON object, or one `name: value` per line."""

    widget = forms.Textarea(attrs={"rows": 4, "class": "font-mono text-sm"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            simple = all(isinstance(v, str) and "\n" not in v for v in value.values())
            if simple:
                return "\n".join(f"{k}: {v}" for k, v in value.items())
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value: Any) -> dict[str, Any]:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
            if not isinstance(data, dict):
                raise ValidationError('Write a JSON object, like {"key": "value"}.')
            return data
        mapping: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, rest = line.partition(":")
            if not sep or not key.strip():
                raise ValidationError(f"Line {number}: write `name: value`.")
            mapping[key.strip()] = rest.strip()
        return mapping


class JSONObjectField(MappingField):
    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value


def check_template(value: Any) -> None:
    """Syntax only; references to nodes are checked when the whole graph is saved."""
    texts = list(value.values()) if isinstance(value, dict) else [value]
    for text in texts:
        if isinstance(text, str) and text:
            try:
                template_references(text)
            except ExpressionError as exc:
                raise ValidationError(f"Bad template: {exc}")


def check_expression(value: str) -> None:
    if value:
        try:
            parse_expression(value)
        except ExpressionError as exc:
            raise ValidationError(str(exc))


def template_field(
    label: str, *, rows: int = 3, required: bool = False, help_text: str = TEMPLATE_HELP
) -> Any:
    return forms.CharField(
        label=label,
        required=required,
        max_length=20_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": rows, "class": "font-mono text-sm"}),
        help_text=help_text,
        validators=[check_template],
    )


def expression_field(label: str, help_text: str, *, required: bool = False) -> Any:
    return forms.CharField(
        label=label,
        required=required,
        max_length=1000,
        widget=forms.TextInput(attrs={"class": "font-mono text-sm", "autocomplete": "off"}),
        help_text=help_text,
        validators=[check_expression],
    )
