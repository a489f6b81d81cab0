"""Backtests: how well a rule set's status and score separate won deals from lost ones.

Input: :class:`~crmsync.connectors.asof.OutcomeRecord` values, one per contact whose deal
closed, with the facts as they stood just before the close. Each is evaluated with the close as
the rules' ``now``; the result is compared with the outcome:

* **win rate per status** and **per score band**, each with its *lift*: the row's win rate
  divided by the base rate (the share of all judged contacts that won). Lift 2.0 means "twice
  as likely to win as the average contact"; 1.0 means the row tells nothing.
* **precision and recall of "opportunity"** read as a prediction of a win: of the contacts the
  rules called an opportunity, the share that won; of those that won, the share the rules
  called an opportunity.
* **how much was taken from current values** (no history for the field), so a reader knows how
  far the table can be trusted.

Pure computation: no CRM, no I/O (the HTML page is :mod:`crmsync.workbench.backtest_html`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from crmsync.connectors.asof import OutcomeRecord
from crmsync.model import STATUSES
from crmsync.rules import RuleSet

#: Score bands of the lift table (inclusive bounds; scores are clamped to 0..100 by the rules).
SCORE_BANDS: tuple[tuple[int, int], ...] = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 100))
#: The status read as "predicts a win".
PREDICTS_WIN = "opportunity"


@dataclass(frozen=True)
class Judged:
    """One contact's verdict as of its close, next to the outcome."""

    contact_id: str
    deal_id: str
    outcome: str
    closed_at: datetime
    status: str
    score: int
    from_current: tuple[str, ...]
    from_history: int

    @property
    def won(self) -> bool:
        """Whether the judged deal was won."""
        return self.outcome == "won"


@dataclass(frozen=True)
class LiftRow:
    """One row of a lift table."""

    label: str
    contacts: int
    won: int
    lost: int
    win_rate: float | None
    lift: float | None


@dataclass(frozen=True)
class Prediction:
    """Precision and recall of one status read as a prediction of a win."""

    status: str
    predicted: int
    true_positives: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class Backtest:
    """A backtest's results (:func:`run_backtest`); :meth:`to_json` is the JSON output."""

    ruleset: str
    since: datetime
    until: datetime
    contacts: int
    won: int
    lost: int
    base_rate: float | None
    by_status: list[LiftRow]
    by_band: list[LiftRow]
    opportunity: Prediction
    #: Share of the facts with a value (identity and deal facts aside) read from current values.
    current_share: float | None
    #: Contacts none of whose facts came from history.
    without_history: int
    #: Fact -> number of contacts for which it came from the current value.
    current_facts: dict[str, int] = field(default_factory=dict)
    judged: list[Judged] = field(default_factory=list)

    def to_json(self, *, with_contacts: bool = False) -> dict[str, Any]:
        """Return JSON-ready data (per-contact verdicts only when asked: ids, no facts)."""
        out: dict[str, Any] = {
            "ruleset": self.ruleset,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "contacts": self.contacts,
            "won": self.won,
            "lost": self.lost,
            "base_rate": self.base_rate,
            "by_status": [asdict(r) for r in self.by_status],
            "by_score_band": [asdict(r) for r in self.by_band],
            "opportunity": asdict(self.opportunity),
            "facts_from_current_share": self.current_share,
            "contacts_without_history": self.without_history,
            "facts_from_current": dict(sorted(self.current_facts.items())),
        }
        if with_contacts:
            out["judged"] = [
                {"contact_id": j.contact_id, "deal_id": j.deal_id, "outcome": j.outcome,
                 "closed_at": j.closed_at.isoformat(), "status": j.status, "score": j.score,
                 "from_current": list(j.from_current)}
                for j in self.judged
            ]
        return out


def band_of(score: int) -> str:
    """Return the label of the score band holding ``score`` (``"40-59"``)."""
    for low, high in SCORE_BANDS:
        if low <= score <= high:
            return f"{low}-{high}"
    return f"{SCORE_BANDS[0][0]}-{SCORE_BANDS[0][1]}" if score < 0 else \
        f"{SCORE_BANDS[-1][0]}-{SCORE_BANDS[-1][1]}"


def judge(ruleset: RuleSet, records: Iterable[OutcomeRecord]) -> list[Judged]:
    """Evaluate each record's as-of facts with its close as ``now``."""
    out = []
    for record in records:
        decision = ruleset.evaluate(record.facts, now=record.as_of, contact_id=record.contact_id,
                                    coerced=True)
        out.append(Judged(record.contact_id, record.deal_id, record.outcome, record.closed_at,
                          decision.status, int(decision.score), tuple(record.from_current()),
                          len(record.from_history())))
    return out


def lift_rows(groups: Sequence[tuple[str, Sequence[Judged]]],
              base_rate: float | None) -> list[LiftRow]:
    """Return one lift row per ``(label, contacts)`` group."""
    rows = []
    for label, members in groups:
        won = sum(1 for j in members if j.won)
        rate = won / len(members) if members else None
        lift = rate / base_rate if rate is not None and base_rate else None
        rows.append(LiftRow(label, len(members), won, len(members) - won, rate, lift))
    return rows


def run_backtest(ruleset: RuleSet, records: Iterable[OutcomeRecord], *, since: datetime,
                 until: datetime) -> Backtest:
    """Judge every record and sum the results up (see the module docstring)."""
    materialised = list(records)
    judged = judge(ruleset, materialised)
    won = sum(1 for j in judged if j.won)
    base = won / len(judged) if judged else None
    statuses = [*STATUSES, *sorted({j.status for j in judged} - set(STATUSES))]
    by_status = lift_rows([(s, [j for j in judged if j.status == s]) for s in statuses], base)
    bands = [f"{low}-{high}" for low, high in SCORE_BANDS]
    by_band = lift_rows([(b, [j for j in judged if band_of(j.score) == b]) for b in bands], base)
    predicted = [j for j in judged if j.status == PREDICTS_WIN]
    hits = sum(1 for j in predicted if j.won)
    opportunity = Prediction(PREDICTS_WIN, len(predicted), hits,
                             hits / len(predicted) if predicted else None,
                             hits / won if won else None)
    from_current = sum(len(j.from_current) for j in judged)
    with_value = from_current + sum(j.from_history for j in judged)
    counts: Counter[str] = Counter(f for j in judged for f in j.from_current)
    return Backtest(
        ruleset=ruleset.version, since=since, until=until, contacts=len(judged), won=won,
        lost=len(judged) - won, base_rate=base, by_status=by_status, by_band=by_band,
        opportunity=opportunity,
        current_share=from_current / with_value if with_value else None,
        without_history=sum(1 for j in judged if j.from_history == 0),
        current_facts=dict(counts), judged=judged,
    )
