"""Scripted, deterministic fault plans and per-endpoint call accounting for the emulators.

A fault plan is data: which calls fail, how, and how often. Nothing is random, so a failing test
reproduces exactly. The same plan is accepted in-process (``FaultPlan(...)``) and over HTTP
(``POST /_sandbox/faults`` with :meth:`FaultPlan.from_json`'s shape).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Faults that need more than a status code; each emulator renders them in its CRM's own shape.
FAULT_KINDS = frozenset(
    {
        "status",  # plain HTTP status with the CRM's error body (429, 500, 503...)
        # 429 in the CRM's rate-limit shape (HubSpot body / Salesforce 403 concurrency)
        "rate_limit",
        "session_expired",  # 401 INVALID_SESSION_ID / EXPIRED_AUTHENTICATION
        "daily_limit",  # Salesforce 403 REQUEST_LIMIT_EXCEEDED / HubSpot 429 DAILY
        "disconnect",  # close the connection mid-response (nothing applied)
        "lost_response",  # apply the call, then close the connection before answering
        "latency",  # only delay this call (``latency_ms``)
        "reject_record",  # per-record failure inside a batch (``field`` or ``ids``)
    }
)


class FaultPlanError(ValueError):
    """A fault plan that cannot be understood; the message says which part and why."""


@dataclass
class FaultRule:
    """One scripted fault.

    Attributes:
        method: HTTP method to match, or ``*``.
        path: Path prefix to match (``/services/data/`` matches every Salesforce data call).
        times: How many matching calls fail; ``None`` means every one.
        after: Let this many matching calls through before failing (``after=2`` fails the 3rd).
        status: HTTP status for ``status``/``rate_limit`` kinds.
        kind: One of :data:`FAULT_KINDS`; defaults to ``status`` when a status is given.
        retry_after: Seconds to put in ``Retry-After`` (omitted when ``None``).
        latency_ms: Extra delay for this call.
        field: For ``reject_record``: reject every record that writes this CRM field.
        ids: For ``reject_record``: reject writes to these record ids.
        error_code: CRM error code to report (e.g. ``UNABLE_TO_LOCK_ROW``).
    """

    method: str = "*"
    path: str = "/"
    times: int | None = 1
    after: int = 0
    status: int | None = None
    kind: str = "status"
    retry_after: float | None = None
    latency_ms: int = 0
    field: str | None = None
    ids: frozenset[str] = frozenset()
    error_code: str | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Return whether this rule applies to a call (not whether it fires)."""
        return (self.method == "*" or self.method.upper() == method.upper()) and path.startswith(
            self.path
        )

    def exhausted(self) -> bool:
        """Return whether this rule has fired as often as it was asked to."""
        return self.times is not None and self.fired >= self.times


@dataclass
class FaultPlan:
    """A set of scripted faults plus an optional latency added to every call."""

    latency_ms: int = 0
    rules: list[FaultRule] = field(default_factory=list)

    @classmethod
    def from_json(cls, payload: Any) -> FaultPlan:
        """Build a plan from the ``POST /_sandbox/faults`` body; raise FaultPlanError if bad."""
        if not isinstance(payload, dict):
            raise FaultPlanError("a fault plan is a JSON object")
        latency = payload.get("latency_ms", 0)
        if not isinstance(latency, int) or latency < 0:
            raise FaultPlanError("latency_ms must be a non-negative integer")
        raw_rules = payload.get("rules", [])
        if not isinstance(raw_rules, list):
            raise FaultPlanError("rules must be a list")
        rules = [_rule_from_json(i, raw) for i, raw in enumerate(raw_rules)]
        return cls(latency_ms=latency, rules=rules)

    def to_json(self) -> dict[str, Any]:
        """Return the plan (with how often each rule has fired) as JSON-ready data."""
        return {
            "latency_ms": self.latency_ms,
            "rules": [
                {
                    "method": r.method,
                    "path": r.path,
                    "times": r.times,
                    "after": r.after,
                    "status": r.status,
                    "kind": r.kind,
                    "retry_after": r.retry_after,
                    "latency_ms": r.latency_ms,
                    "field": r.field,
                    "ids": sorted(r.ids),
                    "error_code": r.error_code,
                    "fired": r.fired,
                }
                for r in self.rules
            ],
        }


_RULE_KEYS = {
    "method", "path", "times", "after", "status", "kind", "retry_after", "latency_ms", "field",
    "ids", "error_code",
}


def _rule_from_json(index: int, raw: Any) -> FaultRule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise FaultPlanError(f"{where} must be an object")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise FaultPlanError(f"{where}: unknown keys {sorted(unknown)}")
    kind = raw.get("kind") or ("status" if raw.get("status") is not None else None)
    if kind is None:
        kind = "latency" if raw.get("latency_ms") else None
    if kind not in FAULT_KINDS:
        raise FaultPlanError(f"{where}: kind must be one of {sorted(FAULT_KINDS)}")
    if kind == "status" and not isinstance(raw.get("status"), int):
        raise FaultPlanError(f"{where}: a status fault needs an integer 'status'")
    times = raw.get("times", 1)
    if times is not None and (not isinstance(times, int) or times < 0):
        raise FaultPlanError(f"{where}: times must be a non-negative integer or null (always)")
    path = raw.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise FaultPlanError(f"{where}: path must be a string starting with '/'")
    retry_after = raw.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, int | float):
        raise FaultPlanError(f"{where}: retry_after must be a number of seconds")
    return FaultRule(
        method=str(raw.get("method", "*")),
        path=path,
        times=times,
        after=int(raw.get("after", 0)),
        status=raw.get("status"),
        kind=kind,
        retry_after=retry_after,
        latency_ms=int(raw.get("latency_ms", 0)),
        field=raw.get("field"),
        ids=frozenset(str(i) for i in raw.get("ids", ())),
        error_code=raw.get("error_code"),
    )


class FaultInjector:
    """Holds the active plan and decides, call by call, which fault (if any) fires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.plan = FaultPlan()

    def install(self, plan: FaultPlan) -> None:
        """Replace the active plan."""
        with self._lock:
            self.plan = plan

    def clear(self) -> None:
        """Remove every fault."""
        self.install(FaultPlan())

    def next_fault(self, method: str, path: str) -> tuple[int, FaultRule | None]:
        """Return (latency in ms, request-level fault rule or None) for one incoming call.

        ``reject_record`` rules are not request-level: emulators ask :meth:`record_rejection`.
        """
        with self._lock:
            latency = self.plan.latency_ms
            chosen: FaultRule | None = None
            for rule in self.plan.rules:
                if rule.kind == "reject_record" or not rule.matches(method, path):
                    continue
                if rule.exhausted():
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if chosen is None:
                    rule.fired += 1
                    if rule.kind == "latency":
                        latency += rule.latency_ms
                        continue
                    latency += rule.latency_ms
                    chosen = rule
            return latency, chosen

    def record_rejection(
        self, method: str, path: str, record_id: str | None, fields: set[str]
    ) -> FaultRule | None:
        """Return the ``reject_record`` rule that rejects this record's write, if any."""
        with self._lock:
            for rule in self.plan.rules:
                if rule.kind != "reject_record" or not rule.matches(method, path):
                    continue
                if rule.exhausted():
                    continue
                hit = (rule.field is not None and rule.field in fields) or (
                    record_id is not None and record_id in rule.ids
                )
                if hit:
                    rule.fired += 1
                    return rule
            return None


class CallLog:
    """Counts calls per folded endpoint (``GET /crm/v3/objects/contacts/{id}``), reads vs writes,
    answers per HTTP status, and the calls the emulated quotas refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._reads = 0
        self._writes = 0

    def record(self, endpoint: str, *, write: bool) -> None:
        """Count one call."""
        with self._lock:
            self._by_endpoint[endpoint] += 1
            if write:
                self._writes += 1
            else:
                self._reads += 1

    def answered(self, status: int | None, *, throttled: str | None = None) -> None:
        """Count one answer: its status (``None``: the connection was dropped instead), and the
        quota policy that refused it, if one did."""
        with self._lock:
            self._by_status["dropped" if status is None else str(status)] += 1
            if throttled is not None:
                self._throttled[throttled] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counts as JSON-ready data.

        Keys: ``total``, ``reads``, ``writes``, ``by_endpoint`` (calls per folded endpoint),
        ``by_status`` (answers per HTTP status as a string, ``"dropped"`` for connections cut
        by a fault; scripted faults included), ``rate_limited`` (calls the emulated quotas
        refused: HubSpot's 429s, Salesforce's daily-allowance 403s; scripted faults excluded)
        and ``rate_limited_by_policy`` (the same per policy: ``TEN_SECONDLY_ROLLING``,
        ``SECONDLY``, ``DAILY``, ``DailyApiRequests``).
        """
        with self._lock:
            return {
                "total": self._reads + self._writes,
                "reads": self._reads,
                "writes": self._writes,
                "by_endpoint": dict(sorted(self._by_endpoint.items())),
                "by_status": dict(sorted(self._by_status.items())),
                "rate_limited": sum(self._throttled.values()),
                "rate_limited_by_policy": dict(sorted(self._throttled.items())),
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._by_endpoint.clear()
            self._by_status.clear()
            self._throttled.clear()
            self._reads = 0
            self._writes = 0
