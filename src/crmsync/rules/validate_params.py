"""Layer 2 of rule-file validation: named values (``params``) and where they are used.

A threshold written once in ``params`` is read by conditions (``{"param": "name"}`` wherever a
literal value goes) and quoted by texts (``{params.name}`` in ``because``, task ``subject`` and
``body``; ``{lists.name}`` quotes a named list). Both are resolved here, at validation time, so
the compiled evaluator sees plain literals and plain text: a reason can never drift from the
condition that produced it, and quoting costs nothing per contact.
"""

from __future__ import annotations

import json
from typing import Any

from crmsync.rules.jsonpos import escape_pointer_token
from crmsync.rules.tree import Placeholder, Template
from crmsync.rules.validate_base import _INVALID, CheckerBase, _dict, did_you_mean

#: Placeholder prefixes that quote the rule file's own values instead of a contact's facts.
PARAM_PREFIX = "params."
LIST_PREFIX = "lists."


def format_named_value(value: Any) -> str:
    """Format a param or list for a reason: numbers grouped (``5,000``), yes/no, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return format(value, ",")
    if isinstance(value, list):
        return ", ".join(format_named_value(item) for item in value)
    return str(value)


class ParamChecks(CheckerBase):
    """Checks and resolution of ``params`` references in conditions and texts."""

    def _params(self, raw: Any) -> None:
        for name, value in _dict(raw).items():
            # "note" is free text for people, as everywhere else in a rule file.
            if name != "note" and isinstance(value, bool | int | float | str):
                self.params[name] = value

    def _with_params(self, raw: Any, pointer: str) -> Any:
        """Return ``raw`` with ``{"param": name}`` (itself or as an item) replaced by its value.

        Returns ``_INVALID`` (after reporting it) when a reference names no param.
        """
        if isinstance(raw, dict) and set(raw) == {"param"}:
            return self._param_value(raw["param"], f"{pointer}/param")
        if isinstance(raw, list) and any(isinstance(i, dict) and set(i) == {"param"} for i in raw):
            values = [self._with_params(item, f"{pointer}/{index}")
                      for index, item in enumerate(raw)]
            return _INVALID if any(v is _INVALID for v in values) else values
        return raw

    def _param_value(self, name: Any, pointer: str) -> Any:
        if isinstance(name, str) and name in self.params:
            self.params_used.add(name)
            return self.params[name]
        hint = did_you_mean(str(name), self.params) or (
            "declare it under \"params\" at the top of the file, e.g. "
            "\"params\": {\"icp_min_employees\": 50}")
        self.error(pointer, f"unknown param {json.dumps(name)}", hint)
        return _INVALID

    def _inline_named_values(self, template: Template, pointer: str) -> Template:
        """Replace ``{params.x}`` / ``{lists.x}`` placeholders by the value's text.

        Unknown names are reported (with a did-you-mean) and print as nothing.
        """
        if not any(isinstance(p, Placeholder) and p.name.startswith((PARAM_PREFIX, LIST_PREFIX))
                   for p in template.parts):
            return template
        parts: list[str | Placeholder] = []
        for part in template.parts:
            if isinstance(part, Placeholder) and part.name.startswith((PARAM_PREFIX, LIST_PREFIX)):
                part = self._named_value_text(part.name, pointer)
            if isinstance(part, str) and parts and isinstance(parts[-1], str):
                parts[-1] += part
            elif part != "":
                parts.append(part)
        return Template(tuple(parts))

    def _named_value_text(self, name: str, pointer: str) -> str:
        is_param = name.startswith(PARAM_PREFIX)
        key = name[len(PARAM_PREFIX if is_param else LIST_PREFIX):]
        table: dict[str, Any] = self.params if is_param else self.lists
        if key in table:
            if is_param:
                self.params_used.add(key)
            return format_named_value(table[key])
        prefix = PARAM_PREFIX if is_param else LIST_PREFIX
        what = "param" if is_param else "list"
        hint = did_you_mean(name, [prefix + n for n in table])
        if hint is None and not table:
            hint = f"the file has no \"{what}s\"; declare {key!r} there"
        self.error(pointer, f"placeholder {{{name}}} names no {what}", hint)
        return ""

    def _unknown_plain_placeholder_hint(self, name: str) -> str | None:
        """A hint for ``{icp_min_employees}`` written without its ``params.`` prefix."""
        if name in self.params:
            return f"'{name}' is a param: write {{{PARAM_PREFIX}{name}}}"
        if name in self.lists:
            return f"'{name}' is a list: write {{{LIST_PREFIX}{name}}}"
        return None


def param_pointer(name: str) -> str:
    """The JSON pointer of param ``name``."""
    return f"/params/{escape_pointer_token(name)}"
