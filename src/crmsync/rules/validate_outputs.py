"""Layer 2 of rule-file validation, declarations: the custom facts and outputs a file declares.

``"facts": {"nps": "number"}`` tells the checker which custom facts the rules expect, so a file
validates on its own, without the field map that will provide them at run time.
``"outputs": {"icp_tier": {"type": "str", "values": [...]}}`` declares an output a run writes
to the CRM: it must be decided by a decision whose hit policy fits its type, and every value
the rules can set must be one of its ``values``.
"""

from __future__ import annotations

import json
from typing import Any

from crmsync.model import OUTPUTS
from crmsync.rules.jsonpos import escape_pointer_token
from crmsync.rules.tree import OutputSpec
from crmsync.rules.validate_base import _EXPECT_EXTRAS, CheckerBase, _dict, did_you_mean, kind_word

#: Hit policies that can decide a declared output of each type.
HITS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "str": ("first",), "number": ("first",), "bool": ("first",), "int": ("first", "sum"),
    "list": ("collect",),
}
#: Names a declared output cannot take besides crmsync's own outputs: a run counts task creates
#: and closes beside the outputs that changed (``RunSummary.changes``), and a rule test's
#: ``expect`` has keys of its own for tasks and fired rules.
RESERVED_NAMES: tuple[str, ...] = ("tasks_created", "tasks_closed",
                                   *(k for k in _EXPECT_EXTRAS if k not in OUTPUTS))
_TYPE_WORDS = {**{k: kind_word(k) for k in ("str", "int", "number", "bool")},
               "list": "a collected list"}


class OutputChecks(CheckerBase):
    """Checks of the ``facts`` and ``outputs`` declarations."""

    def _declared_facts(self, raw: Any) -> None:
        """Add the file's declared custom facts to the known facts (before anything reads them)."""
        for name, kind in _dict(raw).items():
            pointer = f"/facts/{escape_pointer_token(name)}"
            if not isinstance(kind, str) or kind not in ("str", "int", "number", "bool",
                                                         "datetime"):
                continue  # the schema layer reports it
            known = self.facts.get(name)
            if known is not None and {known, kind} <= {"int", "number"}:
                kind = known  # whole numbers are numbers: the field map's type holds
            if known is not None and known != kind:
                self.error(pointer, f"fact '{name}' is {kind_word(known)}; it cannot be "
                                    f"declared as {kind_word(kind)}",
                           f"declare it as \"{known}\", or give the custom fact another name")
                continue
            self.facts[name] = kind
            self.declared_facts[name] = kind

    def _declared_outputs(self, raw: Any) -> None:
        """Record the file's declared custom outputs (their decisions are checked later)."""
        for name, spec in _dict(raw).items():
            pointer = f"/outputs/{escape_pointer_token(name)}"
            if not isinstance(spec, dict) or spec.get("type") not in HITS_BY_TYPE:
                continue  # the schema layer reports it
            if name in OUTPUTS:
                self.error(pointer, f"'{name}' is one of crmsync's own outputs "
                                    f"({', '.join(OUTPUTS)}); a declared output needs another "
                                    "name", key=True)
                continue
            if name in RESERVED_NAMES:
                self.error(pointer, f"'{name}' is reserved ({', '.join(RESERVED_NAMES)}: run "
                                    "counts and rule-test keys); a declared output needs "
                                    "another name", key=True)
                continue
            if name in self.facts:
                self.error(pointer, f"output '{name}' has the name of a fact; give it another "
                                    "name", key=True)
                continue
            kind = spec["type"]
            values = spec.get("values")
            if values is not None and kind not in ("str", "list"):
                self.error(f"{pointer}/values", f"only text and list outputs take \"values\"; "
                                                f"'{name}' is {_TYPE_WORDS[kind]}", key=True)
                values = None
            if isinstance(values, list) and all(isinstance(v, str) for v in values):
                allowed: tuple[str, ...] | None = tuple(values)
            else:
                allowed = None
            label = spec.get("label")
            self.declared_outputs[name] = OutputSpec(
                name, kind, allowed,
                label if isinstance(label, str) and label else name.replace("_", " ").capitalize(),
                pointer)

    def _declared_kind(self, spec: OutputSpec, hit: str,
                       pointer: str) -> tuple[str, tuple[str, ...] | None]:
        """The type and closed value set a decision of a declared output has; checks its hit."""
        hits = HITS_BY_TYPE[spec.kind]
        if hit not in hits:
            self.error(f"{pointer}/hit",
                       f"output '{spec.name}' is declared as {_TYPE_WORDS[spec.kind]} "
                       f"(\"outputs\", line {self.smap.locate(spec.pointer, key=True)[0]}); "
                       f"a '{hit}' decision cannot decide it",
                       f"use \"hit\": \"{hits[0]}\"")
        if spec.kind == "list":
            return "list", None
        return spec.kind, spec.values if spec.kind == "str" else None

    def _check_collected_value(self, output: str, value: Any, pointer: str) -> None:
        """A collected value of a declared list output with ``values`` must be one of them."""
        spec = self.declared_outputs.get(output)
        if spec is None or spec.values is None or value in spec.values:
            return
        self.error(pointer, f"{json.dumps(value)} is not a valid {output}; expected one of: "
                            f"{', '.join(spec.values)}",
                   did_you_mean(str(value), spec.values))

    def _check_declared_decided(self) -> None:
        """Every declared output needs a decision (else nothing would ever be written)."""
        undeclared = [name for name in self.output_order if name not in self.declared_outputs]
        for name, spec in self.declared_outputs.items():
            if name in self.outputs:
                continue
            hits = HITS_BY_TYPE[spec.kind]
            self.error(spec.pointer, f"output '{name}' is declared but no decision decides it",
                       did_you_mean(name, undeclared)
                       or f"add a decision {{\"output\": \"{name}\", \"hit\": \"{hits[0]}\", "
                          "\"rules\": [...]}", key=True)
