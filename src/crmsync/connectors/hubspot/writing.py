"""Writing crmsync's output properties: value encoding and ``batch/update`` with bisection.

``batch/update`` runs at 100 a call (idempotent, so retried on 429/5xx/timeouts). A batch
HubSpot rejects as a whole (400: one bad value fails all 100) is split in halves until the bad
record is alone, so neighbours still get written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

from crmsync.connectors.base import RecordUpdate, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.hubspot.client import HubSpotClient
from crmsync.connectors.hubspot.errors import _Rejected
from crmsync.connectors.hubspot.wire import BATCH, RETRYABLE, _iso, _results
from crmsync.errors import ConfigError


class FieldWriter:
    """Writes crmsync's contact properties (and task updates) with batch updates."""

    def __init__(self, client: HubSpotClient, fieldmap: FieldMap) -> None:
        self._http = client
        self._raw = client.raw
        self.fieldmap = fieldmap

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output properties with ``batch/update`` (100 a call); one result per record.

        Several updates of one record are merged (HubSpot rejects duplicate ids in a batch).
        """
        inputs = encode_updates(self.fieldmap, updates)
        results: list[WriteResult] = []
        for chunk in chunks(inputs, BATCH):
            results.extend(self.update("contacts", "contacts.batch", list(chunk)))
        return results

    def update(self, what: str, api_name: str, inputs: list[dict[str, Any]]) -> list[WriteResult]:
        """Batch-update ``inputs``; a batch rejected as a whole is halved until the culprit."""
        body = {"inputs": inputs}
        try:
            answer = self._http.call(f"batch update {what}", api_name,
                                lambda api: api.update(
                                    batch_input_simple_public_object_batch_input=body,
                                    **self._raw),
                                records_may_be_gone=True)
        except _Rejected as error:
            if error.code == "PROPERTY_DOESNT_EXIST":
                # Every record would fail the same way, on every run: a setup problem, not a
                # bad record. Halving down to single records would only multiply the calls.
                raise ConfigError(f"HubSpot batch update {what}: a crmsync property does not "
                                  "exist in this portal; run `crmsync setup`") from error
            if len(inputs) == 1:
                return [WriteResult(str(inputs[0]["id"]), False, error.code or error.category
                                    or f"HTTP_{error.status}", str(error), retryable=False)]
            half = len(inputs) // 2
            return (self.update(what, api_name, inputs[:half])
                    + self.update(what, api_name, inputs[half:]))
        ids = [str(i["id"]) for i in inputs]
        ok = {str(r["id"]) for r in _results(answer)}
        failed = batch_errors(answer, [i for i in ids if i not in ok])
        out = []
        for record_id in ids:
            if record_id in ok:
                out.append(WriteResult(record_id, True))
            else:
                code, message = failed.get(record_id, ("MISSING_FROM_RESPONSE",
                                                       "HubSpot did not report this record"))
                out.append(WriteResult(record_id, False, code, message,
                                       retryable=code in RETRYABLE))
        return out


def encode_value(fieldmap: FieldMap, output: str, value: Any) -> str:
    """Spell one output value as HubSpot stores it (text; ``""`` clears the property).

    Raises:
        ConfigError: ``output`` has no HubSpot property in the field map.
    """
    target = fieldmap.outputs.get(output)
    if target is None:
        raise _unmapped(fieldmap, output)
    if value is None:
        return ""  # HubSpot clears a property written as ""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, dtime.min, tzinfo=UTC)
    encoded = target.encode(value)
    if isinstance(encoded, datetime):
        return _iso(encoded)
    if isinstance(encoded, bool):
        return "true" if encoded else "false"
    return str(encoded)


def _unmapped(fieldmap: FieldMap, output: str) -> ConfigError:
    return ConfigError(f"output {output!r} has no HubSpot property in {fieldmap.path}")


def encode_updates(fieldmap: FieldMap, updates: Sequence[RecordUpdate]) -> list[dict[str, Any]]:
    """Return the ``batch/update`` inputs for ``updates``: one per record, values as text.

    Several updates of one record are merged into one input (HubSpot rejects duplicate ids in
    a batch). Every value is spelled as :func:`encode_value` spells it; the common classes
    (None, text, int, UTC datetimes) are spelled inline, with the output's target looked up
    once per call rather than per value: a run writes 8 values per contact.
    ``tests/connectors/test_hubspot_encode.py`` holds the two spellings equal.
    """
    outputs = fieldmap.outputs
    # output -> (HubSpot property, its value map or None), looked up on first use.
    targets: dict[str, tuple[str, Any]] = {}
    # A run stamps every contact with the same evaluated_at: spell each instant once.
    spelled: dict[datetime, str] = {}
    merged: dict[str, dict[str, str]] = {}
    for update in updates:
        values = merged.get(update.record_id)
        if values is None:
            values = merged[update.record_id] = {}
        for output, value in update.values.items():
            target = targets.get(output)
            if target is None:
                found = outputs.get(output)
                if found is None:
                    raise _unmapped(fieldmap, output)
                target = targets[output] = (found.field, found.values)
            field, mapped = target
            cls = value.__class__
            if value is None:
                values[field] = ""
            elif mapped is None and cls is str:
                values[field] = value
            elif mapped is None and cls is int:
                values[field] = str(value)
            elif mapped is None and cls is datetime and value.tzinfo is UTC:
                # UTC only: equal datetimes of one other zone can differ in fold (and instant).
                text = spelled.get(value)
                if text is None:
                    text = spelled[value] = _iso(value)
                values[field] = text
            else:
                values[field] = encode_value(fieldmap, output, value)
    return [{"id": rid, "properties": props} for rid, props in merged.items()]


def batch_errors(answer: Any, unmatched: list[str]) -> dict[str, tuple[str, str]]:
    """Map a 207's errors onto record ids (``context.ids``); the rest by elimination."""
    failed: dict[str, tuple[str, str]] = {}
    loose: list[tuple[str, str]] = []
    for error in answer.get("errors") or []:
        details = [d for d in error.get("errors") or [] if isinstance(d, dict)]
        category = str(error.get("category") or "ERROR")
        code = (details[0].get("code") if details else None) or category
        # Category and code only: HubSpot's messages can quote the values sent.
        message = category + (f" {code}" if code != category else "")
        context = error.get("context") or {}
        ids = [str(i) for i in (context.get("ids") or context.get("id") or [])]
        if ids:
            for record_id in ids:
                failed[record_id] = (str(code), message)
        else:
            loose.append((str(code), message))
    rest = [i for i in unmatched if i not in failed]
    if loose:
        for index, record_id in enumerate(rest):
            failed[record_id] = loose[min(index, len(loose) - 1)]
    return failed
