"""The link study's report: each scheme over steady links and over bandwidth traces.

Reads ``<study>/<condition>/`` (each an experiment folder, coordinator/link_study.py) and writes
``links.csv``, ``summary.txt``, ``report.html`` and two plots into the report folder. Figures:

- energy, upload energy, bytes and final FD as in the per-experiment report (completed rounds
  only, per round where the schemes completed different numbers of rounds);
- **rounds that missed the deadline**: rounds (completed or failed) in which at least one
  assigned device was late; **late device-rounds**: assignments marked late, over all rounds;
  **excluded device-rounds**: devices the planner left out of a round because even their
  fastest round could not meet the deadline at their measured rates (``excluded`` events);
- measured goodput: the mean over reports of bytes x 8 / upload time.
"""

from __future__ import annotations

import csv
import html
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from coordinator.report.html import _CSS, img_tag
from coordinator.report.plots import _pyplot, _save, color
from coordinator.report.records import (
    ReportError,
    RunRecords,
    SchemeRecords,
    connect_ro,
    load_run,
)
from coordinator.report.summary import SchemeSummary, summarize
from coordinator.report.text import banner, format_table

CONDITIONS = ("steady", "traces")
HEADER = (
    "condition", "scheme", "rounds", "J/round", "upload J/round", "bytes/round",
    "missed rounds", "late dev-rounds", "excluded", "final FD", "mean bits", "goodput Mbit/s",
)  # fmt: skip


@dataclass
class StudyRow:
    condition: str
    scheme: str
    rounds_completed: int
    rounds_recorded: int
    energy_per_round_j: Optional[float]
    comm_energy_per_round_j: Optional[float]
    bytes_per_round: Optional[float]
    missed_rounds: int  # rounds with at least one late device
    late_device_rounds: int
    excluded_device_rounds: int  # left out by the planner: the deadline was out of reach
    final_fd: Optional[float]
    mean_bits: Optional[float]
    mean_goodput_mbps: Optional[float]
    total_energy_j: float
    bytes_up: int

    def cells(self) -> List[str]:
        def f(v: Optional[float], spec: str) -> str:
            return "-" if v is None else format(v, spec)

        return [
            self.condition,
            self.scheme,
            f"{self.rounds_completed}/{self.rounds_recorded}",
            f(self.energy_per_round_j, ",.1f"),
            f(self.comm_energy_per_round_j, ",.2f"),
            f(self.bytes_per_round, ",.0f"),
            str(self.missed_rounds),
            str(self.late_device_rounds),
            str(self.excluded_device_rounds),
            f(self.final_fd, ".3f"),
            f(self.mean_bits, ".2f"),
            f(self.mean_goodput_mbps, ".2f"),
        ]


def excluded_count(store: Path) -> int:
    """``excluded`` events in a store (opened read-only)."""
    db = connect_ro(store)
    try:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'excluded'").fetchone()[0])
    finally:
        db.close()


def row_of(condition: str, summary: SchemeSummary, records: SchemeRecords) -> StudyRow:
    late = [r for r in records.device_rounds if r["assignment_status"] == "late"]
    return StudyRow(
        condition=condition,
        scheme=summary.scheme,
        rounds_completed=summary.rounds_completed,
        rounds_recorded=summary.rounds_recorded,
        energy_per_round_j=summary.per_round(summary.total_energy_j),
        comm_energy_per_round_j=summary.per_round(summary.comm_energy_j),
        bytes_per_round=summary.per_round(float(summary.bytes_up)),
        missed_rounds=len({r["round"] for r in late}),
        late_device_rounds=len(late),
        excluded_device_rounds=excluded_count(records.store_path),
        final_fd=summary.final_fd,
        mean_bits=summary.mean_bits,
        mean_goodput_mbps=summary.mean_goodput_mbps,
        total_energy_j=summary.total_energy_j,
        bytes_up=summary.bytes_up,
    )


def load_study(study: Path) -> Dict[str, RunRecords]:
    runs = {c: load_run(study / c) for c in CONDITIONS if (study / c / "experiment.json").is_file()}
    if not runs:
        raise ReportError(f"{study}: no steady/ or traces/ experiment to compare")
    return runs


def compare_plot(rows: Sequence[StudyRow], path: Path) -> Path:
    """Energy, bytes, late device-rounds and final FD per scheme, one bar per condition."""
    plt = _pyplot()
    schemes = list(dict.fromkeys(r.scheme for r in rows))
    from matplotlib.patches import Patch

    panels = (
        ("energy_per_round_j", "energy per round (J)"),
        ("comm_energy_per_round_j", "upload energy per round (J)"),
        ("bytes_per_round", "bytes uploaded per round"),
        ("late_device_rounds", "late device-rounds"),
        ("final_fd", "final FD (lower is better)"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(20, 4.2))
    for ax, (key, title) in zip(axes, panels):
        for k, condition in enumerate(CONDITIONS):
            values = []
            for scheme in schemes:
                match = [r for r in rows if r.condition == condition and r.scheme == scheme]
                v = getattr(match[0], key) if match else None
                values.append(float(v) if v is not None else 0.0)
            xs = [i + (k - 0.5) * 0.38 for i in range(len(schemes))]
            ax.bar(xs, values, width=0.36, label=condition,
                   color=[color(s) for s in schemes], alpha=1.0 if k else 0.45,
                   hatch="" if k else "//", edgecolor="black")  # fmt: skip
        ax.set_xticks(range(len(schemes)), schemes)
        ax.set_title(title)
    axes[0].legend(
        handles=[
            Patch(facecolor="white", edgecolor="black", hatch="//", label="steady (left)"),
            Patch(facecolor="gray", edgecolor="black", label="traces (right)"),
        ],
        fontsize=8,
    )
    return _save(fig, path)


def bits_plot(runs: Dict[str, RunRecords], path: Path) -> Optional[Path]:
    """On-demand's bits per device and round under both conditions, with the traced link's
    configured rate and measured goodput: does the allocator follow the link?"""
    per: Dict[str, Any] = {c: run.by_scheme("on-demand") for c, run in runs.items()}
    if not any(per.values()):
        return None
    devices = sorted({r["device_id"] for recs in per.values() if recs for r in recs.device_rounds})
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(devices), figsize=(4.6 * len(devices), 3.8), squeeze=False)
    twins = []
    top = max(int(r["bits"]) for recs in per.values() if recs for r in recs.device_rounds)
    for ax, device in zip(axes[0], devices):
        rate_ax = ax.twinx()
        twins.append(rate_ax)
        for condition, recs in per.items():
            if recs is None:
                continue
            mine = [r for r in recs.device_rounds if r["device_id"] == device]
            style = "-" if condition == "traces" else "--"
            ax.plot([r["round"] for r in mine], [r["bits"] for r in mine], style, marker="o",
                    color="tab:green", label=f"bits ({condition})")  # fmt: skip
            if condition == "traces":
                rep = [r for r in mine if r["link_mbps"]]
                rate_ax.plot([r["round"] for r in rep], [r["link_mbps"] for r in rep], ":",
                             color="tab:gray", label="configured Mbit/s")  # fmt: skip
                got = [r for r in mine if r["goodput_mbps"]]
                rate_ax.plot([r["round"] for r in got], [r["goodput_mbps"] for r in got], "x",
                             color="tab:purple", label="measured goodput")  # fmt: skip
        ax.set_title(device)
        ax.set_xlabel("round")
        ax.set_ylabel("bits (on-demand)")
        ax.set_ylim(0, top + 1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        rate_ax.set_ylabel("Mbit/s (traces)")
        rate_ax.set_ylim(bottom=0)
    handles = [*axes[0][0].get_lines(), *twins[0].get_lines()]
    axes[0][0].legend(handles=handles, fontsize=7, loc="lower left")
    return _save(fig, path)


def render_text(rows: Sequence[StudyRow], summaries: Sequence[SchemeSummary]) -> str:
    parts = ["== where the numbers come from ==", *banner(summaries), ""]
    parts += ["== schemes over steady links and over bandwidth traces ==",
              format_table(HEADER, [r.cells() for r in rows]), "", NOTES]  # fmt: skip
    return "\n".join(parts)


NOTES = (
    "steady: every device on a fixed link at its trace's time-weighted mean rate; traces: the "
    "same devices replaying the traces (same RTT, seed, deadline and error budget). Energy, "
    "bytes and FD over completed rounds (per round); 'missed rounds' are rounds with at least "
    "one late device and 'late dev-rounds' the late assignments, over all rounds (a round "
    "without enough updates fails and is not completed); 'excluded' counts devices the planner "
    "left out of a round because the deadline was out of their reach at their measured rates; "
    "goodput is the measured bytes x 8 / upload time, mean over reports."
)


@dataclass
class LinkReport:
    out: Path
    text: str
    html_path: Path
    rows: List[StudyRow]
    plots: Dict[str, Path]


def build_link_report(study: Path, out: Path) -> LinkReport:
    runs = load_study(study)
    rows: List[StudyRow] = []
    summaries: List[SchemeSummary] = []
    for condition, run in runs.items():
        for records in run.schemes:
            s = summarize(records)
            summaries.append(s)
            rows.append(row_of(condition, s, records))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "links.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0]))) if rows else None
        if writer is not None:
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)
    plots: Dict[str, Path] = {}
    if rows:
        plots["schemes by link condition"] = compare_plot(rows, out / "links_compare.png")
    bits = bits_plot(runs, out / "links_bits.png")
    if bits is not None:
        plots["on-demand bits per device and round, with the traced link"] = bits
    text = render_text(rows, summaries)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_html(rows, summaries, plots, runs), encoding="utf-8")
    return LinkReport(out, text, html_path, rows, plots)


def _html(
    rows: Sequence[StudyRow],
    summaries: Sequence[SchemeSummary],
    plots: Dict[str, Path],
    runs: Dict[str, RunRecords],
) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r.cells()) + "</tr>" for r in rows)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>greenfed link study</title><style>{_CSS}</style></head><body>",
        "<h1>greenfed link study: steady links vs bandwidth traces</h1>",
        '<div class="banner">' + "".join(f"<p>{e(b)}</p>" for b in banner(summaries)) + "</div>",
        f"<table><tr>{head}</tr>{body}</table>",
        f"<p>{e(NOTES)}</p>",
        *(f"<h3>{e(name)}</h3>" + img_tag(path, name) for name, path in plots.items()),
        "<h2>Links per condition</h2><ul>",
    ]
    for condition, run in runs.items():
        agents = run.experiment.get("agents", [])
        described = "; ".join(
            f"{a['device_id']}: {(a.get('link') or {}).get('describe', '-')}" for a in agents
        )
        parts.append(f"<li>{e(condition)}: {e(described)} (report: {e(condition)}/report/)</li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts)
