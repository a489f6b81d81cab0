"""Layer 2 of rule-file validation: the embedded tests (``tests``)."""

from __future__ import annotations

import json
from typing import Any

from crmsync.rules.jsonpos import escape_pointer_token
from crmsync.rules.tree import Rule, TaskRule, TestCase
from crmsync.rules.validate_base import (
    _EXPECT_EXTRAS,
    DEFAULT_TEST_NOW,
    CheckerBase,
    _dict,
    _list,
    did_you_mean,
    parse_datetime,
)


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

    def _all_decisions(self) -> list[list[Rule]]:
        rules: list[list[Rule]] = []
        for item in _list(_dict(self.doc).get("decisions")):
            rules.append([Rule(r["id"], "", None) for r in _list(_dict(item).get("rules"))
                          if isinstance(r, dict) and isinstance(r.get("id"), str)])
        return rules
