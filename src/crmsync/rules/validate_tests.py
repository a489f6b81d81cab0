"""Layer 2 of rule-file validation: the embedded tests (``tests``)."""

from __future__ import annotations

import json
from typing import Any

from crmsync.coerce import coerce
from crmsync.rules.jsonpos import escape_pointer_token
from crmsync.rules.tree import Rule, TaskRule, TestCase
from crmsync.rules.validate_base import (
    _EXPECT_EXTRAS,
    DEFAULT_TEST_NOW,
    CheckerBase,
    _dict,
    _list,
    _show,
    did_you_mean,
    kind_word,
    parse_datetime,
)

#: Fact type -> an example of a value of that type, for hints.
_EXAMPLES = {
    "str": "write text in quotes, e.g. \"Director\", or null for a missing value",
    "int": "write a whole number, e.g. 250, or null for a missing value",
    "number": "write a number, e.g. 12500.5, or null for a missing value",
    "bool": "write true or false, or null for a missing value",
    "datetime": "write an ISO 8601 date like \"2026-01-31\" or \"2026-01-31T09:00:00Z\", "
                "or null for a missing value",
}


class TestChecks(CheckerBase):
    """Checks of the embedded example contacts and their expectations."""

    # -- embedded tests ------------------------------------------------------------------

    def _tests(self, raw: Any, tasks: list[TaskRule]) -> list[TestCase]:
        rule_ids = {r.id for d in self._all_decisions() for r in d} | {t.id for t in tasks}
        purposes = {t.purpose for t in tasks}
        result = []
        names_seen: set[str] = set()
        for index, item in enumerate(_list(raw)):
            pointer = f"/tests/{index}"
            if not isinstance(item, dict):
                continue
            name = str(item.get("name", f"test {index}"))
            if name in names_seen:
                self.error(f"{pointer}/name", f"duplicate test name '{name}'")
            names_seen.add(name)
            now = parse_datetime(item.get("now", DEFAULT_TEST_NOW))
            if now is None:
                self.error(f"{pointer}/now", "'now' is an ISO 8601 date-time like "
                                             "2026-01-05T09:00:00Z")
            facts = _dict(item.get("facts"))
            for fact in facts:
                if fact not in self.facts:
                    hint = did_you_mean(fact, self.facts)
                    if fact in self.derived_raw:
                        hint = "derived facts are computed; give the facts they derive from"
                    self.error(f"{pointer}/facts/{escape_pointer_token(fact)}",
                               f"unknown fact '{fact}'", hint, key=True)
                else:
                    self._test_fact_value(fact, facts[fact],
                                          f"{pointer}/facts/{escape_pointer_token(fact)}")
            expect = _dict(item.get("expect"))
            if isinstance(item.get("expect"), dict) and not expect:
                self.error(f"{pointer}/expect", "the test expects nothing; add at least the "
                                                "expected status")
            for key, value in expect.items():
                k_ptr = f"{pointer}/expect/{escape_pointer_token(key)}"
                if key in ("fired", "not_fired"):
                    for i, rule_id in enumerate(_list(value)):
                        if not isinstance(rule_id, str) or rule_id not in rule_ids:
                            self.error(f"{k_ptr}/{i}", f"unknown rule id {json.dumps(rule_id)}",
                                       did_you_mean(str(rule_id), rule_ids))
                elif key == "tasks":
                    for i, purpose in enumerate(_list(value)):
                        if not isinstance(purpose, str) or purpose not in purposes:
                            self.error(f"{k_ptr}/{i}", f"no task has purpose "
                                                       f"{json.dumps(purpose)}",
                                       did_you_mean(str(purpose), purposes))
                elif key == "reason":
                    continue
                elif key not in self.outputs:
                    self.error(k_ptr, f"unknown output '{key}'",
                               did_you_mean(key, [*self.outputs, *_EXPECT_EXTRAS]), key=True)
                elif self.outputs[key][2] is not None and value not in self.outputs[key][2]:
                    closed = self.outputs[key][2] or ()
                    self.error(k_ptr, f"{json.dumps(value)} is not a valid {key}",
                               did_you_mean(str(value), closed))
            result.append(TestCase(name, pointer, now, dict(facts), dict(expect)))
        return result

    def _test_fact_value(self, fact: str, value: Any, pointer: str) -> None:
        """Refuse an example value the engine would silently treat as missing.

        A test exists to show what a value does; ``"employees": "lots"`` would quietly test a
        contact without employees. Values the shared coercion understands (``"1,200"``,
        ``"yes"``, epoch milliseconds) are fine: they are what CRMs send. ``null`` and blank
        text say "missing" on purpose.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            return
        kind = self.facts[fact]
        if coerce(value, kind) is not None:
            return
        self.error(pointer, f"fact '{fact}' is {kind_word(kind)}; {_show(value)} is not, so "
                            "the test would see it as missing",
                   _EXAMPLES.get(kind, "write null for a missing value"))

    def _all_decisions(self) -> list[list[Rule]]:
        rules: list[list[Rule]] = []
        for item in _list(_dict(self.doc).get("decisions")):
            rules.append([Rule(r["id"], "", None) for r in _list(_dict(item).get("rules"))
                          if isinstance(r, dict) and isinstance(r.get("id"), str)])
        return rules
