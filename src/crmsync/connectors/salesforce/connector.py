"""The Salesforce connector: the Connector protocol over one org, assembled from its parts.

Reading (:mod:`.reading`), writing fields (:mod:`.writing`), tasks (:mod:`.tasks`) and setup
(:mod:`.setup`) are mixins over one :class:`~.client.SalesforceClient`, through which every
HTTP call goes.

Thread safety: one connector may be called from several threads at once. The mixins keep no
per-call state on the connector; the client is thread-safe (one SDK client and session shared,
locked counter, one login under a lock; see :mod:`.client`), and every call goes through one
:class:`~crmsync.connectors.pacing.Pacer`, which connectors of the same org may share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from crmsync import stopping
from crmsync.connectors.asof import OutcomeRecord
from crmsync.connectors.base import ApiLimits
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.pacing import Pacer
from crmsync.connectors.salesforce.auth import SalesforceAuth
from crmsync.connectors.salesforce.client import DEFAULT_POLICY, QUERY_PAGE, SalesforceClient
from crmsync.connectors.salesforce.reading import ReadingMixin
from crmsync.connectors.salesforce.setup import SetupMixin
from crmsync.connectors.salesforce.tasks import TasksMixin
from crmsync.connectors.salesforce.writing import COLLECTION_BATCH
from crmsync.errors import ConfigError
from crmsync.retry import RetryPolicy


class SalesforceConnector(ReadingMixin, TasksMixin, SetupMixin):
    """Reads Leads and Contacts and writes crmsync's fields and tasks in one Salesforce org.

    Safe to call from several threads at once (see the module docstring).

    Args:
        fieldmap: The Salesforce field map (``connectors/salesforce.json``).
        auth: How to authenticate (see :class:`SalesforceAuth`).
        objects: Objects to sync (``Lead``, ``Contact``); default: every object in the field map.
        api_version: REST API version, pinned so a client upgrade cannot change behaviour.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries (tests pass a recorder).
        bulk_threshold: When one ``write_fields`` call carries at least this many records of
            one object, they go through :meth:`write_fields_bulk` (one Bulk API 2.0 ingest job:
            about 5 calls however many records) instead of Collections (one call per 200).
            ``None`` (default): only when :meth:`write_fields_bulk` is called.
        quota_reserve: Fraction of the org's daily API allocation left untouched: once the
            ``Sforce-Limit-Info`` header shows fewer calls remaining, the connector stops with
            QuotaExhausted before making another call (other integrations share the quota).
            Used by the default pacer only; a given pacer carries its own reserve.
        timeout: (connect, read) timeout in seconds of every HTTP call.
        pacer: The org's :class:`~crmsync.connectors.pacing.Pacer`, shared by every connector
            (thread, process) of the org; default: a
            :class:`~crmsync.connectors.pacing.LocalPacer` of this connector's own.
    """

    crm = "salesforce"
    limits = ApiLimits(read_page=QUERY_PAGE, write_batch=COLLECTION_BATCH,
                       task_batch=COLLECTION_BATCH, bulk_write=True, calls_per_bulk_write=5)

    def __init__(
        self,
        fieldmap: FieldMap,
        *,
        auth: SalesforceAuth,
        objects: Sequence[str] | None = None,
        api_version: str = "59.0",
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = stopping.sleep,
        bulk_threshold: int | None = None,
        quota_reserve: float = 0.02,
        timeout: tuple[float, float] = (10.0, 120.0),
        pacer: Pacer | None = None,
    ) -> None:
        if fieldmap.crm != "salesforce":
            raise ConfigError(f"{fieldmap.path}: field map is for {fieldmap.crm!r}, not salesforce")
        chosen = list(objects) if objects is not None else list(fieldmap.objects)
        unknown = [name for name in chosen if name not in fieldmap.objects]
        if unknown:
            raise ConfigError(f"objects {', '.join(unknown)} are not in the field map "
                              f"{fieldmap.path} (mapped: {', '.join(fieldmap.objects)})")
        auth.validate()
        self.fieldmap = fieldmap
        self.auth = auth
        self.objects = chosen
        self.api_version = api_version
        self.bulk_threshold = bulk_threshold
        self.client = SalesforceClient(auth, api_version=api_version, policy=policy, sleep=sleep,
                                       quota_reserve=quota_reserve, timeout=timeout,
                                       pacer=pacer)
        #: The pacer every call of this connector goes through.
        self.pacer = self.client.pacer

    # -- backtests ---------------------------------------------------------------------------

    def read_outcomes(self, since: datetime, until: datetime) -> Iterator[OutcomeRecord]:
        """Read-only: Contacts whose Opportunities closed in ``[since, until)``, as-of facts.

        See :mod:`crmsync.connectors.salesforce.history` (for ``crmsync backtest``).
        """
        from crmsync.connectors.salesforce.history import OutcomeReader

        return OutcomeReader(self.client, self.fieldmap).read_outcomes(since, until)

    # -- accounting --------------------------------------------------------------------------

    def api_calls(self) -> int:
        """Return the HTTP calls made so far (retries and re-logins included)."""
        return self.client.api_calls()

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close()
