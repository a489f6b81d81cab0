"""HubSpot wire constants and small helpers shared by the connector's parts (JSON, time, keys)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crmsync.connectors.fieldmap import FieldMap, coerce

#: Largest contacts-list page and batch size HubSpot accepts.
BATCH = 100
#: Largest search page.
SEARCH_PAGE = 200
#: Search results HubSpot serves for one query (``after + limit`` beyond it is a 400).
SEARCH_CAP = 10_000
#: Values one ``IN`` search filter carries, and filter groups per search (the documented cap
#: is 5 groups, 6 filters each, 18 in all): a task-key lookup puts 100 keys in each of 5
#: groups, so one search checks the keys of five create batches.
IN_VALUES, SEARCH_GROUPS = 100, 5
#: Task keys one lookup search checks.
KEY_LOOKUP = IN_VALUES * SEARCH_GROUPS
#: Inputs per v4 association batch read.
ASSOCIATION_BATCH = 1000
#: Search requests per second (a separate bucket from the 10-second one).
SEARCH_PER_SECOND = 5
#: Contact pages held back while their deal ids are pooled into full deal batch reads.
MAX_PENDING_PAGES = 8
#: Association type ids (HUBSPOT_DEFINED).
TASK_TO_CONTACT = 204
#: The property group crmsync's properties live in.
GROUP = "crmsync"
#: Where the task key hides in the task body (reps see the body, not the comment).
KEY_MARK = "<!-- crmsync-key:{key} -->"
#: The task property holding the task key when the field map names none (``tasks.key_field``).
TASK_KEY_FIELD = "crmsync_task_key"
_KEY_RE = re.compile(r"<!-- crmsync-key:(\S+?) -->")
#: Seconds to let a create whose response was lost land before looking for what it made.
SETTLE_S = 2.0
#: Keep this many calls of the 10-second window unused (other apps share the account's limit).
WINDOW_RESERVE = 2
#: Categories and codes of per-record errors worth sending again on a later run.
RETRYABLE = frozenset({"RATE_LIMITS", "INTERNAL_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE",
                       "MISSING_FROM_RESPONSE", "LOCKED"})


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(response: Any) -> dict[str, Any]:
    """Parse a raw (``_preload_content=False``) SDK response body; read errors surface here."""
    raw = response.data
    parsed = json.loads(raw) if raw else {}
    return parsed if isinstance(parsed, dict) else {}


def _props(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("properties") or {})


def _results(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in answer.get("results") or [] if isinstance(r, dict)]


def _next_after(page: Mapping[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _modified_ms(obj: Any, name: str) -> int | None:
    props = obj.get("properties")
    if props.__class__ is not dict:  # parsed JSON is; one value is read, so no copy then
        props = _props(obj)
    moment = coerce(props.get(name), "datetime") or coerce(obj.get("updatedAt"), "datetime")
    return _ms(moment) if isinstance(moment, datetime) else None


def task_key(body: str | None) -> str | None:
    """Return the crmsync task key hidden at the end of a task body, if it carries one."""
    if not body:
        return None
    found = _KEY_RE.findall(body)
    return found[-1] if found else None


def task_key_field(fieldmap: FieldMap) -> str:
    """Return the task property that holds crmsync's task key (``crmsync_task_key`` default).

    Field maps written before the property existed name none; they get the default, so an
    upgraded install is protected too once ``crmsync setup`` has created it.
    """
    return fieldmap.tasks.key_field or TASK_KEY_FIELD
