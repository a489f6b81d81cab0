"""Property tests: any contact, however odd, gets exactly one valid, deterministic decision."""

# ruff: noqa: E501 - rule snippets and their expectations read best one per line

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crmsync.model import APPROACHES, MISS_TYPES, PRIORITIES, STATUSES
from crmsync.rules import CANONICAL_FACTS

from .conftest import NOW

FACTS = sorted(CANONICAL_FACTS)

#: Values a CRM (or a person writing JSON Lines) might send for any field.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "null", "yes", "NO", "1,200", "12.5", "1767225600000", "2026-01-01",
                     "2025-13-45", "US", "gmail.com", "VP Sales", "Went with a competitor",
                     "budget", "opportunity", " Prospect ", "BAD_TIMING", "∞", "\x00", "🙂" * 3]),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.dates(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

#: Values of the right type, so that realistic paths through the rules are exercised too.
typed = {
    "str": st.one_of(st.none(), st.sampled_from(["US", "DE", "BR", None, "gmail.com", "acme.io",
                                                 "VP of Sales", "Student", "Education",
                                                 "Project cancelled", "Other", "opportunity",
                                                 "prospect", "lead", "Salesforce", "BAD_TIMING"])),
    "int": st.one_of(st.none(), st.integers(min_value=-5, max_value=20_000)),
    "number": st.one_of(st.none(), st.floats(min_value=0, max_value=1e9)),
    "bool": st.one_of(st.none(), st.booleans()),
    "datetime": st.one_of(st.none(), st.datetimes(min_value=datetime(2024, 1, 1),
                                                  max_value=datetime(2026, 6, 1),
                                                  timezones=st.just(UTC))),
}
realistic = st.fixed_dictionaries({}, optional={name: typed[kind] for name, kind in CANONICAL_FACTS.items()})
odd = st.dictionaries(st.one_of(st.sampled_from(FACTS), st.text(max_size=8)), junk, max_size=25)
contacts = st.one_of(realistic, odd)
nows = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([None, UTC]))


@settings(max_examples=300, deadline=None)
@given(contact=contacts, now=nows)
def test_every_contact_gets_exactly_one_valid_decision(default_rules, contact, now) -> None:
    decision = default_rules.evaluate(contact, now=now)
    assert decision.status in STATUSES
    assert decision.miss_type in MISS_TYPES
    assert type(decision.score) is int and 0 <= decision.score <= 100
    assert isinstance(decision.reason, str) and 0 < len(decision.reason) <= 255
    assert set(decision.rules) <= {r for r, _ in _rule_ids(default_rules)}
    purposes = [task.purpose for task in decision.tasks]
    assert len(purposes) == len(set(purposes))
    today = (now if now.tzinfo else now.replace(tzinfo=UTC)).date()
    for task in decision.tasks:
        assert task.priority in PRIORITIES and task.approach in APPROACHES
        assert isinstance(task.due, date) and today <= task.due <= today + timedelta(days=30)
        assert task.due.weekday() < 5


@settings(max_examples=200, deadline=None)
@given(contact=contacts, now=nows)
@example(contact={"email": "@0"}, now=datetime(2000, 1, 1))  # the domain comes from the email
def test_evaluation_is_deterministic_and_both_evaluators_agree(default_rules, contact, now) -> None:
    first = default_rules.evaluate(contact, now=now)
    assert default_rules.evaluate(dict(contact), now=now) == first
    # evaluate() falls back to the interpreter if compiled code ever raised; it must not.
    constants = default_rules._constants_for(now)
    assert default_rules._function(contact, constants, first.contact_id) == first
    assert default_rules._explain(contact, constants, first.contact_id).trace is not None
    assert default_rules.interpret(contact, now=now) == first
    explained = default_rules.evaluate(contact, now=now, explain=True)
    assert explained.trace is not None
    assert replace(explained, trace=None) == first
    # The compiled trace is the reference interpreter's, entry for entry, given the facts as
    # evaluate() hands them to it (email_domain derived from the email: {"email": "@0"}).
    prepared, contact_id = default_rules._prepared(contact, first.contact_id)
    reference = default_rules._interpret(prepared, default_rules._constants_for(now),
                                         contact_id, explain=True)
    assert explained.trace == reference.trace


@settings(max_examples=200, deadline=None)
@given(contact=realistic, dropped=st.sampled_from(FACTS))
def test_an_unknown_value_never_disqualifies_on_its_own(default_rules, contact, dropped) -> None:
    # DOMAIN.md: "A value that is simply unknown (null) never disqualifies on its own."
    # Forgetting a fact can only turn true conditions into unknown ones (Kleene logic is
    # monotone), so a contact that is not disqualified stays so. The manual override is the one
    # exception by design: it wins over the disqualifiers only while it is there.
    contact = {k: v for k, v in contact.items() if k != "status_override"}
    before = default_rules.evaluate(contact, now=NOW)
    after = default_rules.evaluate({**contact, dropped: None}, now=NOW)
    if before.status != "disqualified":
        assert after.status != "disqualified"


@settings(max_examples=100, deadline=None)
@given(contact=realistic)
def test_the_override_always_wins(default_rules, contact) -> None:
    for wanted in STATUSES:
        decision = default_rules.evaluate({**contact, "status_override": wanted.upper()}, now=NOW)
        assert decision.status == wanted


def test_non_mapping_facts_are_treated_as_empty(default_rules) -> None:
    for odd_input in (None, [], "text", 42):
        decision = default_rules.evaluate(odd_input, now=NOW)  # type: ignore[arg-type]
        assert decision.status == "lead" and decision.contact_id == ""


def _rule_ids(rules):
    from crmsync.rules.tree import iter_rules

    return iter_rules(rules.tree)
