"""CSV files of a report: every device-round record, every round, and the summary per scheme.

``device_rounds.csv`` and ``rounds.csv`` hold stored columns only (nothing derived), one row per
stored record, so users can recompute any summary figure themselves. ``summary.csv`` holds the
report's figures per scheme.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Sequence

from coordinator.report.records import DEVICE_ROUND_COLUMNS, RunRecords
from coordinator.report.summary import SchemeSummary

ROUND_COLUMNS: List[str] = [
    "scheme", "round", "status", "started_at", "closed_at", "deadline_s", "error_budget",
    "multiplier", "predicted_error", "predicted_energy_j", "quality_fd", "quality_floor",
    "quality_noise", "participants", "arrived", "update_sq_norm", "note",
]  # fmt: skip


def _write(path: Path, columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return path


def write_csvs(run: RunRecords, summaries: Sequence[SchemeSummary], out: Path) -> List[Path]:
    """Write the three CSV files under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    device_rows = [r for s in run.schemes for r in s.device_rounds]
    round_rows = [r for s in run.schemes for r in s.rounds]
    summary_rows = [s.as_row() for s in summaries]
    summary_cols = list(summary_rows[0]) if summary_rows else ["scheme"]
    return [
        _write(out / "device_rounds.csv", DEVICE_ROUND_COLUMNS, device_rows),
        _write(out / "rounds.csv", ROUND_COLUMNS, round_rows),
        _write(out / "summary.csv", summary_cols, summary_rows),
    ]


def write_clock_csv(run: RunRecords, out: Path) -> Path:
    """``clocks.csv``: each device-round's assigned, applied and measured clock (MHz)."""
    from coordinator.report.clocks import CLOCK_COLUMNS, clock_records

    return _write(out / "clocks.csv", CLOCK_COLUMNS, clock_records(run))


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
