"""``FieldMap.to_contact_facts`` reads what the plain per-source path reads.

The fast paths (plain fields, transformed fields and outputs with their coercers looked up once
per map; contacts without deals) must give the same facts, outputs and key order as
``FactSource.read``, ``OutputTarget.decode`` and ``rollup_deals`` applied one by one.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from crmsync.connectors.fieldmap import (
    PREVIOUS_OUTPUT_FACTS,
    FactSource,
    FieldMap,
    OutputTarget,
    get_field,
    rollup_deals,
)
from crmsync.connectors.fieldmap_load import load_fieldmap

ROOT = Path(__file__).resolve().parents[2]
_TEXT = ["", " ", "120", " 1,200 ", "5.5", "-3", "１２", "²", "1e3", "n/a", "true", " Yes ",
         "off", "0", "1", "checked", "2026-11-23T09:00:00Z", "2026-11-23", "1700000000000",
         "-1", "99999999999999999", "Pat@Example.COM", " pat@", "us", "ünïcode", "x" * 120,
         "LEAD", "soft"]


def _value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.25:
        return None
    if pick < 0.8:
        return rng.choice(_TEXT)
    return rng.choice([True, False, 0, 1, 7, -2, 5.5, float("nan"), float("inf"), 10**20,
                       datetime(2026, 1, 2, 3, tzinfo=UTC), datetime(2026, 1, 2),
                       date(2026, 5, 6), datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                       ["a"], {"b": 1}])


def _plain(fieldmap: FieldMap, record: dict[str, Any],
           deals: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    facts: dict[str, Any] = {}
    for source in fieldmap.objects["contacts"].sources:
        facts[source.fact] = source.read(record, facts)
    outputs = {name: t.decode(get_field(record, t.field)) for name, t in fieldmap.outputs.items()}
    for fact, output in PREVIOUS_OUTPUT_FACTS.items():
        facts[fact] = outputs.get(output)
    assert fieldmap.deals is not None
    facts.update(rollup_deals(fieldmap.deals, deals))
    return facts, outputs


def _same(a: Any, b: Any) -> bool:
    # NaN is never produced (coercion nulls it), so plain equality plus types will do.
    return a == b and type(a) is type(b)


def test_to_contact_facts_equals_the_plain_path_over_generated_records() -> None:
    fieldmap = load_fieldmap(ROOT / "connectors" / "hubspot.json")
    contacts = fieldmap.objects["contacts"]
    # Also a value map, a dotted field and an output with a value map: the slow paths.
    sources = (*contacts.sources[:-1],
               FactSource("lead_source", "str", field="hs_analytics_source",
                          values={"OFFLINE": "offline", "*": "other"}),
               FactSource("industry", "str", field="parent.industry", transform="lower"),
               contacts.sources[-1])
    outputs = dict(fieldmap.outputs)
    outputs["miss_type"] = replace(outputs["miss_type"], values={"soft": "SOFT"})
    fieldmap = replace(fieldmap, objects={"contacts": replace(contacts, sources=sources)},
                       outputs=outputs)
    fields = [s.field for s in sources if s.field] + [t.field for t in outputs.values()]
    rng = random.Random(13)
    for index in range(3000):
        record = {name: _value(rng) for name in fields if "." not in name}
        record["parent"] = {"industry": _value(rng)} if index % 2 else _value(rng)
        deals = [] if index % 3 else [{"dealstage": rng.choice(["closedwon", "closedlost", "x"]),
                                       "amount": _value(rng), "closedate": _value(rng)}]
        got = fieldmap.to_contact_facts("contacts", record, deals)
        want = _plain(fieldmap, record, deals)
        for g, w in zip(got, want, strict=True):
            assert list(g) == list(w)
            assert all(_same(g[k], w[k]) for k in w), (record, g, w)


def test_output_targets_are_read_through_their_own_decode() -> None:
    fieldmap = load_fieldmap(ROOT / "connectors" / "hubspot.json")
    outputs = dict(fieldmap.outputs)
    outputs["score"] = OutputTarget("score", "crmsync_score", "int")
    _facts, got = replace(fieldmap, outputs=outputs).to_contact_facts(
        "contacts", {"crmsync_score": " 42 ", "crmsync_status": " lead "})
    assert got["score"] == 42 and got["status"] == "lead"
