"""``greenfed-coordinator simulate``: energy of the three schemes on simulated wireless fleets.

For each fleet size a virtual fleet is drawn (:mod:`coordinator.allocator.wireless`, Yang et al.
TWC 2021 channel model) and planned with ``on-demand``, ``fp32`` and ``fixed-B``. Writes
``simulate.csv`` and ``simulate.png`` (energy per device against fleet size) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, Dict, List

from coordinator.allocator import allocate
from coordinator.allocator.wireless import WirelessConfig, virtual_fleet

HELP = "compare the schemes' energy on simulated wireless fleets; writes a CSV and a plot"

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


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of ints: {e}") from e
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("fleet sizes must be positive integers")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices",
        type=_sizes,
        default=[10, 100, 1000, 10000],
        help="comma-separated fleet sizes (default 10,100,1000,10000)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fleets")
    parser.add_argument(
        "--fixed-bits",
        type=int,
        default=8,
        choices=range(1, 17),
        metavar="B",
        help="bits of the fixed-B baseline (default 8)",
    )


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


def run(args: argparse.Namespace) -> int:
    rows = simulate_rows(args.devices, args.seed, args.fixed_bits)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        csv_path, png_path = args.out / "simulate.csv", args.out / "simulate.png"
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        _plot(rows, png_path)
    except OSError as e:
        print(f"greenfed-coordinator simulate: error: {e}", file=sys.stderr)
        return 2
    print(f"{'devices':>8} {'scheme':<10} {'feasible':<8} {'J/device':>10} {'mean_bits':>9}")
    for r in rows:
        print(
            f"{r['devices']:>8} {r['scheme']:<10} {r['feasible']!s:<8} "
            f"{r['energy_per_device_j']:>10.4g} {r['mean_bits']:>9.2f}"
        )
    print(f"wrote {csv_path} and {png_path}")
    return 0
