#!/usr/bin/env python3
"""Benchmark of the pool planner: plan time for 30 layers x 8 members x 10 frequency steps.

Prints the command, the machine and its load average, then the median over repeats of one
``plan_pool`` call (single board, data parallel over 2..8 members, pipelines of 2..8 stages
with 1..16 micro-batches, each stage's cuts by dynamic programming), for random layers and
members from a fixed seed (building them is not timed), and the plan it found.
Target (issue 20): < 100 ms.

    .venv/bin/python scripts/bench_pool_planner.py [--layers 30] [--members 8] [--steps 10]
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
from typing import List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greenfed.pool import LayerProfile, MemberSpec, PoolWork, plan_pool
from scripts.benchlib import cpu_name


def inputs(n_layers: int, n_members: int, n_steps: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    layers = [
        LayerProfile(
            f"l{i}",
            cycles_per_sample=float(rng.uniform(1e6, 1e7)),
            cycles_per_call=float(rng.uniform(1e5, 1e6)),
            update_cycles=float(rng.uniform(1e4, 1e5)),
            param_bytes=float(rng.uniform(1e4, 1e6)),
            act_bytes_per_sample=float(rng.uniform(1e3, 1e5)),
            out_bytes_per_sample=float(rng.uniform(1e3, 1e4)),
        )
        for i in range(n_layers)
    ]
    members = [
        MemberSpec(
            f"m{i}",
            kappa=float(rng.uniform(5e-28, 2e-27)),
            f_steps_hz=tuple(np.linspace(6e8, 1.8e9, n_steps)),
            memory_bytes=float(rng.uniform(5e7, 1e9)),
            link_bytes_per_s=float(rng.uniform(1e7, 1.2e8)),
            link_energy_per_byte_j=float(rng.uniform(4e-9, 1e-7)),
            speed_scale=float(rng.uniform(0.8, 1.5)),
        )
        for i in range(n_members)
    ]
    return layers, members, PoolWork(batch_size=64, steps=20, deadline_s=60.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="frequency steps per member")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(
        f"machine: {platform.node()} {platform.machine()} {cpu_name()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    )
    try:
        one, five, fifteen = os.getloadavg()
        print(f"load average (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")
    except OSError:
        print("load average: unavailable")
    layers, members, work = inputs(args.layers, args.members, args.steps, args.seed)
    plan = plan_pool(layers, members, work)  # warm-up
    times: List[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        plan = plan_pool(layers, members, work)
        times.append(time.perf_counter() - t0)
    med = 1e3 * statistics.median(times)
    print(
        f"{args.layers} layers x {args.members} members x {args.steps} frequency steps: "
        f"median {med:.1f} ms (min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f}) "
        f"over {args.repeats} repeats; target < 100 ms: {'met' if med < 100 else 'MISSED'}"
    )
    print(f"plan: {plan.label}, {plan.energy_j:.4g} J predicted, feasible {plan.feasible}")
    for label, energy, seconds, ok in plan.alternatives:
        print(f"  best {label:<40} {energy:10.4g} J {seconds:8.3g} s feasible {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
