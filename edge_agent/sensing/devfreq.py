"""The Jetson GPU clock: its devfreq node, read and clamped like the CPU's cpufreq policies.

Where it is (discovered, never hard-coded: the name differs by module and JetPack)::

    /sys/class/devfreq/<node>/            a link to .../<node>/devfreq/<node>/
        cur_freq                          current frequency, Hz
        available_frequencies             the steps, Hz (ascending)
        min_freq / max_freq               the governor's limits, Hz (root writes)
        governor                          e.g. nvhost_podgov
        device/of_node/name               the device-tree node: gpu, ga10b, gv11b, gp10b

    Orin, JetPack 6      17000000.gpu     (/sys/devices/platform/bus@0/17000000.gpu/...)
    Orin, JetPack 5      17000000.ga10b   (/sys/devices/17000000.ga10b/...)
    Xavier (NX and AGX)  17000000.gv11b   (/sys/devices/gpu.0/... or /sys/devices/17000000.gv11b/)
    TX2                  17000000.gp10b
    Nano, JetPack 4      57000000.gpu     (/sys/devices/57000000.gpu/...)

A node is the GPU when its device-tree node name is one of :data:`GPU_NODE_NAMES` (what
jetson-stats' ``jtop/core/gpu.py`` looks for); where ``of_node`` is missing the node's own
name suffix decides. Other devfreq nodes (the memory controller ``17000000.emc`` …) are not
the GPU. Sources for the layouts and values of the test trees: tests/sensing/fixtures/
README.md.

DVFS: :meth:`GpuFreq.apply` sets ``max_freq`` to the next available step ≥ the request and
lowers ``min_freq`` when it lies above it, in the order the kernel accepts; the originals come
back on :meth:`GpuFreq.restore`, at exit and on SIGTERM (the guard of
:class:`~edge_agent.sensing.clock.ComputeClock`). nvpmodel's own caps still apply on top.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from .clock import ComputeClock, DvfsResult, next_step, write_limits
from .errors import SensingError
from .sysfs import read_int, read_opt_text, under

log = logging.getLogger(__name__)

DEVFREQ_DIR = "/sys/class/devfreq"
#: Device-tree node names of the Jetson integrated GPUs (Ampere, Volta, Pascal, Maxwell).
GPU_NODE_NAMES = ("gpu", "ga10b", "gv11b", "gp10b", "gm20b")
CLOCK_NAME = "gpu-devfreq"


@dataclass
class GpuNode:
    """The GPU's devfreq node: ``name`` (e.g. 17000000.gpu), its device-tree ``kind``."""

    path: Path
    name: str
    kind: str
    steps_hz: List[int]
    governor: Optional[str]


@dataclass
class GpuFreqReading:
    """``freq_hz``: the GPU's current clock (None: unknown); ``source`` "gpu-devfreq"."""

    freq_hz: Optional[float]
    source: str = "none"


def _kind(node: Path) -> str:
    named = read_opt_text(node / "device" / "of_node" / "name")
    if named is not None:
        return named.strip()
    m = re.fullmatch(r"[0-9a-f]+\.(\w+)", node.name)
    return m.group(1) if m else ""


def discover_gpu(sysfs_root: Path) -> Optional[GpuNode]:
    """The first devfreq node whose device is a Jetson GPU, or None."""
    base = under(sysfs_root, DEVFREQ_DIR)
    if not base.is_dir():
        return None
    for node in sorted(base.iterdir(), key=lambda p: p.name):
        kind = _kind(node)
        if kind not in GPU_NODE_NAMES or not (node / "cur_freq").exists():
            continue
        text = read_opt_text(node / "available_frequencies") or ""
        steps = sorted({int(s) for s in text.split() if s.isdigit()})
        return GpuNode(node, node.name, kind, steps, read_opt_text(node / "governor"))
    return None


class GpuFreq(ComputeClock):
    """The Jetson GPU's clock through devfreq, and DVFS on it where the OS allows."""

    name = CLOCK_NAME
    clamp_note = "clamped the GPU's devfreq max_freq"

    def __init__(self, sysfs_root: Path = Path("/")) -> None:
        super().__init__()
        self.sysfs_root = Path(sysfs_root)
        self.node = discover_gpu(self.sysfs_root)
        self._saved: Optional[Tuple[int, int]] = None
        self._limits = (0, 0)
        if self.node is not None:
            lo = read_opt_text(self.node.path / "min_freq")
            hi = read_opt_text(self.node.path / "max_freq")
            self._limits = (int(lo) if lo else 0, int(hi) if hi else 0)

    @property
    def found(self) -> bool:
        return self.node is not None

    @property
    def missing_reason(self) -> str:
        return (
            f"no Jetson GPU devfreq node under {DEVFREQ_DIR} (looked for device-tree names "
            f"{', '.join(GPU_NODE_NAMES)}): not a Jetson, or a discrete GPU whose clock the "
            "agent does not manage"
        )

    def read(self) -> GpuFreqReading:
        if self.node is None:
            return GpuFreqReading(None, "none")
        return GpuFreqReading(float(read_int(self.node.path / "cur_freq")), CLOCK_NAME)

    @property
    def steps_hz(self) -> List[float]:
        if self.node is not None and self.node.steps_hz:
            return [float(s) for s in self.node.steps_hz]
        return [self.max_hz] if self.max_hz else []

    @property
    def min_hz(self) -> Optional[float]:
        """The lowest step (the hardware's floor, not today's ``min_freq`` limit)."""
        if self.node is None:
            return None
        if self.node.steps_hz:
            return float(self.node.steps_hz[0])
        return float(self._limits[0]) or None

    @property
    def max_hz(self) -> Optional[float]:
        """The highest step (nvpmodel may cap ``max_freq`` lower; a clamp writes within it)."""
        if self.node is None:
            return None
        if self.node.steps_hz:
            return float(self.node.steps_hz[-1])
        return float(self._limits[1]) or None

    # -- DVFS ------------------------------------------------------------------------
    def dvfs_status(self) -> DvfsResult:
        if self.node is None:
            return DvfsResult(False, self.missing_reason)
        f = self.node.path / "max_freq"
        if not os.access(f, os.W_OK):
            who = "not root" if os.geteuid() != 0 else "read-only"
            return DvfsResult(False, f"{self.node.name}/max_freq not writable: {who}")
        return DvfsResult(True, f"{self.node.name}/max_freq writable")

    def _clamp_locked(self, freq_hz: float) -> Optional[float]:
        assert self.node is not None  # dvfs_status said so
        path = self.node.path
        cur_min, cur_max = read_int(path / "min_freq"), read_int(path / "max_freq")
        if self._saved is None:
            self._saved = (cur_min, cur_max)
        lo, hi = self._limits
        target = next_step(self.node.steps_hz, freq_hz, lo, hi)
        new_min = min(self._saved[0], target)
        write_limits(path / "min_freq", path / "max_freq", new_min, target, cur_max)
        return float(target)

    def _restore_locked(self) -> None:
        if self._saved is None or self.node is None:
            return
        orig_min, orig_max = self._saved
        path = self.node.path
        try:
            cur_max = read_int(path / "max_freq")
            write_limits(path / "min_freq", path / "max_freq", orig_min, orig_max, cur_max)
            self._saved = None
        except SensingError as e:
            log.error("could not restore the GPU's devfreq limits: %s", e)

    @property
    def clamped(self) -> bool:
        return self._saved is not None
