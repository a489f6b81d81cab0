"""Text templates for ``because`` reasons and task subjects/bodies.

A placeholder is ``{fact}`` or ``{fact|text if missing}``; ``{{`` and ``}}`` are literal
braces. Values are formatted for people: yes/no for booleans, dates as YYYY-MM-DD, whole
numbers without ``.0``, collected outputs joined with commas. A missing value prints as its
fallback, or ``unknown`` when there is none.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from crmsync.rules.tree import Placeholder, Template

#: What a missing value prints as when the placeholder gives no fallback.
MISSING_TEXT = "unknown"

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}|]*)(?:\|([^{}]*))?\}|[{}]")


class TemplateSyntaxError(ValueError):
    """A template is malformed (an unmatched brace or an empty placeholder)."""


def parse_template(text: str) -> Template:
    """Split ``text`` into literal text and placeholders.

    Raises:
        TemplateSyntaxError: On a lone ``{`` or ``}`` or an empty ``{}``.
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token in ("{", "}"):
            raise TemplateSyntaxError(
                f"unmatched '{token}' at character {match.start() + 1} (write '{token * 2}' "
                "for a literal brace)"
            )
        else:
            name = match.group(1).strip()
            if not name:
                raise TemplateSyntaxError(f"empty placeholder at character {match.start() + 1}")
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            fallback = match.group(2)
            parts.append(Placeholder(name, MISSING_TEXT if fallback is None else fallback))
    literal.append(text[position:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(tuple(parts))


def format_value(value: Any, fallback: str = MISSING_TEXT) -> str:
    """Format one value for a person reading a CRM field or task."""
    if value is None:
        return fallback
    if value is True:
        return "yes"
    if value is False:
        return "no"
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[no-any-return]
    if cls is int:
        return str(value)
    if cls is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value) if value else fallback
    return str(value)


def render(template: Template, values: dict[str, Any]) -> str:
    """Render ``template`` with ``values`` (name -> value); unknown names print as missing."""
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(format_value(values.get(part.name), part.fallback))
    return "".join(out)
