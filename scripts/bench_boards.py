#!/usr/bin/env python3
"""Measure an emulated board: steps/s at its top clock and at half of it, and calibration's κ.

    sudo .venv/bin/python scripts/bench_boards.py [--profile rpi4] [--cpus 0.5] [--steps 24]

Creates one board (coordinator/boards) and runs tests/boards/board_worker.py inside its cgroup:
real DDPM training steps through the agent's own clock, alternating top/half/top/half, then the
agent's calibration over three clocks. Prints per phase the wall-clock steps/s, the share of the
quota the board used, its steps per CPU-second and its throttled periods; then the half/top
ratio per pair and κ measured against the profile's. Needs root and a CPU controller.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchlib import cpu_name  # noqa: E402

from coordinator.boards import BoardSet, fleet_scale, groups  # noqa: E402
from greenfed.boards import get_profile  # noqa: E402


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="rpi4", help="board profile (default rpi4)")
    p.add_argument("--cpus", type=float, default=0.5, help="host CPUs at the top step")
    p.add_argument("--steps", type=int, default=24, help="training steps per phase")
    p.add_argument("--pairs", type=int, default=2, help="top/half pairs")
    args = p.parse_args(argv)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs ({cpu_name()}), kernel "
          f"{platform.release()}; load average {os.getloadavg()}")  # fmt: skip
    hierarchy, why = groups.probe()
    if hierarchy is None:
        print(f"emulated boards unavailable: {why}", file=sys.stderr)
        return 2
    profile = get_profile(args.profile)
    scale = fleet_scale([profile], cpu_per_unit=args.cpus / profile.relative_speed,
                        budget_cpus=float(os.cpu_count() or 1))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, BoardSet(Path(tmp), hierarchy, scale) as boards:
        board = boards.attach("bench", profile)
        config, out = Path(tmp) / "worker.json", Path(tmp) / "result.json"
        config.write_text(json.dumps({"board": board.agent_values["sensing"]["emulated"],
                                      "steps": args.steps, "pairs": args.pairs,
                                      "calibration_step_s": 2.0}))  # fmt: skip
        subprocess.run([*board.argv_prefix, sys.executable, "-m", "tests.boards.board_worker",
                        str(config), str(out)], cwd=REPO, check=True)  # fmt: skip
        result = json.loads(out.read_text())
    print(f"board: {profile.name}, {args.cpus:g} host CPUs at {profile.f_max_hz / 1e6:.0f} MHz "
          f"({hierarchy.describe()})")  # fmt: skip
    print(f"{'clock MHz':>9}  {'steps/s':>8}  {'of quota':>8}  {'steps/CPU-s':>11}  throttled")
    for ph in result["phases"]:
        print(f"{ph['freq_hz'] / 1e6:>9.0f}  {ph['steps'] / ph['wall_s']:>8.2f}  "
              f"{ph['cpu_s'] / (ph['wall_s'] * ph['quota_cpus']):>8.3f}  "
              f"{ph['steps'] / ph['cpu_s']:>11.1f}  {ph['throttled']}/{ph['periods']}")  # fmt: skip
    top = [ph for ph in result["phases"] if ph["freq_hz"] == profile.f_max_hz]
    half = [ph for ph in result["phases"] if ph["freq_hz"] != profile.f_max_hz]
    ratios = [(h["steps"] / h["wall_s"]) / (t["steps"] / t["wall_s"]) for t, h in zip(top, half)]
    print(f"RESULT steps/s at {half[0]['freq_hz'] / 1e6:.0f} MHz over {profile.f_max_hz / 1e6:.0f}"
          f" MHz: {', '.join(f'{r:.3f}' for r in ratios)} (median {statistics.median(ratios):.3f}"
          f", clock ratio {half[0]['freq_hz'] / profile.f_max_hz:.3f})")  # fmt: skip
    print(f"RESULT quota after restore: {result['restored_quota_us']} µs")
    cal = result["calibration"]
    points = ", ".join(f"{k['freq_hz'] / 1e6:.0f} MHz {k['dynamic_power_w']:.3f} W"
                       for k in cal["kappa_points"])  # fmt: skip
    print(
        f"RESULT kappa {cal['kappa']:.4e} W/Hz^3 measured ({points}) vs profile "
        f"{result['profile_kappa']:.4e}: ratio {cal['kappa'] / result['profile_kappa']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
