"""Background power sampler with named measurement windows (like ZeusMonitor).

A daemon thread reads the power source (and the compute clock: the CPU's, or the GPU's when
the agent trains on CUDA) every ``period_s``:
``1 / cfg.rate_hz`` (default 10 Hz), never faster than the source allows. Windows
(``begin_window(name)`` … ``end_window(name)``) may overlap; each open window integrates
every new sample as it arrives, so memory stays constant however long a window runs.
``begin_window``/``end_window`` take a sample themselves, so a window's edges are exact.

Energy: counter deltas where the source has a cumulative counter (RAPL), else the
trapezoid rule over ``time.monotonic()`` timestamps. Where the source has a GPU rail
(``source.gpu_rail``) its energy is integrated the same way beside the total. If a read
fails, the last good power is held (zero-order) across the gap and ``read_errors`` counts it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional

from .base import PowerSource
from .clock import ComputeClock
from .config import SensingConfig
from .errors import MonitorError, SensingError

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """``t``: monotonic seconds; ``power_w``; ``energy_j``: counter (J) or None; ``freq_hz``:
    the compute clock; ``gpu_power_w``: the GPU rail (None: no such rail)."""

    t: float
    power_w: float
    energy_j: Optional[float] = None
    freq_hz: Optional[float] = None
    gpu_power_w: Optional[float] = None


@dataclass
class WindowResult:
    """One window's measurement. Energies in J, powers in W, frequency in Hz.

    ``dynamic_energy_j`` = ``energy_j`` − ``idle_power_w`` × ``duration_s`` (None when no
    idle power is known). ``estimated`` is True when the source is the utilisation model.
    ``mean_freq_hz`` is the compute clock's (the GPU's when training on CUDA).
    ``gpu_energy_j``: energy of the GPU rail over the window, a part of ``energy_j`` (None
    where the source has no GPU rail); ``gpu_rail`` names it and what it covers, e.g.
    "VDD_CPU_GPU_CV (CPU, GPU and CV combined)".
    """

    name: str
    energy_j: float
    dynamic_energy_j: Optional[float]
    duration_s: float
    mean_power_w: float
    peak_power_w: float
    samples: int
    mean_freq_hz: Optional[float]
    source: str
    scope: str
    estimated: bool
    idle_power_w: Optional[float]
    read_errors: int = 0
    gpu_energy_j: Optional[float] = None
    gpu_rail: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class _Window:
    def __init__(self, name: str, t0: float) -> None:
        self.name = name
        self.t0 = t0
        self.last: Optional[Sample] = None
        self.energy_j = 0.0
        self.peak_w = float("-inf")
        self.samples = 0
        self.freq_area = 0.0
        self.freq_time = 0.0
        self.errors = 0
        self.gpu_energy_j: Optional[float] = None

    def add(self, s: Sample) -> None:
        prev = self.last
        if prev is None:  # first good sample: hold it back to the window's start
            self.energy_j += s.power_w * max(0.0, s.t - self.t0)
            if s.gpu_power_w is not None:
                self.gpu_energy_j = s.gpu_power_w * max(0.0, s.t - self.t0)
        else:
            dt = s.t - prev.t
            if s.energy_j is not None and prev.energy_j is not None:
                self.energy_j += s.energy_j - prev.energy_j
            else:
                self.energy_j += 0.5 * (s.power_w + prev.power_w) * dt
            if s.gpu_power_w is not None and prev.gpu_power_w is not None:
                self.gpu_energy_j = (self.gpu_energy_j or 0.0) + 0.5 * dt * (
                    s.gpu_power_w + prev.gpu_power_w
                )
            if s.freq_hz is not None and prev.freq_hz is not None and dt > 0:
                self.freq_area += 0.5 * (s.freq_hz + prev.freq_hz) * dt
                self.freq_time += dt
        self.peak_w = max(self.peak_w, s.power_w)
        self.samples += 1
        self.last = s


class PowerMonitor:
    """Samples ``source`` (and the ``compute`` clock) in the background; measures windows.

    ``idle_power_w``: subtracted for dynamic energy (from the calibration profile);
    falls back to ``cfg.idle_power_w``, then to the estimated model's idle constant.
    ``clock`` is injectable so tests can drive time deterministically.
    """

    def __init__(
        self,
        source: PowerSource,
        compute: Optional[ComputeClock] = None,
        cfg: Optional[SensingConfig] = None,
        idle_power_w: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.compute = compute
        self.cfg = cfg or SensingConfig()
        self.period_s = max(1.0 / self.cfg.rate_hz, source.min_period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: Dict[str, _Window] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.idle_power_w = idle_power_w
        if self.idle_power_w is None:
            self.idle_power_w = self.cfg.idle_power_w
        if self.idle_power_w is None:
            self.idle_power_w = source.model_idle_power_w
        self.samples_taken = 0
        self.read_errors = 0
        self.sampler_cpu_s = 0.0
        self.last_sample: Optional[Sample] = None
        self._last_error = ""

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise MonitorError("PowerMonitor already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the sampler and join its thread (open windows stay open)."""
        t = self._thread
        if t is None:
            return
        self._stop.set()
        t.join()
        self._thread = None

    def __enter__(self) -> PowerMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        cpu0 = time.thread_time()
        next_t = time.monotonic()
        while True:
            next_t += self.period_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (slow read): skip, do not burst
                next_t = time.monotonic()
                delay = 0.0
            if self._stop.wait(delay):
                break
            self.sample_now()
            self.sampler_cpu_s = time.thread_time() - cpu0

    # -- sampling --------------------------------------------------------------------
    def sample_now(self) -> Optional[Sample]:
        """Take one sample now and feed it to every open window (thread-safe)."""
        with self._lock:
            return self._sample_locked()

    def _sample_locked(self) -> Optional[Sample]:
        try:
            r = self.source.read()
        except SensingError as e:
            self.read_errors += 1
            for w in self._windows.values():
                w.errors += 1
            if str(e) != self._last_error:
                log.warning("power read failed (%s); holding the last value", e)
                self._last_error = str(e)
            return None
        freq: Optional[float] = None
        if self.compute is not None and self.cfg.sample_freq:
            try:
                freq = self.compute.read().freq_hz
            except SensingError:
                freq = None
        rail = self.source.gpu_rail
        gpu_w = r.rails_w.get(rail) if rail is not None else None
        t = r.t if r.t is not None else self._clock()
        s = Sample(t, r.power_w, r.energy_j, freq, gpu_w)
        for w in self._windows.values():
            w.add(s)
        self.samples_taken += 1
        self.last_sample = s
        return s

    # -- windows ---------------------------------------------------------------------
    def begin_window(self, name: str) -> None:
        """Open window ``name`` (names must be unique among open windows)."""
        with self._lock:
            if name in self._windows:
                raise MonitorError(f"window {name!r} is already open")
            self.source.window_event(name, True)
            w = _Window(name, self._clock())
            self._windows[name] = w
            self._sample_locked()

    def end_window(self, name: str) -> WindowResult:
        """Close window ``name`` and return its measurement."""
        with self._lock:
            if name not in self._windows:
                raise MonitorError(f"window {name!r} is not open")
            self._sample_locked()
            w = self._windows.pop(name)
            self.source.window_event(name, False)
            t_end = self._clock()
        if w.last is None:
            raise MonitorError(f"window {name!r}: no successful power reading")
        if t_end > w.last.t:  # the closing read failed: hold the last power to the end
            w.energy_j += w.last.power_w * (t_end - w.last.t)
            if w.gpu_energy_j is not None and w.last.gpu_power_w is not None:
                w.gpu_energy_j += w.last.gpu_power_w * (t_end - w.last.t)
        duration = max(0.0, max(t_end, w.last.t) - w.t0)
        mean_p = w.energy_j / duration if duration > 0 else w.last.power_w
        idle = self.idle_power_w
        return WindowResult(
            name=name,
            energy_j=w.energy_j,
            dynamic_energy_j=None if idle is None else w.energy_j - idle * duration,
            duration_s=duration,
            mean_power_w=mean_p,
            peak_power_w=w.peak_w,
            samples=w.samples,
            mean_freq_hz=(w.freq_area / w.freq_time) if w.freq_time > 0 else (w.last.freq_hz),
            source=self.source.name,
            scope=self.source.scope,
            estimated=self.source.estimated,
            idle_power_w=idle,
            read_errors=w.errors,
            gpu_energy_j=w.gpu_energy_j,
            gpu_rail=self._gpu_rail_name() if w.gpu_energy_j is not None else "",
        )

    def _gpu_rail_name(self) -> str:
        """The GPU rail's label and what it covers, e.g. "VDD_GPU_SOC (GPU and SoC)"."""
        label = (self.source.gpu_rail or "").rsplit(":", 1)[-1]
        covers = self.source.gpu_rail_covers
        return f"{label} ({covers})" if covers else label

    @property
    def open_windows(self) -> Dict[str, float]:
        with self._lock:
            return {n: w.t0 for n, w in self._windows.items()}
