"""CPU frequency: read per cpufreq policy, and DVFS by clamping the policy's limits.

Layout (kHz everywhere in sysfs; Hz everywhere in our API)::

    /sys/devices/system/cpu/cpufreq/policyN/
        affected_cpus / related_cpus        CPUs in the policy
        scaling_cur_freq                    current frequency, kHz
        scaling_available_frequencies       steps, kHz (absent with intel_pstate: a range)
        cpuinfo_min_freq / cpuinfo_max_freq hardware range, kHz
        scaling_min_freq / scaling_max_freq the governor's limits, kHz (root writes)
        scaling_governor

Where sysfs has no cpufreq (VMs, containers) ``psutil.cpu_freq()`` is the fallback; it
returns None on some ARM VMs and min = max = 0 on others, both handled.

DVFS: :meth:`CpuFreq.apply` clamps ``scaling_max_freq`` (and ``scaling_min_freq`` when it
lies above the target) to the next available step ≥ the request, remembers the original
limits, and restores them on :meth:`CpuFreq.restore`, at interpreter exit (atexit) and on
SIGTERM (a handler that restores, then chains to the previous handler). A board is never
left clamped by a clean exit or a SIGTERM; SIGKILL cannot be caught.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Dict, List, Optional, Tuple

from .errors import SensingError
from .sysfs import read_int, read_opt_text, under, write_text

log = logging.getLogger(__name__)

CPUFREQ_DIR = "/sys/devices/system/cpu/cpufreq"


@dataclass
class Policy:
    """One cpufreq policy (a cluster of CPUs sharing a clock)."""

    path: Path
    cpus: List[int]
    steps_khz: List[int]
    min_khz: int
    max_khz: int
    governor: Optional[str]

    @property
    def name(self) -> str:
        return self.path.name

    def cur_khz(self) -> int:
        f = self.path / "scaling_cur_freq"
        return read_int(f if f.exists() else self.path / "cpuinfo_cur_freq")

    def target_khz(self, freq_hz: float) -> int:
        """The next available step ≥ ``freq_hz`` (the top step when above all)."""
        want = freq_hz / 1000.0
        if self.steps_khz:
            above = [s for s in self.steps_khz if s >= want - 0.5]
            return above[0] if above else self.steps_khz[-1]
        return int(min(max(want, self.min_khz), self.max_khz))


@dataclass
class CpuFreqReading:
    """``freq_hz``: CPU-count-weighted mean over policies (None: unknown)."""

    freq_hz: Optional[float]
    per_policy_hz: Dict[str, float] = field(default_factory=dict)
    source: str = "none"


@dataclass
class DvfsResult:
    """Outcome of :meth:`CpuFreq.apply`: ``applied`` or the ``reason`` why not."""

    applied: bool
    reason: str = ""
    requested_hz: Optional[float] = None
    freq_hz: Optional[float] = None

    def __str__(self) -> str:
        if self.applied:
            return f"dvfs: clamped to {self.freq_hz / 1e6:.0f} MHz" if self.freq_hz else "dvfs: ok"
        return f"dvfs: unavailable ({self.reason})"


def _cpus(text: Optional[str]) -> List[int]:
    out: List[int] = []
    for part in (text or "").replace(",", " ").split():
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def discover_policies(sysfs_root: Path) -> List[Policy]:
    base = under(sysfs_root, CPUFREQ_DIR)
    if not base.is_dir():
        return []
    pols = []
    for p in sorted(base.iterdir(), key=lambda x: x.name):
        m = re.fullmatch(r"policy(\d+)", p.name)
        if not m or not (p / "scaling_max_freq").exists():
            continue
        steps = sorted(
            {int(s) for s in (read_opt_text(p / "scaling_available_frequencies") or "").split()}
        )
        cpus = _cpus(read_opt_text(p / "affected_cpus") or read_opt_text(p / "related_cpus"))
        pols.append(
            Policy(
                path=p,
                cpus=cpus or [int(m.group(1))],
                steps_khz=steps,
                min_khz=read_int(p / "cpuinfo_min_freq"),
                max_khz=read_int(p / "cpuinfo_max_freq"),
                governor=read_opt_text(p / "scaling_governor"),
            )
        )
    return pols


class CpuFreq:
    """CPU frequency of this board, and DVFS where the OS allows it."""

    def __init__(self, sysfs_root: Path = Path("/"), use_psutil: bool = True) -> None:
        self.sysfs_root = Path(sysfs_root)
        self.policies = discover_policies(self.sysfs_root)
        self._use_psutil = use_psutil and not self.policies
        self._saved: Dict[str, Tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._prev_handler: Any = None
        self._guarded = False
        self._psutil_range: Tuple[Optional[float], Optional[float]] = (None, None)
        if self._use_psutil:
            self._psutil_range = self._psutil_min_max()

    # -- reading ---------------------------------------------------------------------
    @staticmethod
    def _psutil_freq() -> Any:
        import psutil

        try:
            return psutil.cpu_freq()
        except (OSError, NotImplementedError, AttributeError):  # absent on some platforms
            return None

    def _psutil_min_max(self) -> Tuple[Optional[float], Optional[float]]:
        f = self._psutil_freq()
        if f is None:
            return None, None
        lo = f.min * 1e6 if f.min else None
        hi = f.max * 1e6 if f.max else None
        return lo, hi

    def read(self) -> CpuFreqReading:
        if self.policies:
            per = {p.name: p.cur_khz() * 1000.0 for p in self.policies}
            n = sum(len(p.cpus) for p in self.policies)
            mean = sum(per[p.name] * len(p.cpus) for p in self.policies) / n
            return CpuFreqReading(mean, per, "sysfs")
        if self._use_psutil:
            f = self._psutil_freq()
            if f is not None and f.current:
                return CpuFreqReading(f.current * 1e6, {}, "psutil")
        return CpuFreqReading(None, {}, "none")

    @property
    def steps_hz(self) -> List[float]:
        """Available steps (union over policies); one value where no steps are known."""
        steps = sorted({s * 1000.0 for p in self.policies for s in p.steps_khz})
        if steps:
            return steps
        if self.max_hz is not None:
            return [self.max_hz]
        cur = self.read().freq_hz
        return [cur] if cur else []

    @property
    def min_hz(self) -> Optional[float]:
        if self.policies:
            return min(p.min_khz for p in self.policies) * 1000.0
        return self._psutil_range[0]

    @property
    def max_hz(self) -> Optional[float]:
        if self.policies:
            return max(p.max_khz for p in self.policies) * 1000.0
        return self._psutil_range[1]

    @property
    def governors(self) -> Dict[str, Optional[str]]:
        return {p.name: p.governor for p in self.policies}

    # -- DVFS ------------------------------------------------------------------------
    def dvfs_status(self) -> DvfsResult:
        """Can :meth:`apply` work here? (``applied`` means "possible"; nothing is written.)"""
        if not self.policies:
            return DvfsResult(False, f"no cpufreq policies under {CPUFREQ_DIR}")
        for p in self.policies:
            f = p.path / "scaling_max_freq"
            if not os.access(f, os.W_OK):
                who = "not root" if os.geteuid() != 0 else "read-only (firmware-managed)"
                return DvfsResult(False, f"{p.name}/scaling_max_freq not writable: {who}")
        return DvfsResult(True, "scaling_max_freq writable")

    def apply(self, freq_hz: float) -> DvfsResult:
        """Clamp every policy to the next step ≥ ``freq_hz``; originals are saved once."""
        status = self.dvfs_status()
        if not status.applied:
            return DvfsResult(False, status.reason, requested_hz=freq_hz)
        applied: List[float] = []
        with self._lock:
            try:
                for p in self.policies:
                    cur_min = read_int(p.path / "scaling_min_freq")
                    cur_max = read_int(p.path / "scaling_max_freq")
                    if p.name not in self._saved:
                        self._saved[p.name] = (cur_min, cur_max)
                    orig_min, _ = self._saved[p.name]
                    target = p.target_khz(freq_hz)
                    new_min = min(orig_min, target)
                    if target >= cur_max:
                        write_text(p.path / "scaling_max_freq", str(target))
                        write_text(p.path / "scaling_min_freq", str(new_min))
                    else:
                        write_text(p.path / "scaling_min_freq", str(new_min))
                        write_text(p.path / "scaling_max_freq", str(target))
                    applied.append(target * 1000.0)
            except SensingError as e:
                self._restore_locked()
                return DvfsResult(False, f"write failed: {e}", requested_hz=freq_hz)
        self._install_guards()
        return DvfsResult(True, "clamped scaling_max_freq", freq_hz, max(applied))

    def restore(self) -> None:
        """Write back the original limits (idempotent) and remove the SIGTERM guard."""
        with self._lock:
            self._restore_locked()
        self._remove_guards()

    def _restore_locked(self) -> None:
        errors = []
        for p in self.policies:
            saved = self._saved.get(p.name)
            if saved is None:
                continue
            orig_min, orig_max = saved
            try:
                write_text(p.path / "scaling_max_freq", str(orig_max))
                write_text(p.path / "scaling_min_freq", str(orig_min))
                del self._saved[p.name]
            except SensingError as e:
                errors.append(f"{p.name}: {e}")
        if errors:
            log.error("could not restore cpufreq limits: %s", "; ".join(errors))

    @property
    def clamped(self) -> bool:
        return bool(self._saved)

    # -- exit guards -----------------------------------------------------------------
    def _install_guards(self) -> None:
        if self._guarded:
            return
        atexit.register(self._atexit)
        self._guarded = True
        try:
            self._prev_handler = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: atexit still restores on a clean exit
            log.warning("DVFS applied off the main thread: no SIGTERM restore guard")
            self._prev_handler = None

    def _remove_guards(self) -> None:
        if not self._guarded:
            return
        atexit.unregister(self._atexit)
        self._guarded = False
        try:
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(
                    signal.SIGTERM,
                    self._prev_handler if self._prev_handler is not None else signal.SIG_DFL,
                )
        except ValueError:
            pass

    def _atexit(self) -> None:
        with self._lock:
            self._restore_locked()

    def _on_sigterm(self, signum: int, frame: Optional[FrameType]) -> None:
        prev = self._prev_handler
        self.restore()
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_IGN:
            return
        else:  # SIG_DFL (or unknown): die the way SIGTERM would have killed us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
