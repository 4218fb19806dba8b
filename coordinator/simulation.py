"""Energy of the three schemes on simulated wireless fleets (the allocator's simulation model).

For each fleet size a virtual fleet is drawn (:mod:`coordinator.allocator.wireless`, Yang et al.
TWC 2021 channel model) and planned with ``on-demand``, ``fp32`` and ``fixed-B``;
:func:`write_study` writes ``simulate.csv`` and ``simulate.png`` (energy per device against
fleet size). Used by ``greenfed-coordinator simulate`` and by ``experiment``'s fleet study.
Predicted, never measured: every output says so.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Tuple

from coordinator.allocator import allocate
from coordinator.allocator.wireless import WirelessConfig, virtual_fleet

COLUMNS = [
    "devices",
    "scheme",
    "feasible",
    "total_energy_j",
    "compute_energy_j",
    "comm_energy_j",
    "energy_per_device_j",
    "mean_bits",
    "error",
    "error_budget",
    "deadline_s",
]


def parse_sizes(text: str) -> List[int]:
    """``"10,100,1000"`` -> [10, 100, 1000]; ValueError names what is wrong."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise ValueError(f"expected a comma-separated list of ints: {e}") from e
    if not sizes or min(sizes) < 1:
        raise ValueError("fleet sizes must be positive integers")
    return sizes


def simulate_rows(sizes: List[int], seed: int, fixed_bits: int) -> List[Dict[str, Any]]:
    """One row per (fleet size, scheme); pure apart from the numbers it computes."""
    rows: List[Dict[str, Any]] = []
    cfg = WirelessConfig(budget_bits=fixed_bits)
    for n in sizes:
        fleet = virtual_fleet(n, seed=seed, cfg=cfg)
        for scheme in ("on-demand", "fp32", f"fixed-{fixed_bits}"):
            plan = allocate(fleet, scheme)
            rows.append(
                {
                    "devices": n,
                    "scheme": scheme,
                    "feasible": plan.feasible,
                    "total_energy_j": plan.total_energy_j,
                    "compute_energy_j": float(plan.compute_energy_j.sum()),
                    "comm_energy_j": float(plan.comm_energy_j.sum()),
                    "energy_per_device_j": plan.total_energy_j / n,
                    "mean_bits": float(plan.bits.mean()),
                    "error": plan.error,
                    "error_budget": plan.error_budget,
                    "deadline_s": fleet.deadline_s,
                }
            )
    return rows


def _plot(rows: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        pts = [r for r in rows if r["scheme"] == scheme]
        ax.plot(
            [r["devices"] for r in pts],
            [r["energy_per_device_j"] for r in pts],
            marker="o",
            label=scheme,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("devices in the fleet")
    ax.set_ylabel("predicted dynamic energy per device and round (J)")
    ax.set_title("Simulated wireless fleets (Yang et al. channel model)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_study(
    sizes: List[int], seed: int, fixed_bits: int, out: Path
) -> Tuple[List[Dict[str, Any]], Path, Path]:
    """Rows of :func:`simulate_rows`, written to ``out/simulate.csv`` and ``out/simulate.png``."""
    rows = simulate_rows(sizes, seed, fixed_bits)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "simulate.csv", out / "simulate.png"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, png_path)
    return rows, csv_path, png_path


def format_rows(rows: List[Dict[str, Any]]) -> str:
    """The study as a text table."""
    lines = [f"{'devices':>8} {'scheme':<10} {'feasible':<8} {'J/device':>10} {'mean_bits':>9}"]
    for r in rows:
        lines.append(
            f"{r['devices']:>8} {r['scheme']:<10} {r['feasible']!s:<8} "
            f"{r['energy_per_device_j']:>10.4g} {r['mean_bits']:>9.2f}"
        )
    return "\n".join(lines)
