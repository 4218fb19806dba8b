"""Build a whole report folder from a run directory or a store.

``build_report(source, out)`` writes ``summary.txt``, ``report.html``, the CSV files (with
``clocks.csv``: each device's clock per round) and the PNG plots under ``out`` and returns the
text shown in the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from coordinator.report.clocks import clock_matrices, render_clocks
from coordinator.report.export import write_clock_csv, write_csvs
from coordinator.report.html import render_html
from coordinator.report.plots import write_plots
from coordinator.report.records import RunRecords, load_run
from coordinator.report.summary import SchemeSummary, summarize
from coordinator.report.text import render
from coordinator.report.verdict import QUALITY_MARGIN_REL, Finding, findings, setup_checks


@dataclass
class ReportResult:
    out: Path
    text: str
    html_path: Path
    summaries: List[SchemeSummary]
    findings: List[Finding]
    csvs: List[Path] = field(default_factory=list)
    plots: Dict[str, Path] = field(default_factory=dict)


def default_out(source: Path) -> Path:
    """``<run dir>/report`` for a directory, ``<store's folder>/report`` for a store file."""
    return (source if source.is_dir() else source.parent) / "report"


def build_report(
    source: Path,
    out: Optional[Path] = None,
    margin: Optional[float] = None,
    run: Optional[RunRecords] = None,
) -> ReportResult:
    """Load ``source`` (unless ``run`` is given) and write the report; raises ReportError."""
    run = run if run is not None else load_run(source)
    out = out if out is not None else default_out(Path(source))
    if margin is None:
        margin = float(run.experiment.get("quality_margin_rel", QUALITY_MARGIN_REL))
    summaries = [summarize(s) for s in run.schemes]
    found = findings(summaries, margin)
    checks = setup_checks(summaries)
    clocks = clock_matrices(run)
    text = render(summaries, found, checks, render_clocks(clocks))
    out.mkdir(parents=True, exist_ok=True)
    csvs = write_csvs(run, summaries, out)
    csvs.append(write_clock_csv(run, out))
    estimated = any(s.estimated != "none" for s in summaries)
    plots = write_plots(run, out, estimated)
    title = f"greenfed report: {', '.join(s.scheme for s in summaries)}"
    page = render_html(
        title, summaries, found, checks, plots, run.experiment, [p.name for p in csvs], margin,
        clocks,
    )  # fmt: skip
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    return ReportResult(out, text, html_path, summaries, found, csvs, plots)
