"""Calibration: measure the energy-model coefficients of DESIGN.md §2 on this device.

1. ``idle_power_w``: mean power over a rest period.
2. ``kappa`` in P_dyn = κ f³: dynamic power (mean − idle) while a fixed training workload
   runs at each available frequency step (where DVFS works), least squares through the
   origin: κ = Σ P f³ / Σ f⁶. Without DVFS: one point at the current frequency, flagged.
3. ``cycles_per_sample`` = f × time / samples, at the highest measured frequency.

Where the clock cannot be read at all (VMs, some SBC kernels: no cpufreq, psutil has
nothing; a CUDA GPU without a devfreq node), the device runs at one fixed clock that nobody
can tell us. The model then works in **seconds per sample** at that clock: the profile
declares a nominal reference clock ``NOMINAL_CLOCK_HZ`` (``clock = "nominal"``, a note says
so), ``cycles_per_sample`` = nominal × seconds per sample and κ = dynamic power / nominal³,
so κ·C·f² is the measured dynamic energy and C/f the measured time. The coordinator refits
the same way from measured rounds.
4. ``uplink_bytes_per_s`` and ``energy_per_byte_j`` = (mean power − idle) / throughput, by
   pushing bytes through a ``send(bytes)`` callable inside a ``communicate`` window (a
   loopback TCP sink for a dry run; the coordinator's upload stream in production).

f is the compute clock (:class:`~edge_agent.sensing.clock.ComputeClock`): the CPU's, or the
Jetson GPU's devfreq clock when the workload runs on CUDA; κ and cycles per sample are then
per GPU cycle, and the steps walked are the GPU's.

The result is a :class:`~edge_agent.sensing.profile.CalibrationProfile` (saved as JSON with
timestamps and the source). Each phase is its own function; the workload comes from the
agent's training mode (``edge_agent.training``), the sink from :mod:`.loopback`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from .base import PowerSource
from .clock import ComputeClock
from .config import SensingConfig
from .errors import CalibrationError
from .loopback import LoopbackSink
from .monitor import PowerMonitor, WindowResult
from .profile import NOMINAL_CLOCK_HZ, CalibrationProfile, KappaPoint, now_iso

log = logging.getLogger(__name__)

#: One call trains on a batch and returns how many samples it processed.
Workload = Callable[[], int]
#: Pushes bytes towards the coordinator (blocking until handed to the OS).
Sender = Callable[[bytes], None]

#: Dynamic power below this (W) is no measurement: κ or J/B from it are recorded as unknown.
MIN_DYNAMIC_POWER_W = 1e-3


def fit_kappa(points: Sequence[Tuple[float, float]]) -> float:
    """Least squares κ for P = κ f³ through the origin: Σ P f³ / Σ f⁶."""
    num = sum(p * f**3 for f, p in points)
    den = sum(f**6 for f, _ in points)
    if den <= 0:
        raise CalibrationError("no frequency to fit κ against")
    return num / den


def pick_steps(steps: Sequence[float], max_steps: int) -> List[float]:
    """Up to ``max_steps`` steps spread evenly, always including the lowest and highest; one
    step (the agent's quick calibration) is the highest, where cycles per sample are taken."""
    steps = sorted(steps)
    if len(steps) <= max_steps:
        return list(steps)
    if max_steps <= 1:
        return steps[-1:]
    idx = sorted({round(i * (len(steps) - 1) / (max_steps - 1)) for i in range(max_steps)})
    return [steps[i] for i in idx]


def run_for(
    workload: Workload, seconds: float, clock: Callable[[], float] = time.monotonic
) -> Tuple[int, float]:
    """Call ``workload`` until ``seconds`` have passed; (samples, elapsed seconds)."""
    t0 = clock()
    samples = 0
    while True:
        samples += int(workload())
        elapsed = clock() - t0
        if elapsed >= seconds:
            return samples, elapsed


@dataclass
class ComputePhase:
    """What the compute phase measured: one point per frequency step, and how."""

    points: List[KappaPoint]
    dvfs_line: str
    clock_source: str
    steps_hz: List[float]


@dataclass
class UplinkPhase:
    """Throughput (B/s) and energy per byte above idle (J/B) of the bytes pushed uplink."""

    rate_bytes_per_s: Optional[float]
    energy_per_byte_j: Optional[float]
    sent_bytes: int


def measure_idle(
    monitor: PowerMonitor, rest_s: float, sleep: Callable[[float], None], notes: List[str]
) -> Tuple[float, WindowResult]:
    """Idle power (W): the rest window's mean, or the model's constant for the estimated
    source (its rest window only shows how busy other processes kept the CPUs)."""
    monitor.begin_window("calibrate-idle")
    sleep(rest_s)
    idle = monitor.end_window("calibrate-idle")
    idle_w = idle.mean_power_w
    model_idle = monitor.source.model_idle_power_w
    if model_idle is not None:
        notes.append(
            f"idle power is the model constant {model_idle} W; the rest window read "
            f"{idle_w:.2f} W (the CPU use it counts while resting)"
        )
        idle_w = float(model_idle)
    monitor.idle_power_w = idle_w
    return idle_w, idle


def measure_compute(
    monitor: PowerMonitor,
    clock_hz: ComputeClock,
    workload: Workload,
    idle_w: float,
    step_s: float,
    max_steps: int,
    clock: Callable[[], float],
) -> ComputePhase:
    """Dynamic power and samples at each step of the compute clock (one point without DVFS);
    its limits are restored whatever happens."""
    points: List[KappaPoint] = []
    clock_source = clock_hz.read().source
    status = clock_hz.dvfs_status()
    steps = clock_hz.steps_hz
    multi = status.applied and len(steps) >= 2
    dvfs_line = str(status) if not status.applied else "dvfs: available"
    try:
        targets: List[Optional[float]] = list(pick_steps(steps, max_steps)) if multi else [None]
        for target in targets:
            if target is not None:
                res = clock_hz.apply(target)
                if not res.applied:
                    dvfs_line = str(res)
                    break
            workload()  # warm-up at this frequency, not measured
            monitor.begin_window("calibrate-compute")
            n, _elapsed = run_for(workload, step_s, clock)
            w = monitor.end_window("calibrate-compute")
            f = w.mean_freq_hz or target or clock_hz.read().freq_hz or clock_hz.max_hz
            if f is None:
                f = NOMINAL_CLOCK_HZ
                clock_source = "nominal"
            points.append(
                KappaPoint(f, w.mean_power_w - idle_w, w.mean_power_w, w.duration_s, w.samples, n)
            )
    finally:
        clock_hz.restore()
    return ComputePhase(points, dvfs_line, clock_source, list(steps))


def measure_uplink(
    monitor: PowerMonitor,
    send: Sender,
    idle_w: float,
    upload_bytes: int,
    chunk_bytes: int,
    notes: List[str],
) -> UplinkPhase:
    """Push ``upload_bytes`` through ``send`` inside a ``communicate`` window."""
    chunk = os.urandom(min(chunk_bytes, upload_bytes))
    sent = 0
    monitor.begin_window("communicate")
    while sent < upload_bytes:
        part = chunk[: upload_bytes - sent]
        send(part)
        sent += len(part)
    up = monitor.end_window("communicate")
    rate: Optional[float] = None
    epb: Optional[float] = None
    if up.duration_s > 0:
        rate = sent / up.duration_s
        epb = (up.mean_power_w - idle_w) / rate
    if epb is not None and (up.mean_power_w - idle_w) < MIN_DYNAMIC_POWER_W:
        # A cost at or below idle is noise (or rounding: -4e-25 J/B was seen), not a
        # measurement the coordinator can plan with: 0 says "unknown", and a note says why.
        notes.append(
            f"energy per byte {epb:.3g} J/B: the upload did not rise measurably above idle; "
            "recorded as 0 (unknown)"
        )
        epb = 0.0
    return UplinkPhase(rate, epb, sent)


def calibrate(
    monitor: PowerMonitor,
    clock_hz: ComputeClock,
    workload: Workload,
    send: Optional[Sender],
    *,
    workload_name: str,
    uplink_target: str = "loopback",
    rest_s: float = 10.0,
    step_s: float = 5.0,
    max_steps: int = 4,
    upload_bytes: int = 4 << 20,
    chunk_bytes: int = 256 << 10,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    device: str = "cpu",
) -> CalibrationProfile:
    """Run the calibration with a started ``monitor``; returns the profile (not saved).

    ``device``: the torch device ``workload`` runs on, recorded so the agent never uses a
    CPU profile for GPU rounds (or the reverse); ``clock_hz`` must be that device's clock.
    """
    started = now_iso()
    src = monitor.source
    notes: List[str] = []
    if src.estimated:
        notes.append("ESTIMATED: no power sensor; every figure comes from the utilisation model")
    idle_w, idle = measure_idle(monitor, rest_s, sleep, notes)
    compute = measure_compute(monitor, clock_hz, workload, idle_w, step_s, max_steps, clock)
    points = compute.points

    kappa: Optional[float] = None
    cycles: Optional[float] = None
    if points:
        kappa = fit_kappa([(p.freq_hz, p.dynamic_power_w) for p in points])
        top = max(points, key=lambda p: p.freq_hz)
        cycles = top.freq_hz * top.duration_s / max(1, top.train_samples)
        top_dynamic_w = kappa * top.freq_hz**3
        if top_dynamic_w < MIN_DYNAMIC_POWER_W:
            # Below a milliwatt at the top clock is no measurement (a sensor that did not move,
            # rounding): 0 says "unknown", the coordinator plans without it.
            notes.append(
                f"κ = {kappa:.3g} gives {top_dynamic_w:.3g} W at {top.freq_hz / 1e6:.0f} MHz: the "
                "workload's power did not rise measurably above idle; recorded as 0 (unknown)"
            )
            kappa = 0.0
    single = len(points) < 2
    if single:
        notes.append(f"κ from a single frequency point ({compute.dvfs_line})")
    clock_source = compute.clock_source
    f_min, f_max, f_steps = clock_hz.min_hz, clock_hz.max_hz, compute.steps_hz
    if clock_source == "nominal" or (clock_source == "none" and not f_steps):
        clock_source = "nominal"
        f_min = f_max = NOMINAL_CLOCK_HZ
        f_steps = [NOMINAL_CLOCK_HZ]
        notes.append(
            f"compute clock unreadable ({clock_hz.name}): the model works in seconds per "
            "sample at this device's fixed clock; frequencies are a nominal "
            f"{NOMINAL_CLOCK_HZ / 1e9:g} GHz reference, not a reading"
        )

    uplink = UplinkPhase(None, None, 0)
    if send is not None and upload_bytes > 0:
        uplink = measure_uplink(monitor, send, idle_w, upload_bytes, chunk_bytes, notes)
        if uplink_target.startswith("loopback"):
            notes.append("uplink measured against a loopback sink: not the real network")

    return CalibrationProfile(
        idle_power_w=idle_w,
        kappa=kappa,
        cycles_per_sample=cycles,
        uplink_bytes_per_s=uplink.rate_bytes_per_s,
        energy_per_byte_j=uplink.energy_per_byte_j,
        f_min_hz=f_min,
        f_max_hz=f_max,
        f_steps_hz=f_steps,
        source=src.name,
        scope=src.scope,
        estimated=src.estimated,
        started_at=started,
        kappa_single_point=single,
        kappa_points=points,
        dvfs=compute.dvfs_line,
        workload=workload_name,
        uplink_target=uplink_target,
        uplink_bytes=uplink.sent_bytes,
        idle_duration_s=idle.duration_s,
        notes=notes,
        clock=clock_source,
        device=device,
    )


def calibrate_on_loopback(
    source: PowerSource,
    clock_hz: ComputeClock,
    cfg: SensingConfig,
    workload: Workload,
    *,
    workload_name: str,
    device: str,
    uplink_target: str = "",
    rest_s: float = 10.0,
    step_s: float = 5.0,
    max_steps: int = 4,
    upload_bytes: int = 4 << 20,
) -> CalibrationProfile:
    """:func:`calibrate` with its own monitor on ``source`` and the upload sent to a
    :class:`LoopbackSink` (what ``greenfed-agent calibrate`` and the agent's quick calibration
    both do); ``uplink_target`` defaults to the sink's address."""
    monitor = PowerMonitor(source, clock_hz, cfg)
    with monitor, LoopbackSink() as sink:
        return calibrate(
            monitor,
            clock_hz,
            workload,
            sink.send,
            workload_name=workload_name,
            uplink_target=uplink_target or f"loopback {sink.address[0]}:{sink.address[1]}",
            rest_s=rest_s,
            step_s=step_s,
            max_steps=max_steps,
            upload_bytes=upload_bytes,
            device=device,
        )
