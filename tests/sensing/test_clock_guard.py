"""The restore guard both compute clocks share (edge_agent/sensing/clock.py): a SIGTERM
restores the clamped limits then runs the previous handler, and so does interpreter exit, for
the CPU's cpufreq policies and the Jetson GPU's devfreq node alike. (A SIGTERM landing inside
``apply()`` itself is test_dvfs_signal.py's, with a real process.)"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from edge_agent.sensing import ComputeClock, CpuFreq, GpuFreq

CPU_LIMITS = ("sys/devices/system/cpu/cpufreq/policy8", "scaling_min_freq", "scaling_max_freq")
GPU_LIMITS = ("sys/class/devfreq/17000000.gv11b", "min_freq", "max_freq")


def limits(root: Path, where: Tuple[str, str, str]) -> List[int]:
    d, lo, hi = where
    return [int((root / d / f).read_text()) for f in (lo, hi)]


@pytest.mark.parametrize(
    ("tree_name", "make", "where", "request_hz", "clamped", "original"),
    [
        ("agx_orin", CpuFreq, CPU_LIMITS, 800e6, [115200, 1036800], [115200, 2201600]),
        ("xavier_nx_jp5", GpuFreq, GPU_LIMITS, 600e6, [114750000, 701250000],
         [114750000, 1109250000]),
    ],
)  # fmt: skip
def test_sigterm_and_exit_restore_the_clamp_and_chain(
    tree: Callable[[str], Path],
    tree_name: str,
    make: Callable[[Path], ComputeClock],
    where: Tuple[str, str, str],
    request_hz: float,
    clamped: List[int],
    original: List[int],
) -> None:
    root = tree(tree_name)
    seen: List[int] = []
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        clock = make(root)
        assert clock.apply(request_hz).applied
        assert limits(root, where) == clamped
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
        assert limits(root, where) == original and seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) != handler  # the guard is removed
        assert clock.apply(request_hz).applied
        clock._atexit()  # what interpreter exit runs
        assert limits(root, where) == original and not clock.clamped
        clock.restore()
    finally:
        signal.signal(signal.SIGTERM, before)
