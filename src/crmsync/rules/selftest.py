"""Run a rule file's embedded tests and measure which rules they exercise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmsync.model import Decision
from crmsync.rules.ruleset import RuleSet
from crmsync.rules.tree import TestCase, iter_rules


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one embedded test.

    Attributes:
        name: The test's name.
        pointer: Where the test sits in the rule file.
        failures: What did not match (empty when it passed).
        decision: The decision the rules made.
    """

    name: str
    pointer: str
    failures: tuple[str, ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures


@dataclass
class SuiteResult:
    """All embedded tests of one rule file, plus rule coverage."""

    ruleset: RuleSet
    cases: list[CaseResult] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        """The failing cases."""
        return [case for case in self.cases if not case.passed]


def outputs_of(decision: Decision) -> dict[str, Any]:
    """Every output value of an explained decision (built-in and custom), from its trace."""
    values: dict[str, Any] = {
        "status": decision.status, "miss_type": decision.miss_type, "score": decision.score,
    }
    for entry in decision.trace or ():
        if "output" in entry and "value" in entry and "rule" not in entry:
            values[entry["output"]] = entry["value"]
    return values


def run_case(ruleset: RuleSet, case: TestCase) -> CaseResult:
    """Evaluate one test contact and compare with what it expects."""
    explained = ruleset.evaluate(case.facts, now=case.now, explain=True)
    fast = ruleset.evaluate(case.facts, now=case.now)
    failures = []
    if fast != _without_trace(explained):
        failures.append("the compiled evaluator and the interpreter disagree (please report "
                        "this as a crmsync bug)")
    outputs = outputs_of(explained)
    for key, want in case.expect.items():
        if key == "tasks":
            got = sorted(task.purpose for task in explained.tasks)
            if got != sorted(want):
                failures.append(f"tasks: expected {sorted(want)}, got {got}")
        elif key == "fired":
            missing = [rule for rule in want if rule not in explained.rules]
            if missing:
                failures.append(f"expected rule(s) to fire: {', '.join(missing)}; fired: "
                                f"{', '.join(explained.rules) or 'none'}")
        elif key == "not_fired":
            wrong = [rule for rule in want if rule in explained.rules]
            if wrong:
                failures.append(f"expected rule(s) not to fire: {', '.join(wrong)}")
        elif key == "reason":
            if explained.reason != want:
                failures.append(f"reason: expected {want!r}, got {explained.reason!r}")
        elif outputs.get(key) != want:
            failures.append(f"{key}: expected {want!r}, got {outputs.get(key)!r}")
    return CaseResult(case.name, case.pointer, tuple(failures), explained)


def run_tests(ruleset: RuleSet) -> SuiteResult:
    """Run every embedded test of ``ruleset`` and list the rules no test fires."""
    result = SuiteResult(ruleset)
    fired: set[str] = set()
    for case in ruleset.tree.tests:
        outcome = run_case(ruleset, case)
        result.cases.append(outcome)
        fired.update(outcome.decision.rules)
    result.uncovered = [rule_id for rule_id, _ in iter_rules(ruleset.tree) if rule_id not in fired]
    return result


def _without_trace(decision: Decision) -> Decision:
    from dataclasses import replace

    return replace(decision, trace=None)
