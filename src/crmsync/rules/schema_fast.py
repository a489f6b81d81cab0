"""A fast yes/no JSON Schema check, so the common case (a valid rule file) skips jsonschema.

Importing ``jsonschema`` costs about 0.18 s (``referencing``, ``rpds``, ``attrs``, the bundled
metaschemas), most of a ``crmsync evaluate`` start. Only a file with problems needs its
located, rewritten messages, so :func:`conforms` answers one question, "does this document
certainly satisfy this schema?", for the keywords ``ruleset.schema.json`` uses, and the
schema layer runs ``jsonschema`` only when the answer is not a plain yes.

The answer is exact or withheld: anything this module cannot decide exactly as Draft 2020-12
would (a keyword it does not know, a ``$ref`` outside ``#/$defs/``, a float where an integer
is asked for, an ``enum`` of non-strings) raises :class:`Unsure` internally, and
:func:`conforms` then returns False, which sends the document to ``jsonschema``. So a wrong
"yes" is never the price of speed; ``tests/rules/test_schema_fast.py`` checks it agrees with
``jsonschema`` on the shipped and test rule files and on many mutations of them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

# Keywords that only annotate: they never make an instance invalid.
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$comment", "$defs",
                          "examples", "default"})


class Unsure(Exception):
    """This module cannot decide the question exactly; let jsonschema answer."""


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_type(instance: Any, name: str) -> bool:
    kind = type(instance)
    if name == "string":
        return kind is str
    if name == "object":
        return kind is dict
    if name == "array":
        return kind is list
    if name == "boolean":
        return kind is bool
    if name == "null":
        return instance is None
    if name == "integer":
        if kind is float:
            raise Unsure  # 2020-12 counts 1.0 as an integer; not worth deciding here
        return kind is int
    if name == "number":
        return kind is int or kind is float
    raise Unsure


def _json_equal(instance: Any, option: Any) -> bool:
    """JSON equality as jsonschema decides it, for string, boolean and null options."""
    if type(option) is str:
        return type(instance) is str and instance == option
    if option is None or type(option) is bool:
        return instance is option  # true is not 1, false is not 0
    raise Unsure  # numbers and containers: leave them to jsonschema


class _Checker:
    """Decides one document against one root schema (local ``$ref`` only)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def _ref(self, ref: str) -> Any:
        if not ref.startswith("#/$defs/") or "/" in ref[8:] or "~" in ref:
            raise Unsure
        try:
            return self.root["$defs"][ref[8:]]
        except KeyError:
            raise Unsure from None

    def ok(self, instance: Any, schema: Any) -> bool:  # noqa: C901 - one branch per keyword
        """True when ``instance`` satisfies ``schema``; raises :class:`Unsure` if undecided."""
        if schema is True:
            return True
        if schema is False:
            return False
        if type(schema) is not dict:
            raise Unsure
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            if key == "type":
                names = value if type(value) is list else [value]
                if not any(_is_type(instance, name) for name in names):
                    return False
            elif key == "$ref":
                if not self.ok(instance, self._ref(value)):
                    return False
            elif key == "oneOf":
                if sum(1 for branch in value if self.ok(instance, branch)) != 1:
                    return False
            elif key == "enum" or key == "const":
                options = value if key == "enum" else [value]
                if not any(_json_equal(instance, option) for option in options):
                    return False
            elif key in ("properties", "additionalProperties", "required", "propertyNames",
                         "minProperties", "maxProperties"):
                if type(instance) is dict and not self._object(instance, key, value, schema):
                    return False
            elif key in ("items", "minItems", "maxItems", "uniqueItems"):
                if type(instance) is list and not self._array(instance, key, value):
                    return False
            elif key in ("minLength", "maxLength", "pattern"):
                if type(instance) is str and not self._string(instance, key, value):
                    return False
            elif key in ("minimum", "maximum"):
                kind = type(instance)
                if kind is int or kind is float:
                    if type(value) not in (int, float):
                        raise Unsure
                    if (instance < value) if key == "minimum" else (instance > value):
                        return False
            else:
                raise Unsure
        return True

    def _object(self, instance: dict[str, Any], key: str, value: Any,
                schema: dict[str, Any]) -> bool:
        if key == "properties":
            return all(self.ok(instance[name], sub) for name, sub in value.items()
                       if name in instance)
        if key == "additionalProperties":
            if "patternProperties" in schema:
                raise Unsure
            known = schema.get("properties", {})
            return all(self.ok(item, value) for name, item in instance.items()
                       if name not in known)
        if key == "required":
            return all(name in instance for name in value)
        if key == "propertyNames":
            return all(self.ok(name, value) for name in instance)
        if key == "minProperties":
            return len(instance) >= value
        return len(instance) <= value  # maxProperties

    def _array(self, instance: list[Any], key: str, value: Any) -> bool:
        if key == "items":
            return all(self.ok(item, value) for item in instance)
        if key == "minItems":
            return len(instance) >= value
        if key == "uniqueItems":
            if value is not True:
                return True
            # Strings only: JSON equality of numbers (1 == 1.0, true != 1) is jsonschema's call.
            if not all(type(item) is str for item in instance):
                raise Unsure
            return len(set(instance)) == len(instance)
        return len(instance) <= value  # maxItems

    @staticmethod
    def _string(instance: str, key: str, value: Any) -> bool:
        # Lengths count code points in JSON Schema, as len() does on a Python str.
        if key == "minLength":
            return len(instance) >= value
        if key == "maxLength":
            return len(instance) <= value
        return _regex(value).search(instance) is not None  # pattern: unanchored, like jsonschema


def conforms(instance: Any, schema: dict[str, Any]) -> bool:
    """True only when ``instance`` certainly satisfies ``schema`` (Draft 2020-12).

    False means "has errors, or could not be decided here": run a full validator for the
    answer and its messages.
    """
    try:
        return _Checker(schema).ok(instance, schema)
    except (Unsure, RecursionError, TypeError):
        return False
