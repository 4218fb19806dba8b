"""Runs inside an emulated board's cgroup (tests/boards/test_board_clock.py starts it there).

Through the agent's own classes (EmulatedClock, EmulatedBoardSource, PowerMonitor, calibrate)
it measures, and writes as JSON:

- ``phases``: training throughput at the top step and at half of it, interleaved
  (top, half, top, half): a fixed number of real DDPM training steps each, with the wall time
  and the cgroup's CPU time and throttling over the phase; the clock restored after each;
- ``restored_quota_us``: the quota after the last restore;
- ``calibration``: the agent's calibration (κ from three clocks) on this board.

Usage: python -m tests.boards.board_worker CONFIG.json OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict


def main(config: Path, out: Path) -> None:
    import torch

    from edge_agent.sensing import (
        EmulatedBoardConfig,
        EmulatedBoardSource,
        EmulatedClock,
        PowerMonitor,
        SensingConfig,
        calibrate,
    )
    from edge_agent.sensing.factory import make_context
    from edge_agent.training.workloads import ddpm_workload

    torch.set_num_threads(1)
    spec = json.loads(config.read_text())
    cfg = EmulatedBoardConfig(**spec["board"])
    clock = EmulatedClock.from_config(cfg)
    board = clock.board
    workload, name = ddpm_workload(batch_size=64, steps_per_call=1)
    for _ in range(3):  # warm-up (allocations, first-call overheads): not measured
        workload()
    top = board.profile.f_max_hz
    phases = []
    for freq in [top, top / 2] * int(spec.get("pairs", 2)):
        clock.apply(freq)
        cpu0, thr0, t0 = board.usage_s(), board.group.throttling(), time.monotonic()
        for _ in range(int(spec["steps"])):
            workload()
        wall, cpu, thr = time.monotonic() - t0, board.usage_s() - cpu0, board.group.throttling()
        clock.restore()
        phases.append(
            {
                "freq_hz": clock_freq(freq, board),
                "steps": int(spec["steps"]),
                "wall_s": wall,
                "cpu_s": cpu,
                "quota_cpus": board.cpus_at(freq),
                "periods": thr.periods - thr0.periods,
                "throttled": thr.throttled - thr0.throttled,
            }
        )
    result: Dict[str, Any] = {"phases": phases, "restored_quota_us": board.group.limits_us()[0]}
    sensing = SensingConfig(emulated=cfg)
    source = EmulatedBoardSource.open(make_context(sensing))
    with PowerMonitor(source, clock, sensing) as monitor:
        profile = calibrate(
            monitor, clock, workload, None, workload_name=name,
            rest_s=0.3, step_s=float(spec["calibration_step_s"]), max_steps=3,
        )  # fmt: skip
    result["calibration"] = profile.to_dict()
    result["profile_kappa"] = board.profile.kappa
    out.write_text(json.dumps(result, indent=1))


def clock_freq(freq: float, board: Any) -> float:
    """The step ``freq`` lands on (the next one up)."""
    return min(s for s in board.profile.steps_hz if s >= freq - 0.5)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
