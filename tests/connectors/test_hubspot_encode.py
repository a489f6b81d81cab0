"""The inline spellings of ``encode_updates`` equal ``encode_value``'s, value by value."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from pathlib import Path

import pytest

from crmsync.connectors.base import RecordUpdate
from crmsync.connectors.fieldmap import OutputTarget
from crmsync.connectors.fieldmap_load import load_fieldmap
from crmsync.connectors.hubspot.writing import encode_updates, encode_value
from crmsync.errors import ConfigError

FIELDMAP = Path(__file__).resolve().parents[2] / "connectors" / "hubspot.json"


class Tier(IntEnum):
    A = 1


def _values(rng: random.Random) -> list[object]:
    moment = datetime(2026, 11, 23, 9, 0, 0, rng.randrange(1_000_000), tzinfo=UTC)
    return [
        None, "", " lead ", "prospect", "ünïcode", str(rng.randrange(10**6)),
        0, -7, rng.randrange(10**12), True, False, 1.5, float("nan"), Decimal("2.50"), Tier.A,
        moment, moment.replace(tzinfo=None), moment.astimezone(timezone(timedelta(hours=5))),
        datetime(1, 1, 1, tzinfo=UTC), date(2026, 11, 1), ["a", "b"],
    ]


def test_encode_updates_matches_encode_value_for_every_class_and_output() -> None:
    fieldmap = load_fieldmap(FIELDMAP)
    outputs = dict(fieldmap.outputs)
    # One output with a value map and one typed datetime, to cover encode()'s other branches.
    outputs["status"] = replace(outputs["status"], values={"lead": "LEAD", "True": "yes"})
    outputs["extra"] = OutputTarget("extra", "crmsync_extra", "datetime")
    fieldmap = replace(fieldmap, outputs=outputs)
    rng = random.Random(9)
    updates = []
    for index in range(400):
        pool = _values(rng)
        updates.append(RecordUpdate(str(index % 150), "contacts",
                                    {name: rng.choice(pool) for name in outputs}))
    expected: dict[str, dict[str, str]] = {}
    for update in updates:
        props = expected.setdefault(update.record_id, {})
        for name, value in update.values.items():
            props[outputs[name].field] = encode_value(fieldmap, name, value)
    got = encode_updates(fieldmap, updates)
    assert got == [{"id": rid, "properties": props} for rid, props in expected.items()]
    assert all(type(v) is str for i in got for v in i["properties"].values())


def test_an_output_without_a_property_is_a_config_error() -> None:
    fieldmap = load_fieldmap(FIELDMAP)
    with pytest.raises(ConfigError, match="nope"):
        encode_updates(fieldmap, [RecordUpdate("1", "contacts", {"status": "lead", "nope": 1})])
