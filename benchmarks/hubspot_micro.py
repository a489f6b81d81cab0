"""In-process cost of the HubSpot connector's per-contact Python, function by function.

Run on demand (not a test):

    python benchmarks/hubspot_micro.py                      # about 30 s
    PYTHONPATH=/tmp/before/src python benchmarks/hubspot_micro.py   # another version

A seeded HubSpot account (``generate_org``, 2,000 contacts, the emulator in this process, no
HTTP) supplies contacts as a search returns them: the field map's properties, text or null.
Each row is timed in process CPU time, best of ``--repeats`` rounds, in µs per contact:

* ``to_contact_facts``: the field map over one contact's properties (no deals or company);
* ``encode outputs``: ``FieldWriter``'s encoding of a contact's 8 output values (the ones a
  first run writes: text, an int, datetimes, one null) into a batch/update input;
* ``sanitize body``: the SDK's ``sanitize_for_serialization`` over a 100-contact batch body,
  per contact (what every write call pays before ``json.dumps``);
* ``json search page``: ``json.loads`` of a 200-contact search answer, per contact.

The encoding row times ``encode_updates`` (before it existed: ``write_fields``' loop over
``FieldWriter._encode``, on a writer built without a connection).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from crmsync.connectors.base import RecordUpdate
from crmsync.connectors.fieldmap_load import load_fieldmap
from crmsync.sandbox.hubspot.emulator import HubSpotEmulator
from crmsync.sandbox.seed import generate_org

ROOT = Path(__file__).resolve().parent.parent


def _records(count: int) -> list[dict[str, Any]]:
    fieldmap = load_fieldmap(ROOT / "connectors" / "hubspot.json")
    wanted = fieldmap.objects["contacts"].fields() + fieldmap.output_fields()
    org = generate_org(count, 1, datetime(2026, 11, 23, tzinfo=UTC))
    emulator = HubSpotEmulator(org, clock=lambda: 1_795_000_000.0)
    out = []
    for record in emulator.records("contacts"):
        props = record["properties"]
        out.append({name: props.get(name) for name in wanted} | {"hs_object_id": record["id"]})
    return out


def _updates(count: int) -> list[RecordUpdate]:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    statuses = ["lead", "prospect", "opportunity", "disqualified"]
    return [RecordUpdate(str(1000 + i), "contacts", {
        "status": statuses[i % 4], "miss_type": None if i % 3 else "soft", "score": i % 97,
        "reason": f"score {i % 97}: fits the ICP; demo requested", "ruleset": "default@3f2a9c",
        "evaluated_at": now, "status_since": now if i % 2 else date(2026, 11, 1),
        "icp_tier": "A" if i % 2 else None}) for i in range(count)]


def _best(fn: Callable[[], object], per: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best / per * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    options = parser.parse_args()
    from hubspot.crm.contacts.api_client import ApiClient

    from crmsync.connectors.hubspot.writing import FieldWriter

    fieldmap = load_fieldmap(ROOT / "connectors" / "hubspot.json")
    records = _records(options.contacts)
    updates = _updates(options.contacts)
    try:
        from crmsync.connectors.hubspot.writing import encode_updates

        def encode(batch: list[RecordUpdate]) -> list[dict[str, Any]]:
            return encode_updates(fieldmap, batch)
    except ImportError:  # before encode_updates: write_fields' own loop over FieldWriter._encode
        writer = FieldWriter.__new__(FieldWriter)
        writer.fieldmap = fieldmap

        def encode(batch: list[RecordUpdate]) -> list[dict[str, Any]]:
            merged: dict[str, dict[str, str]] = {}
            for update in batch:
                values = merged.setdefault(update.record_id, {})
                for output, value in update.values.items():
                    values[fieldmap.outputs[output].field if output in fieldmap.outputs
                           else output] = writer._encode(output, value)
            return [{"id": rid, "properties": props} for rid, props in merged.items()]
    body = {"inputs": encode(updates[:100])}
    sanitize = ApiClient().sanitize_for_serialization
    page = json.dumps({"total": len(records), "results": [
        {"id": r["hs_object_id"], "properties": r, "createdAt": "2026-01-01T00:00:00.000Z",
         "updatedAt": "2026-11-01T00:00:00.000Z", "archived": False} for r in records[:200]],
        "paging": {"next": {"after": "200"}}}).encode()
    rows = {
        "to_contact_facts": (lambda: [fieldmap.to_contact_facts("contacts", r) for r in records],
                             len(records)),
        "encode outputs": (lambda: encode(updates), len(updates)),
        "sanitize body": (lambda: sanitize(body), 100),
        "json search page": (lambda: json.loads(page), 200),
    }
    print(f"{'function':<20}{'µs/contact':>12}   best of {options.repeats}, "
          f"{options.contacts} contacts, python {sys.version.split()[0]}")
    for name, (fn, per) in rows.items():
        print(f"{name:<20}{_best(fn, per, options.repeats):>12.2f}")


if __name__ == "__main__":
    main()
