from __future__ import annotations

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def as_input(field: BoundField, extra: str = "") -> SafeString:
    """Render a form widget with our input styling and aria-invalid when it has errors."""
    attrs: dict[str, str | bool] = {"class": f"input {extra}".strip()}
    if field.errors:
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{field.auto_id}_errors"
    return field.as_widget(attrs=attrs)


@register.filter
def role_badge(role: str) -> str:
    return f"badge-role-{role}"
