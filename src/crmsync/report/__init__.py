"""The funnel health report: numbers (JSON), an HTML page with charts, and terminal lines.

Public API, shared by ``crmsync report`` and the console (``crmsync serve``):
:func:`build_report` (a JSON-ready dict) and :func:`render_html` (a complete, self-contained
page). Modules, one job each: ``build`` (the report dict from the ledger), ``current`` (every
contact now, from the state store), ``trends`` (per-run trends, SLA, rule health), ``charts``
(Altair specs), ``html`` (the page) and ``text`` (terminal lines).
"""

from crmsync.report.build import (
    BLOATED_MIDDLE,
    CONVERSIONS,
    FULL_MODES,
    MIN_CONTACTS,
    SMALL_BOTTOM,
    STAGES,
    SYNC_MODES,
    THIN_MIDDLE,
    build_report,
    counts_as_sync,
    diagnose,
    load_runs,
)
from crmsync.report.current import current_funnel
from crmsync.report.html import render_html, write_report
from crmsync.report.text import summary_lines

__all__ = [
    "BLOATED_MIDDLE",
    "CONVERSIONS",
    "FULL_MODES",
    "MIN_CONTACTS",
    "SMALL_BOTTOM",
    "STAGES",
    "SYNC_MODES",
    "THIN_MIDDLE",
    "build_report",
    "counts_as_sync",
    "current_funnel",
    "diagnose",
    "load_runs",
    "render_html",
    "summary_lines",
    "write_report",
]
