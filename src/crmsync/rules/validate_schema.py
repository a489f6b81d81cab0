"""Layer 1 of rule-file validation: the shipped JSON Schema, with messages for people.

Conditions are checked only by layer 2 (a failed ``oneOf`` says nothing useful), so schema
errors inside a condition are dropped in favour of the semantic message for the same spot.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from crmsync.rules.jsonpos import escape_pointer_token, to_pointer
from crmsync.rules.schema_fast import conforms
from crmsync.rules.validate_base import CheckerBase, _dict, _json_type, _list, did_you_mean

if TYPE_CHECKING:
    import jsonschema


@cache
def ruleset_schema() -> dict[str, Any]:
    """Return the rule-file JSON Schema (2020-12) shipped with the package."""
    text = resources.files("crmsync.rules").joinpath("ruleset.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]



class SchemaChecks(CheckerBase):
    """The JSON Schema layer."""

    def _mark_condition_subtrees(self, doc: dict[str, Any]) -> None:
        for name in _dict(doc.get("conditions")):
            self.self_checked.append(f"/conditions/{escape_pointer_token(name)}")
        for name in _dict(doc.get("derived")):
            self.self_checked.append(f"/derived/{escape_pointer_token(name)}")
        for d_index, decision in enumerate(_list(doc.get("decisions"))):
            for r_index, rule in enumerate(_list(_dict(decision).get("rules"))):
                if isinstance(rule, dict):
                    self.self_checked.append(f"/decisions/{d_index}/rules/{r_index}/when")
                    self.self_checked.append(f"/decisions/{d_index}/rules/{r_index}/then")
            self.self_checked.append(f"/decisions/{d_index}/default")
        for t_index, _task in enumerate(_list(doc.get("tasks"))):
            self.self_checked.append(f"/tasks/{t_index}/when")

    def _is_self_checked(self, pointer: str) -> bool:
        return any(pointer == p or pointer.startswith(p + "/") for p in self.self_checked)

    def _schema_errors(self, doc: dict[str, Any]) -> None:
        if conforms(doc, ruleset_schema()):
            return  # no schema errors: skip importing jsonschema (0.18 s of a start)
        import jsonschema  # noqa: PLC0415 - deferred: only a file with problems pays for it

        validator = jsonschema.Draft202012Validator(ruleset_schema())
        for err in validator.iter_errors(doc):
            pointer = to_pointer(err.absolute_path)
            if self._is_self_checked(pointer):
                continue
            self._schema_error(err, pointer)

    def _schema_error(self, err: jsonschema.ValidationError, pointer: str) -> None:
        kind = err.validator
        if kind == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list(err.schema.get("properties", {}))  # type: ignore[union-attr]
            for extra in sorted(set(err.instance) - set(allowed)):
                child = f"{pointer}/{escape_pointer_token(extra)}"
                self.error(child, f"unknown key '{extra}'",
                           did_you_mean(extra, allowed) or f"expected one of: {', '.join(allowed)}",
                           key=True)
        elif kind == "required":
            missing = str(err.message).split("'")[1] if "'" in err.message else err.message
            self.error(pointer, f"missing required key '{missing}'")
        elif kind == "enum":
            options = [str(o) for o in err.validator_value]  # type: ignore[union-attr]
            self.error(pointer, f"{json.dumps(err.instance)} is not one of: {', '.join(options)}",
                       did_you_mean(str(err.instance), options))
        elif kind == "type":
            self.error(pointer, f"expected {_schema_type_words(err.validator_value)}, "
                                f"got {_json_type(err.instance)}")
        elif kind == "pattern" and isinstance(err.instance, str):
            self.error(pointer, f"'{err.instance}' is not a valid name: use lower-case letters, "
                                "digits and underscores, starting with a letter (at most 64)")
        else:
            message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
            self.error(pointer, message)


def _schema_type_words(types: Any) -> str:
    words = {"string": "text", "integer": "a whole number", "number": "a number",
             "boolean": "true/false", "array": "a list", "object": "an object", "null": "null"}
    if isinstance(types, list):
        return " or ".join(words.get(t, t) for t in types)
    return words.get(types, str(types))


