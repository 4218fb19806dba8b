"""Calibration: measure the energy-model coefficients of DESIGN.md §2 on this device.

1. ``idle_power_w``: mean power over a rest period.
2. ``kappa`` in P_dyn = κ f³: dynamic power (mean − idle) while a fixed training workload
   runs at each available frequency step (where DVFS works), least squares through the
   origin: κ = Σ P f³ / Σ f⁶. Without DVFS: one point at the current frequency, flagged.
3. ``cycles_per_sample`` = f × time / samples, at the highest measured frequency.

Where the CPU clock cannot be read at all (VMs, some SBC kernels: no cpufreq, psutil has
nothing), the device runs at one fixed clock that nobody can tell us. The model then works in
**seconds per sample** at that clock: the profile declares a nominal reference clock
``NOMINAL_CLOCK_HZ`` (``clock = "nominal"``, a note says so), ``cycles_per_sample`` = nominal
× seconds per sample and κ = dynamic power / nominal³, so κ·C·f² is the measured dynamic
energy and C/f the measured time. The coordinator refits the same way from measured rounds.
4. ``uplink_bytes_per_s`` and ``energy_per_byte_j`` = (mean power − idle) / throughput, by
   pushing bytes through a ``send(bytes)`` callable inside a ``communicate`` window (a
   loopback TCP sink for a dry run; the coordinator's upload stream in production).

The result is a :class:`CalibrationProfile`, saved as JSON with timestamps and the source.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .cpufreq import CpuFreq
from .errors import CalibrationError
from .monitor import PowerMonitor

log = logging.getLogger(__name__)

#: One call trains on a batch and returns how many samples it processed.
Workload = Callable[[], int]
#: Pushes bytes towards the coordinator (blocking until handed to the OS).
Sender = Callable[[bytes], None]

PROFILE_VERSION = 1

#: The reference clock of a device whose clock cannot be read (a unit, not a reading).
NOMINAL_CLOCK_HZ = 1.0e9


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class KappaPoint:
    """One frequency step: measured frequency (Hz) and dynamic power (W)."""

    freq_hz: float
    dynamic_power_w: float
    mean_power_w: float
    duration_s: float
    samples: int
    train_samples: int


@dataclass
class CalibrationProfile:
    """Measured coefficients of one device (units in the names; κ in W/Hz³)."""

    idle_power_w: float
    kappa: Optional[float]
    cycles_per_sample: Optional[float]
    uplink_bytes_per_s: Optional[float]
    energy_per_byte_j: Optional[float]
    f_min_hz: Optional[float]
    f_max_hz: Optional[float]
    f_steps_hz: List[float]
    source: str
    scope: str
    estimated: bool
    created_at: str = field(default_factory=_now_iso)
    started_at: str = ""
    kappa_single_point: bool = False
    kappa_points: List[KappaPoint] = field(default_factory=list)
    dvfs: str = ""
    workload: str = ""
    uplink_target: str = ""
    uplink_bytes: int = 0
    idle_duration_s: float = 0.0
    notes: List[str] = field(default_factory=list)
    clock: str = ""  # "sysfs", "psutil", or "nominal" (unreadable: NOMINAL_CLOCK_HZ reference)
    version: int = PROFILE_VERSION

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            os.replace(tmp, path)
        except OSError as e:
            raise CalibrationError(f"cannot write profile {path}: {e}") from e

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> CalibrationProfile:
        d = dict(data)
        d["kappa_points"] = [KappaPoint(**p) for p in d.get("kappa_points", [])]
        try:
            return cls(**d)
        except TypeError as e:
            raise CalibrationError(f"not a calibration profile: {e}") from e

    @classmethod
    def load(cls, path: Path) -> CalibrationProfile:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise CalibrationError(f"cannot read profile {path}: {e}") from e


def fit_kappa(points: Sequence[Tuple[float, float]]) -> float:
    """Least squares κ for P = κ f³ through the origin: Σ P f³ / Σ f⁶."""
    num = sum(p * f**3 for f, p in points)
    den = sum(f**6 for f, _ in points)
    if den <= 0:
        raise CalibrationError("no frequency to fit κ against")
    return num / den


def pick_steps(steps: Sequence[float], max_steps: int) -> List[float]:
    """Up to ``max_steps`` steps spread evenly, always including the lowest and highest."""
    steps = sorted(steps)
    if len(steps) <= max_steps:
        return list(steps)
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


class LoopbackSink:
    """A TCP sink on 127.0.0.1 that discards what it receives (dry-run uplink)."""

    def __init__(self) -> None:
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.address = self._srv.getsockname()
        self.received = 0
        self._thread = threading.Thread(target=self._serve, name="loopback-sink", daemon=True)
        self._thread.start()
        self._client = socket.create_connection(self.address)

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                self.received += len(data)

    def send(self, data: bytes) -> None:
        self._client.sendall(data)

    def close(self) -> int:
        """Close and wait for the sink; returns the bytes it received."""
        self._client.close()
        self._thread.join()
        self._srv.close()
        return self.received

    def __enter__(self) -> LoopbackSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def calibrate(
    monitor: PowerMonitor,
    cpu: CpuFreq,
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
) -> CalibrationProfile:
    """Run the calibration with a started ``monitor``; returns the profile (not saved)."""
    started = _now_iso()
    src = monitor.source
    notes: List[str] = []
    if src.estimated:
        notes.append("ESTIMATED: no power sensor; every figure comes from the utilisation model")

    monitor.begin_window("calibrate-idle")
    sleep(rest_s)
    idle = monitor.end_window("calibrate-idle")
    idle_w = idle.mean_power_w
    model_idle = src.model_idle_power_w
    if model_idle is not None:
        # The model's P_idle is its definition of idle; the rest window only shows how busy
        # other processes kept the CPUs (system-wide utilisation).
        notes.append(
            f"idle power is the model constant {model_idle} W; the rest window read "
            f"{idle_w:.2f} W from other processes' CPU use"
        )
        idle_w = float(model_idle)
    monitor.idle_power_w = idle_w

    points: List[KappaPoint] = []
    clock_source = cpu.read().source
    status = cpu.dvfs_status()
    steps = cpu.steps_hz
    multi = status.applied and len(steps) >= 2
    dvfs_line = str(status) if not status.applied else "dvfs: available"
    try:
        targets: List[Optional[float]] = list(pick_steps(steps, max_steps)) if multi else [None]
        for target in targets:
            if target is not None:
                res = cpu.apply(target)
                if not res.applied:
                    dvfs_line = str(res)
                    break
            workload()  # warm-up at this frequency, not measured
            monitor.begin_window("calibrate-compute")
            n, _elapsed = run_for(workload, step_s, clock)
            w = monitor.end_window("calibrate-compute")
            f = w.mean_freq_hz or target or cpu.read().freq_hz or cpu.max_hz
            if f is None:
                f = NOMINAL_CLOCK_HZ
                clock_source = "nominal"
            points.append(
                KappaPoint(f, w.mean_power_w - idle_w, w.mean_power_w, w.duration_s, w.samples, n)
            )
    finally:
        cpu.restore()

    kappa: Optional[float] = None
    cycles: Optional[float] = None
    if points:
        kappa = fit_kappa([(p.freq_hz, p.dynamic_power_w) for p in points])
        top = max(points, key=lambda p: p.freq_hz)
        cycles = top.freq_hz * top.duration_s / max(1, top.train_samples)
        if kappa <= 0:
            notes.append("κ ≤ 0: the workload's power did not rise above idle (noise?)")
    single = len(points) < 2
    if single:
        notes.append(f"κ from a single frequency point ({dvfs_line})")
    f_min, f_max, f_steps = cpu.min_hz, cpu.max_hz, list(steps)
    if clock_source == "nominal" or (clock_source == "none" and not f_steps):
        clock_source = "nominal"
        f_min = f_max = NOMINAL_CLOCK_HZ
        f_steps = [NOMINAL_CLOCK_HZ]
        notes.append(
            "CPU clock unreadable: the model works in seconds per sample at this device's "
            f"fixed clock; frequencies are a nominal {NOMINAL_CLOCK_HZ / 1e9:g} GHz reference, "
            "not a reading"
        )

    rate: Optional[float] = None
    epb: Optional[float] = None
    sent = 0
    if send is not None and upload_bytes > 0:
        chunk = os.urandom(min(chunk_bytes, upload_bytes))
        monitor.begin_window("communicate")
        while sent < upload_bytes:
            part = chunk[: upload_bytes - sent]
            send(part)
            sent += len(part)
        up = monitor.end_window("communicate")
        if up.duration_s > 0:
            rate = sent / up.duration_s
            epb = (up.mean_power_w - idle_w) / rate
        if epb is not None and epb <= 0:
            notes.append("energy per byte ≤ 0: upload too short to rise above idle")
        if uplink_target.startswith("loopback"):
            notes.append("uplink measured against a loopback sink: not the real network")

    return CalibrationProfile(
        idle_power_w=idle_w,
        kappa=kappa,
        cycles_per_sample=cycles,
        uplink_bytes_per_s=rate,
        energy_per_byte_j=epb,
        f_min_hz=f_min,
        f_max_hz=f_max,
        f_steps_hz=f_steps,
        source=src.name,
        scope=src.scope,
        estimated=src.estimated,
        started_at=started,
        kappa_single_point=single,
        kappa_points=points,
        dvfs=dvfs_line,
        workload=workload_name,
        uplink_target=uplink_target,
        uplink_bytes=sent,
        idle_duration_s=idle.duration_s,
        notes=notes,
        clock=clock_source,
    )
