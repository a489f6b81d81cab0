"""The field map's per-object reader cache stays bounded in a long-lived process."""

from __future__ import annotations

from pathlib import Path

from crmsync.connectors import fieldmap
from crmsync.connectors.fieldmap_load import load_fieldmap

ROOT = Path(__file__).resolve().parents[2]


def test_a_fresh_field_map_per_run_does_not_grow_the_reader_cache_without_end() -> None:
    # A scheduler or the console loads the field map again for every run it starts.
    record = {"hs_object_id": "1", "numemployees": "120", "country": "US"}
    first = None
    for _ in range(200):
        facts, _outputs = load_fieldmap(ROOT / "connectors" / "hubspot.json").to_contact_facts(
            "contacts", record)
        first = first or facts
        assert facts == first  # a map read from a recycled cache entry reads the same
    assert len(fieldmap._READERS) <= fieldmap._READERS_MAX
