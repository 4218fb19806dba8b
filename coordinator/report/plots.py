"""PNG plots of a report (matplotlib with the Agg backend, imported lazily).

Every plot reads stored records (through the summary helpers) and nothing else; titles say
``estimated`` / ``emulated`` where the figures are.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional

from coordinator.report.records import RunRecords, SchemeRecords
from coordinator.report.summary import (
    measured_dynamic_j,
    per_round_series,
    personal_scores,
    relative_error,
)

DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SCHEME_COLORS = {"fp32": "tab:blue", "on-demand": "tab:green"}
FIXED_COLORS = ("tab:orange", "tab:red", "tab:purple", "tab:brown")


def color(scheme: str) -> str:
    """One colour per scheme in every plot: fp32 blue, fixed-B orange (then red...), on-demand
    green."""
    if scheme in SCHEME_COLORS:
        return SCHEME_COLORS[scheme]
    return FIXED_COLORS[sum(map(ord, scheme)) % len(FIXED_COLORS)]


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    for ax in fig.axes:
        if ax.get_xlabel() == "round":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def energy_per_round(run: RunRecords, path: Path, tag: str) -> Path:
    """Stacked compute/upload energy per round, one group of bars per scheme; total and dynamic."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    n = max(len(run.schemes), 1)
    width = 0.8 / n
    for k, (suffix, title) in enumerate(
        (("energy_j", "total"), ("dynamic_j", "dynamic (above idle)"))
    ):
        ax = axes[k]
        for i, s in enumerate(run.schemes):
            series = per_round_series(s)
            x = [r["round"] + (i - (n - 1) / 2) * width for r in series]
            comp = [r[f"compute_{suffix}"] for r in series]
            comm = [r[f"comm_{suffix}"] for r in series]
            c = color(s.scheme)
            ax.bar(x, comp, width, label=f"{s.scheme} compute", color=c)
            ax.bar(x, comm, width, bottom=comp, label=f"{s.scheme} upload", color=c,
                   hatch="//", alpha=0.45, edgecolor="black")  # fmt: skip
        ax.set_title(f"Energy per round, {title}{tag}")
        ax.set_xlabel("round")
        ax.set_ylabel("J (sum over devices)")
        ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    for s in run.schemes:
        series = per_round_series(s)
        ax.plot([r["round"] for r in series], [r["comm_dynamic_j"] for r in series],
                marker="o", label=s.scheme, color=color(s.scheme))  # fmt: skip
    ax.set_title(f"Upload energy per round, dynamic{tag}")
    ax.set_xlabel("round")
    ax.set_ylabel("J (sum over devices)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def bytes_per_round(run: RunRecords, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in run.schemes:
        series = per_round_series(s)
        ax.plot([r["round"] for r in series], [r["bytes_up"] / 1e3 for r in series],
                marker="o", label=s.scheme, color=color(s.scheme))  # fmt: skip
    ax.set_yscale("log")
    ax.set_title("Bytes uploaded per round (sum over devices)")
    ax.set_xlabel("round")
    ax.set_ylabel("kB (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def quality_per_round(run: RunRecords, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    floor: Optional[float] = None
    for s in run.schemes:
        series = [r for r in per_round_series(s) if r["quality_fd"] is not None]
        ax.plot([r["round"] for r in series], [r["quality_fd"] for r in series],
                marker="o", label=s.scheme, color=color(s.scheme))  # fmt: skip
        floor = next((r["quality_floor"] for r in series if r["quality_floor"]), floor)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label=f"real-vs-real floor {floor:.2f}")
    ax.set_yscale("log")
    ax.set_title("Quality of the global model per round (FD, lower is better)")
    ax.set_xlabel("round")
    ax.set_ylabel("Fréchet distance (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def predicted_vs_measured(run: RunRecords, path: Path, tag: str) -> Path:
    """Scatter of predicted vs measured dynamic energy per device-round, and the relative error."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.6))
    hi = 0.0
    for s in run.schemes:
        pts = _pred_meas(s)
        if not pts:
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18, label=s.scheme,
                   color=color(s.scheme))  # fmt: skip
        hi = max(hi, *(max(p[0], p[1]) for p in pts))
        ax2.scatter([p[2] for p in pts], [p[3] * 100 for p in pts], s=18, label=s.scheme,
                    color=color(s.scheme))  # fmt: skip
    if hi > 0:
        ax.plot([0, hi], [0, hi], color="grey", linestyle="--", label="predicted = measured")
    ax.set_title(f"Dynamic energy per device-round{tag}")
    ax.set_xlabel("predicted by the allocator (J)")
    ax.set_ylabel("measured (J)")
    ax.legend(fontsize=8)
    ax2.axhline(0, color="grey", linestyle="--")
    ax2.set_title("Relative error of the prediction per device-round")
    ax2.set_xlabel("round")
    ax2.set_ylabel("(predicted - measured) / measured, %")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def _pred_meas(s: SchemeRecords) -> List[tuple]:
    out = []
    for r in s.device_rounds:
        if r["round_status"] != "completed":
            continue
        meas = measured_dynamic_j(r)
        err = relative_error(r["predicted_energy_j"], meas)
        if err is not None and meas is not None:
            out.append((float(r["predicted_energy_j"]), meas, int(r["round"]), err))
    return out


def bits_and_frequency(run: RunRecords, path: Path) -> Path:
    """Bits and CPU frequency assigned per device over rounds (one column per scheme)."""
    plt = _pyplot()
    n = max(len(run.schemes), 1)
    fig, axes = plt.subplots(2, n, figsize=(4.6 * n, 7), squeeze=False)
    for j, s in enumerate(run.schemes):
        devices = sorted({r["device_id"] for r in s.device_rounds})
        for dev in devices:
            rows = [r for r in s.device_rounds if r["device_id"] == dev]
            rounds = [r["round"] for r in rows]
            axes[0][j].plot(rounds, [r["bits"] for r in rows], marker="o", label=dev)
            line = axes[1][j].plot(rounds, [r["freq_hz"] / 1e6 for r in rows], marker="o",
                                   label=f"{dev} assigned")  # fmt: skip
            meas = [(r["round"], r["mean_freq_hz"] / 1e6) for r in rows if r["mean_freq_hz"]]
            if meas:
                axes[1][j].plot([m[0] for m in meas], [m[1] for m in meas], linestyle=":",
                                marker="x", color=line[0].get_color(),
                                label=f"{dev} measured mean")  # fmt: skip
        axes[0][j].set_title(f"{s.scheme}: bits per device")
        axes[0][j].set_xlabel("round")
        axes[0][j].set_ylabel("bits")
        axes[0][j].legend(fontsize=7)
        axes[1][j].set_title(f"{s.scheme}: CPU frequency per device")
        axes[1][j].set_xlabel("round")
        axes[1][j].set_ylabel("MHz")
        axes[1][j].legend(fontsize=6)
    return _save(fig, path)


def personal_vs_global(run: RunRecords, path: Path) -> Optional[Path]:
    """Per device: FD of the global and of the personal adapter on its own held-out images,
    in the last round they were scored (one panel per run with personal adapters)."""
    scored = [(s, *personal_scores(s)) for s in run.schemes]
    scored = [(s, last, rows) for s, last, rows in scored if rows]
    if not scored:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scored), figsize=(5.5 * len(scored), 4.2), squeeze=False)
    for ax, (s, last, rows) in zip(axes[0], scored):
        x = list(range(len(rows)))
        ax.bar([i - 0.2 for i in x], [r["global_fd_own"] for r in rows], 0.4,
               label="global adapter", color="tab:grey")  # fmt: skip
        ax.bar([i + 0.2 for i in x], [r["personal_fd"] for r in rows], 0.4,
               label="personal (global + own update)", color=color(s.scheme))  # fmt: skip
        ax.set_xticks(x, [str(r["device_id"]) for r in rows])
        ax.set_title(f"{s.scheme}: own held-out images, round {last}")
        ax.set_ylabel("Fréchet distance (lower is better)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def fleet_study(csv_path: Path, path: Path) -> Path:
    """Energy per device of the schemes on simulated fleets, from ``simulate.csv``."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows: List[Dict[str, str]] = list(csv.DictReader(fh))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        pts = [r for r in rows if r["scheme"] == scheme]
        ax.plot([int(r["devices"]) for r in pts], [float(r["energy_per_device_j"]) for r in pts],
                marker="o", label=scheme, color=color(scheme))  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("Simulated fleets: predicted dynamic energy (model only)")
    ax.set_xlabel("devices in the fleet")
    ax.set_ylabel("J per device and round")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def write_plots(run: RunRecords, out: Path, estimated: bool) -> Dict[str, Path]:
    """All plots under ``out``; returns {name: path} in display order."""
    out.mkdir(parents=True, exist_ok=True)
    tag = " [ESTIMATED]" if estimated else ""
    plots: Dict[str, Path] = {
        "energy_per_round": energy_per_round(run, out / "energy_per_round.png", tag),
        "bytes_per_round": bytes_per_round(run, out / "bytes_per_round.png"),
        "quality_per_round": quality_per_round(run, out / "quality_per_round.png"),
        "predicted_vs_measured": predicted_vs_measured(run, out / "predicted_vs_measured.png", tag),
        "bits_and_frequency": bits_and_frequency(run, out / "bits_and_frequency.png"),
    }
    personal = personal_vs_global(run, out / "personal_vs_global.png")
    if personal is not None:
        plots["personal_vs_global"] = personal
    if run.fleet_study_csv is not None:
        plots["fleet_study"] = fleet_study(run.fleet_study_csv, out / "fleet_study.png")
    return plots


PLOT_TITLES: Dict[str, str] = {
    "energy_per_round": "Energy per round, compute and upload stacked, per scheme",
    "bytes_per_round": "Bytes uploaded per round",
    "quality_per_round": "Quality (FD) per round",
    "predicted_vs_measured": "Predicted vs measured dynamic energy per device-round",
    "bits_and_frequency": "Bits and CPU frequency per device over rounds",
    "personal_vs_global": "Personal vs global adapter on each device's own held-out images",
    "fleet_study": "Large-fleet study (allocator's simulation model, not measured)",
}
