"""CPU frequency: read per cpufreq policy, and DVFS by clamping the policy's limits.

Layout (kHz everywhere in sysfs; Hz everywhere in our API)::

    /sys/devices/system/cpu/cpufreq/policyN/
        affected_cpus / related_cpus        CPUs in the policy
        scaling_cur_freq                    current frequency, kHz
        scaling_available_frequencies       steps, kHz (absent with intel_pstate: a range)
        cpuinfo_min_freq / cpuinfo_max_freq hardware range, kHz
        scaling_min_freq / scaling_max_freq the governor's limits, kHz (root writes)
        scaling_governor

An **inactive** policy is one whose CPUs are all offline (a Jetson nvpmodel mode takes a
cluster offline: Orin Nano 7 W runs 4 of 6 cores). The kernel keeps its folder and answers
every read with EBUSY; such a policy is listed in :attr:`CpuFreq.inactive` with the reason
and left out of the frequency model (reading, steps, range, DVFS). A policy that goes
offline mid-run is skipped from then on.

Where sysfs has no cpufreq (VMs, containers) ``psutil.cpu_freq()`` is the fallback; it
returns None on some ARM VMs and min = max = 0 on others, both handled. Under another sysfs
root (a copied tree) psutil is never asked: it would describe this host, not that board.

DVFS: :meth:`CpuFreq.apply` clamps ``scaling_max_freq`` (and ``scaling_min_freq`` when it
lies above the target) to the next available step ≥ the request; the originals come back on
:meth:`CpuFreq.restore`, at exit and on SIGTERM (the signal-safe guard of
:class:`~edge_agent.sensing.clock.ComputeClock`, shared with the GPU's devfreq clock).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .clock import ComputeClock, DvfsResult, next_step, write_limits
from .errors import SensingError, SensorBusy
from .sysfs import read_int, read_opt_text, under, write_text

__all__ = ["CPUFREQ_DIR", "CpuFreq", "CpuFreqReading", "DvfsResult", "Policy"]

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
        return next_step(self.steps_khz, freq_hz / 1000.0, self.min_khz, self.max_khz)


@dataclass
class CpuFreqReading:
    """``freq_hz``: CPU-count-weighted mean over policies (None: unknown)."""

    freq_hz: Optional[float]
    per_policy_hz: Dict[str, float] = field(default_factory=dict)
    source: str = "none"


def _cpus(text: Optional[str]) -> List[int]:
    out: List[int] = []
    for part in (text or "").replace(",", " ").split():
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


@dataclass
class InactivePolicy:
    """A policy the kernel keeps but answers with EBUSY: its CPUs are offline."""

    name: str
    reason: str


def _read_policy(p: Path, number: int) -> Policy:
    steps = sorted(
        {int(s) for s in (read_opt_text(p / "scaling_available_frequencies") or "").split()}
    )
    affected = read_opt_text(p / "affected_cpus")
    if affected is not None and not affected.strip():
        raise SensorBusy(f"{p}/affected_cpus: empty (no online CPU in this policy)")
    cpus = _cpus(affected or read_opt_text(p / "related_cpus"))
    return Policy(
        path=p,
        cpus=cpus or [number],
        steps_khz=steps,
        min_khz=read_int(p / "cpuinfo_min_freq"),
        max_khz=read_int(p / "cpuinfo_max_freq"),
        governor=read_opt_text(p / "scaling_governor"),
    )


def discover_policies(sysfs_root: Path) -> Tuple[List[Policy], List[InactivePolicy]]:
    """Active policies, and the inactive ones with the reason (offline CPUs)."""
    base = under(sysfs_root, CPUFREQ_DIR)
    if not base.is_dir():
        return [], []
    offline = read_opt_text(under(sysfs_root, "/sys/devices/system/cpu/offline")) or ""
    pols: List[Policy] = []
    inactive: List[InactivePolicy] = []
    for p in sorted(base.iterdir(), key=lambda x: x.name):
        m = re.fullmatch(r"policy(\d+)", p.name)
        if not m or not (p / "scaling_max_freq").exists():
            continue
        try:
            pols.append(_read_policy(p, int(m.group(1))))
        except SensorBusy:
            where = f"; offline CPUs: {offline}" if offline.strip() else ""
            inactive.append(
                InactivePolicy(
                    p.name,
                    f"inactive: the kernel answers EBUSY, its CPUs are offline "
                    f"(e.g. an nvpmodel power mode){where}",
                )
            )
    return pols, inactive


class CpuFreq(ComputeClock):
    """CPU frequency of this board, and DVFS where the OS allows it."""

    name = "cpufreq"
    clamp_note = "clamped scaling_max_freq"
    nothing_note = "every policy went inactive"

    def __init__(self, sysfs_root: Path = Path("/"), use_psutil: Optional[bool] = None) -> None:
        """``use_psutil``: ask psutil where sysfs has no cpufreq; by default only for the
        real root (under a copied tree psutil would describe this host)."""
        super().__init__()
        self.sysfs_root = Path(sysfs_root)
        self.policies, self.inactive = discover_policies(self.sysfs_root)
        if use_psutil is None:
            use_psutil = self.sysfs_root == Path("/")
        self._use_psutil = use_psutil and not self.policies and not self.inactive
        self._saved: Dict[str, Tuple[int, int]] = {}
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
            per: Dict[str, float] = {}
            for p in list(self.policies):
                try:
                    per[p.name] = p.cur_khz() * 1000.0
                except SensorBusy as e:  # its cluster went offline mid-run: leave it out
                    self._deactivate(p, str(e))
            live = [p for p in self.policies if p.name in per]
            if live:
                n = sum(len(p.cpus) for p in live)
                mean = sum(per[p.name] * len(p.cpus) for p in live) / n
                return CpuFreqReading(mean, per, "sysfs")
            return CpuFreqReading(None, {}, "none")
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

    def _deactivate(self, policy: Policy, reason: str) -> None:
        log.warning("cpufreq %s went inactive (%s): left out from now on", policy.name, reason)
        self.policies = [p for p in self.policies if p is not policy]
        self.inactive.append(InactivePolicy(policy.name, f"inactive since start-up: {reason}"))

    # -- DVFS ------------------------------------------------------------------------
    def dvfs_status(self) -> DvfsResult:
        if not self.policies:
            why = "no cpufreq policies"
            if self.inactive:
                why = "no active cpufreq policy (CPUs offline)"
            return DvfsResult(False, f"{why} under {CPUFREQ_DIR}")
        for p in self.policies:
            f = p.path / "scaling_max_freq"
            if not os.access(f, os.W_OK):
                who = "not root" if os.geteuid() != 0 else "read-only (firmware-managed)"
                return DvfsResult(False, f"{p.name}/scaling_max_freq not writable: {who}")
        return DvfsResult(True, "scaling_max_freq writable")

    def _clamp_locked(self, freq_hz: float) -> Optional[float]:
        """Clamp every active policy; the highest step written (Hz), None if none was."""
        applied = [t for t in (self._clamp(p, freq_hz) for p in list(self.policies)) if t]
        return max(applied) * 1000.0 if applied else None

    def _clamp(self, p: Policy, freq_hz: float) -> Optional[int]:
        """Write one policy's limits (lock held); None when it went inactive meanwhile."""
        try:
            cur_min = read_int(p.path / "scaling_min_freq")
            cur_max = read_int(p.path / "scaling_max_freq")
        except SensorBusy as e:
            self._deactivate(p, str(e))
            return None
        if p.name not in self._saved:
            self._saved[p.name] = (cur_min, cur_max)
        orig_min, _ = self._saved[p.name]
        target = p.target_khz(freq_hz)
        write_limits(
            p.path / "scaling_min_freq",
            p.path / "scaling_max_freq",
            min(orig_min, target),
            target,
            cur_max,
        )
        return target

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
            except SensorBusy:  # offline now: the kernel resets it when the CPUs return
                del self._saved[p.name]
            except SensingError as e:
                errors.append(f"{p.name}: {e}")
        if errors:
            log.error("could not restore cpufreq limits: %s", "; ".join(errors))

    @property
    def clamped(self) -> bool:
        return bool(self._saved)
