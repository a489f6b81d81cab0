"""The sync loop's own per-contact CPU: ``plan_contact`` and ``Tally.add``, in process.

Run on demand (not a test):

    python benchmarks/loop_bench.py            # best of 7, 10,000 contacts

Decisions come from the default rule set on ``rules_bench.generate``'s facts, so statuses,
tasks and rule hits are a real run's mix. Two cases: a **first** run (nothing stored: every
output written) and a **re-run** (the stored outputs equal the decision: nothing written,
the common case of a scheduled run). CPU is ``time.process_time``; µs per contact.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules_bench import generate  # noqa: E402

from crmsync.model import Contact  # noqa: E402
from crmsync.plan import PlanOptions, plan_contact  # noqa: E402
from crmsync.rules import load_ruleset  # noqa: E402
from crmsync.sync.summary import RunSummary  # noqa: E402
from crmsync.sync.tally import Tally, miss_rule_ids, rule_ids  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _cases(count: int) -> dict[str, list[tuple[Contact, object]]]:
    ruleset = load_ruleset(ROOT / "rules" / "default.json")
    first, rerun = [], []
    for index, facts in enumerate(generate(count)):
        contact_id = f"C{index:06d}"
        decision = ruleset.evaluate(facts, now=NOW, contact_id=contact_id)
        first.append((Contact(contact_id, facts, {}, "Contact", NOW, "005A"), decision))
        stored = {"status": decision.status, "miss_type": decision.miss_type,
                  "score": decision.score, "reason": decision.reason,
                  "ruleset": decision.ruleset_version or decision.ruleset_hash[:12],
                  "evaluated_at": NOW, "status_since": NOW}
        rerun.append((Contact(contact_id, facts, stored, "Contact", NOW, "005A"), decision))
    return {"first": first, "re-run": rerun, "_ruleset": ruleset}  # type: ignore[dict-item]


def main() -> None:
    """Print µs per contact of plan_contact and of plan_contact + Tally.add."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    cases = _cases(options.contacts)
    ruleset = cases.pop("_ruleset")
    plan_options = PlanOptions(keep_open_purposes=frozenset())
    for name, pairs in cases.items():
        best_plan = best_both = float("inf")
        for _ in range(options.repeat):
            start = time.process_time()
            plans = [plan_contact(c, d, now=NOW, options=plan_options) for c, d in pairs]
            best_plan = min(best_plan, time.process_time() - start)
            tally = Tally(RunSummary("r", "salesforce", "run", NOW), NOW,
                          miss_rule_ids(ruleset.tree.decisions), 5, rule_ids(ruleset.tree))
            start = time.process_time()
            for plan in plans:
                tally.add("salesforce:Contact", plan, by_rules=False)
            best_both = min(best_both, time.process_time() - start)
        per = 1e6 / len(pairs)
        print(f"{name:<8} plan_contact {best_plan * per:6.2f} µs   "
              f"Tally.add {best_both * per:6.2f} µs")


if __name__ == "__main__":
    main()
