"""A fixed round deadline for an emulated fleet, from its boards, its links and this machine.

An experiment holds one deadline for every scheme. Over emulated boards the interesting one
is tight enough that the clock matters: the fp32 baseline must just fit, so a scheme that
sends fewer bits can run its boards slower. :func:`fleet_deadline` is the design's rule
(DESIGN.md §3: "for example 1.2 × the slowest device's fastest possible round"), with fp32's
upload as the round's upload: ``factor`` × max over devices of

    local_steps / (steps per host CPU-second × the board's host CPUs at its top step)
    + fp32 update bytes / link rate

The steps per host CPU-second are measured once here (:func:`host_steps_per_cpu_s`, the
project's DDPM on this machine, timed in CPU time so other load does not change it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from coordinator.boards.fleet import FleetScale
from greenfed.boards import BoardProfile

DEADLINE_FACTOR = 1.3  # the design's 1.2, plus the agent's own work around training
MEASURE_S = 2.0


def host_steps_per_cpu_s(batch_size: int, preset: str = "pi-small", seconds: float = MEASURE_S,
                         data: str = "digits:split=train") -> float:  # fmt: skip
    """Training steps of ``preset`` per CPU-second of one thread here (torch, 1 thread)."""
    import torch

    from greenfed import ddpm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = ddpm.build_model(ddpm.PRESETS[preset])
        images = ddpm.load_data(data).images
        cfg = ddpm.TrainConfig(steps=5, batch_size=batch_size, seed=0)
        schedule = ddpm.NoiseSchedule()
        ddpm.train_local(model, schedule, images, cfg)  # warm-up, not timed
        steps, c0 = 0, time.thread_time()
        while time.thread_time() - c0 < seconds:
            steps += ddpm.train_local(model, schedule, images, cfg).steps
        return steps / (time.thread_time() - c0)
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class DeviceRound:
    """One device's fastest fp32 round (top step), split in its two parts (s)."""

    device_id: str
    board: str
    compute_s: float
    upload_s: float

    @property
    def total_s(self) -> float:
        return self.compute_s + self.upload_s


def fastest_rounds(
    devices: Sequence[Tuple[str, BoardProfile, float]],
    scale: FleetScale,
    local_steps: int,
    steps_per_cpu_s: float,
    fp32_bytes: float,
) -> List[DeviceRound]:
    """Per (device id, board, link Mbit/s): its fastest fp32 round."""
    return [
        DeviceRound(
            device,
            board.name,
            local_steps / (steps_per_cpu_s * scale.cpus(board)),
            fp32_bytes * 8.0 / (mbps * 1e6),
        )
        for device, board, mbps in devices
    ]


def fleet_deadline(rounds: Sequence[DeviceRound], factor: float = DEADLINE_FACTOR) -> float:
    """``factor`` × the slowest device's fastest fp32 round, rounded up to 0.1 s."""
    slowest = max(r.total_s for r in rounds)
    return float(int(factor * slowest * 10.0 + 0.999)) / 10.0


def describe(rounds: Sequence[DeviceRound], steps_per_cpu_s: float, factor: float) -> str:
    """The note an experiment records with the deadline it derived."""
    slow = max(rounds, key=lambda r: r.total_s)
    parts = ", ".join(f"{r.device_id} ({r.board}) {r.compute_s:.1f}+{r.upload_s:.1f} s"
                      for r in rounds)  # fmt: skip
    return (
        f"{factor:g} x the slowest board's fastest fp32 round ({slow.device_id}: "
        f"{slow.total_s:.1f} s); fastest rounds (compute at the top step + fp32 upload): "
        f"{parts}; this machine trains {steps_per_cpu_s:.1f} steps per CPU-second"
    )
