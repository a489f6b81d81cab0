"""Seeded field history: what a contact's facts were before their deal closed.

Backtests (``crmsync backtest``) judge rules on the facts as they stood just before a deal
closed, so the sandbox needs field history that makes sense against the deals' outcomes. For
each person with a closed (won or lost) deal, a few facts are given a value *as of the close*
that differs from today's, changed some time after the close; the as-of values lean towards
the default rules' profile for won deals (budget confirmed, a decision maker, buying signals,
recent activity) and away from it for lost ones. Today's values (the seed's
:class:`~crmsync.sandbox.seed.Person` attributes) are never touched, so every run, plan and
report over the seeded org is what it was before history existed.

Everything is drawn from a per-person generator of its own (like the seed's jitter), so history
is deterministic per seed and adds no draw to the main stream. Each emulator renders the
:class:`Change` list in its own wire shape (HubSpot ``propertiesWithHistory``, Salesforce
``ContactHistory``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmsync.sandbox.seed import Deal, Person

#: Person attributes that may have changed after a close (each emulator maps them to fields).
TRACKED = (
    "budget_confirmed", "decision_maker", "demo_requested", "trial_signup", "pricing_page_views",
    "employees", "last_activity_at", "country", "industry", "email", "not_a_fit",
)
#: Chance that a won contact who is outside the profile today was inside it at the close (the
#: champion moved to a personal address, the company shrank or was re-classified by an
#: enrichment tool, the contact moved abroad): fit contacts win more often.
WON_WAS_FIT = 0.75
#: Chance that a lost contact of an ICP-sized company was still too small at the close.
LOST_WAS_SMALL = 0.2

#: Share of people whose history is missing altogether (imported before history was kept).
MISSING_SHARE = 0.12
#: Changes land between an hour and this many days after the close (never after the anchor).
CHANGE_WITHIN_DAYS = 45


@dataclass(frozen=True)
class Change:
    """One recorded change of a person attribute: ``old`` became ``new`` at ``at``."""

    attribute: str
    at: datetime
    old: Any
    new: Any


@dataclass(frozen=True)
class History:
    """A person's recorded field history.

    Attributes:
        changes: Changes in time order (empty: nothing changed since the record was created).
        missing: No history is kept for this person at all (the CRM shows none).
        target: The closed deal the as-of values were drawn for (the latest closed one).
    """

    changes: tuple[Change, ...] = ()
    missing: bool = False
    target: Deal | None = None

    def first_values(self) -> dict[str, Any]:
        """Return each changed attribute's value at creation (the ``old`` of its first change)."""
        first: dict[str, Any] = {}
        for change in self.changes:
            first.setdefault(change.attribute, change.old)
        return first


def person_history(seed: int, person: Person, anchor: datetime) -> History:
    """Return ``person``'s field history for ``seed`` (deterministic, no shared generator)."""
    rng = random.Random(f"crmsync-history:{seed}:{person.index}")
    missing = rng.random() < MISSING_SHARE
    closed = [d for d in person.deals if d.outcome in ("won", "lost") and d.close_date <= anchor]
    if not closed:
        return History(missing=missing)
    target = max(closed, key=lambda d: d.close_date)
    if missing:
        return History(missing=True, target=target)
    cutoff = target.close_date
    room = anchor - cutoff - timedelta(hours=1)
    if room <= timedelta(0):
        return History(target=target)
    won = target.outcome == "won"
    changes = []
    for attribute in TRACKED:
        current = getattr(person, attribute)
        before = _before(rng, attribute, current, won, cutoff, person)
        if isinstance(before, datetime):
            before = max(before, person.created_at)
        if before == current:
            continue
        span = min(room, timedelta(days=CHANGE_WITHIN_DAYS))
        at = cutoff + timedelta(hours=1) + span * rng.random()
        changes.append(Change(attribute, at.replace(microsecond=0), before, current))
    changes.sort(key=lambda c: (c.at, c.attribute))
    return History(tuple(changes), target=target)


def _before(rng: random.Random, attribute: str, current: Any, won: bool, cutoff: datetime,
            person: Person) -> Any:
    """Draw an attribute's value as of ``cutoff``, leaning to the profile for won deals.

    Counters and once-set flags only grow, so their earlier value is never above today's.
    """
    if attribute in ("country", "industry", "email", "not_a_fit"):
        return _firmographic(rng, attribute, current, won, person)
    if attribute in ("budget_confirmed", "decision_maker"):
        return rng.random() < (0.8 if won else 0.25)
    if attribute in ("demo_requested", "trial_signup"):
        if current and not won and rng.random() < 0.7:
            return False  # the lost contact asked for it only after the deal was gone
        if not current and won and rng.random() < 0.35:
            return True  # unusual, but recorded: unset later by a data clean-up
        return current
    if attribute == "pricing_page_views":
        if not won and current and rng.random() < 0.7:
            return rng.randint(0, min(current, 2))
        return current
    if attribute == "employees":
        if current is not None and won and not 50 <= current <= 5000 \
                and rng.random() < WON_WAS_FIT:
            return rng.randint(50, 5000)
        if current is not None and not won and 50 <= current <= 5000 \
                and rng.random() < LOST_WAS_SMALL:
            return rng.randint(10, 49)
        if current is not None and rng.random() < 0.3:
            return max(1, round(current * rng.uniform(0.7, 0.95)))  # the company grew since
        return current
    if attribute == "last_activity_at":
        if current is None or current <= cutoff:
            return current  # nothing happened after the close
        days = rng.randint(0, 12) if won else rng.randint(20, 160)
        return (cutoff - timedelta(days=days, seconds=rng.randrange(86_400))).replace(
            microsecond=0)
    raise AssertionError(f"untracked attribute {attribute}")


def _firmographic(rng: random.Random, attribute: str, current: Any, won: bool,
                  person: Person) -> Any:
    """A won contact outside the profile today may have been inside it at the close."""
    # Imported here: the seed module imports this one.
    from crmsync.sandbox.seed import (
        EXCLUDED_INDUSTRIES,
        INDUSTRIES,
        PERSONAL_DOMAINS,
        SERVED_COUNTRIES,
    )

    if not won or current is None:
        return current
    if attribute == "not_a_fit" and current and rng.random() < WON_WAS_FIT:
        return False  # marked "not a fit" when the account churned after the purchase
    if attribute == "country" and current not in SERVED_COUNTRIES and rng.random() < WON_WAS_FIT:
        return rng.choice(SERVED_COUNTRIES)
    if attribute == "industry" and current in EXCLUDED_INDUSTRIES and rng.random() < WON_WAS_FIT:
        return rng.choice(INDUSTRIES)
    if attribute == "email" and person.company and rng.random() < WON_WAS_FIT:
        local, _, domain = str(current).partition("@")
        if domain in PERSONAL_DOMAINS:
            slug = "".join(ch for ch in person.company.split()[0].lower() if ch.isalnum())
            return f"{local}@{slug or 'company'}{person.index % 50}.example.com"
    return current
