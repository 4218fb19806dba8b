#!/usr/bin/env python3
"""Benchmark of the allocator: solve time for 10^2..10^5 simulated devices.

Prints the command, the machine and its load average, then per fleet size the median over
repeats of (a) the continuous solution (KKT + search on the multiplier) and (b) the whole
``allocate(fleet, "on-demand")`` (continuous + integer bits + stepped frequencies). Fleets come
from the wireless simulation model with a fixed seed; building them is not timed.
Target (issue 4): 10 000 devices in < 100 ms.

    .venv/bin/python scripts/bench_allocator.py [--sizes 100,1000,10000,100000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coordinator.allocator import FleetArrays, allocate, solve_continuous
from coordinator.allocator.wireless import virtual_fleet
from scripts.benchlib import cpu_name


def _median_ms(fn: Callable[[FleetArrays], object], fleet: FleetArrays, repeats: int) -> float:
    fn(fleet)  # warm-up
    times: List[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(fleet)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(
        f"machine: {platform.node()} {platform.machine()} {cpu_name()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    try:
        one, five, fifteen = os.getloadavg()
        print(f"load average (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")
    except OSError:
        print("load average: unavailable")
    print(f"median of {args.repeats} repeats after one warm-up; seed {args.seed}")
    print(
        f"{'devices':>8} {'continuous_ms':>14} {'allocate_ms':>12} {'evals':>6} "
        f"{'energy_J':>12} {'mean_bits':>9}"
    )
    for n in sizes:
        fleet = virtual_fleet(n, seed=args.seed)
        cont_ms = _median_ms(solve_continuous, fleet, args.repeats)
        alloc_ms = _median_ms(allocate, fleet, args.repeats)
        sol, plan = solve_continuous(fleet), allocate(fleet, "on-demand")
        print(
            f"{n:>8} {cont_ms:>14.2f} {alloc_ms:>12.2f} {sol.evaluations:>6} "
            f"{plan.total_energy_j:>12.5g} {plan.bits.mean():>9.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
