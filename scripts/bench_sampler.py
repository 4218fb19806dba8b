#!/usr/bin/env python3
"""Overhead of the power sampler at 10 Hz, measured side by side in one run.

Two figures, from interleaved repeats of the same torch training loop with the sampler
off and on (order alternates per repeat; medians reported):

* sampler CPU: CPU time of the sampler thread (``time.thread_time`` inside it) as a
  percentage of one core over the wall time it ran;
* slowdown: median loop time with the sampler / median without, minus one; also the
  median of the per-repeat paired ratios.

Targets: < 1 % of one core and < 2 % slowdown. Usage::

    .venv/bin/python scripts/bench_sampler.py [--repeats 10] [--steps 150] [--rate-hz 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.sensing import CpuFreq, PowerMonitor, SensingConfig, detect_power_source
from edge_agent.training.workloads import torch_conv_workload


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(step: Callable[[], int], steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--steps", type=int, default=150, help="training steps per timed run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--sysfs-root", type=Path, default=Path("/"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        f"machine: {platform.node()} {platform.machine()} '{cpu_model()}', "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
        f"torch threads {args.threads}"
    )
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    cfg = SensingConfig(rate_hz=args.rate_hz)
    source = detect_power_source(cfg, args.sysfs_root)
    cpu = CpuFreq(args.sysfs_root)
    print(f"source: {source.name} ({source.scope}); sampling power + CPU frequency")

    step, name = torch_conv_workload(args.batch_size)
    timed(step, 20)  # warm-up
    off: List[float] = []
    on: List[float] = []
    cpu_pct: List[float] = []
    rates: List[float] = []
    for r in range(args.repeats):
        order: Tuple[bool, ...] = (False, True) if r % 2 == 0 else (True, False)
        for with_sampler in order:
            if not with_sampler:
                off.append(timed(step, args.steps))
                continue
            mon = PowerMonitor(source, cpu, cfg)
            w0 = time.perf_counter()
            mon.start()
            on.append(timed(step, args.steps))
            mon.stop()
            wall = time.perf_counter() - w0
            cpu_pct.append(100.0 * mon.sampler_cpu_s / wall)
            rates.append(mon.samples_taken / wall)

    med_off, med_on = statistics.median(off), statistics.median(on)
    paired = statistics.median(b / a - 1.0 for a, b in zip(off, on))
    print(f"workload: {name}, {args.steps} steps per run, {args.repeats} interleaved repeats")
    print(f"loop time without sampler: median {med_off:.3f} s  (all: {[round(x, 3) for x in off]})")
    print(f"loop time with sampler:    median {med_on:.3f} s  (all: {[round(x, 3) for x in on]})")
    print(f"sampler rate: median {statistics.median(rates):.2f} Hz (asked {args.rate_hz})")
    print(
        f"RESULT sampler CPU: median {statistics.median(cpu_pct):.3f} % of one core "
        f"(max {max(cpu_pct):.3f} %)"
    )
    print(
        f"RESULT slowdown: {100 * (med_on / med_off - 1):+.2f} % (medians), "
        f"{100 * paired:+.2f} % (median of paired ratios)"
    )
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
