"""Reports from stored records: summary per scheme, plain answers, CSV, PNG plots, one HTML page.

Layers, one module each: ``records`` (read-only loading of coordinator stores),
``summary`` (figures per scheme), ``verdict`` (the answers and the quality margin),
``export`` (CSV), ``plots`` (PNG, matplotlib Agg loaded lazily), ``html`` and ``text``
(rendering), ``build`` (all of it into one folder).

Errors: :class:`ReportError` (a ValueError) when the source is missing or not a greenfed store.
"""

from __future__ import annotations

from coordinator.errors import ReportError
from coordinator.report.build import ReportResult, build_report
from coordinator.report.records import RunRecords, load_run, load_store
from coordinator.report.summary import SchemeSummary, summarize
from coordinator.report.verdict import QUALITY_MARGIN_REL, Finding, findings

__all__ = [
    "QUALITY_MARGIN_REL",
    "Finding",
    "ReportError",
    "ReportResult",
    "RunRecords",
    "SchemeSummary",
    "build_report",
    "findings",
    "load_run",
    "load_store",
    "summarize",
]
