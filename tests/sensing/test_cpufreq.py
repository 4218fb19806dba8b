"""cpufreq reading, DVFS apply/restore on a writable copy, SIGTERM and psutil fallbacks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, List

import pytest

from edge_agent.sensing import CpuFreq

from .conftest import FIXTURES

POL = "sys/devices/system/cpu/cpufreq"


def limits(root: Path, pol: str = "policy0") -> List[int]:
    d = root / POL / pol
    return [int((d / f).read_text()) for f in ("scaling_min_freq", "scaling_max_freq")]


def test_reads_policies_steps_and_governor() -> None:
    cpu = CpuFreq(FIXTURES / "orin_nano_jp6")
    assert [p.name for p in cpu.policies] == ["policy0", "policy4"]
    assert cpu.policies[1].cpus == [4, 5]
    assert cpu.min_hz == 115200e3 and cpu.max_hz == 1510400e3
    assert cpu.steps_hz[0] == 115200e3 and len(cpu.steps_hz) == 20
    assert cpu.governors == {"policy0": "schedutil", "policy4": "schedutil"}
    r = cpu.read()
    assert r.source == "sysfs" and r.per_policy_hz["policy4"] == 729600e3


def test_apply_clamps_to_next_step_and_restore_puts_back(tree: Any) -> None:
    root = tree("orin_nano_jp6")
    cpu = CpuFreq(root)
    before = limits(root)
    res = cpu.apply(1.0e9)
    assert res.applied, res.reason
    assert res.freq_hz == 1036800e3  # next step >= 1.0 GHz
    assert limits(root) == [115200, 1036800]
    assert limits(root, "policy4") == [115200, 1036800]
    assert cpu.clamped
    cpu.apply(2.0e9)  # above all steps: the top step
    assert limits(root) == [115200, 1510400]
    cpu.restore()
    assert limits(root) == before and not cpu.clamped
    cpu.restore()  # idempotent
    assert limits(root) == before


def test_apply_below_scaling_min_lowers_min_first(tree: Any) -> None:
    root = tree("rpi5")
    (root / POL / "policy0" / "scaling_min_freq").write_text("2000000\n")
    cpu = CpuFreq(root)
    res = cpu.apply(1.5e9)
    assert res.applied
    assert limits(root) == [1500000, 1500000]
    cpu.restore()
    assert limits(root) == [2000000, 2400000]


def test_bare_machine_reports_dvfs_unavailable() -> None:
    cpu = CpuFreq(FIXTURES / "bare")
    res = cpu.apply(1e9)
    assert not res.applied
    assert str(res).startswith("dvfs: unavailable (no cpufreq policies")


@pytest.mark.parametrize("value", [None, "zeros"])
def test_psutil_fallback_handles_none_and_zero_ranges(
    monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    import psutil

    fake = None if value is None else SimpleNamespace(current=1800.0, min=0.0, max=0.0)
    monkeypatch.setattr(psutil, "cpu_freq", lambda: fake)
    cpu = CpuFreq(FIXTURES / "bare", use_psutil=True)
    r = cpu.read()
    assert cpu.min_hz is None and cpu.max_hz is None
    if value is None:
        assert r.freq_hz is None and r.source == "none" and cpu.steps_hz == []
    else:
        assert r.freq_hz == 1.8e9 and r.source == "psutil" and cpu.steps_hz == [1.8e9]


def test_a_copied_tree_never_reads_the_hosts_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    def host(*_: Any) -> Any:
        raise AssertionError("psutil.cpu_freq describes this host, not the copied board")

    monkeypatch.setattr(psutil, "cpu_freq", host)
    cpu = CpuFreq(FIXTURES / "bare")
    r = cpu.read()
    assert r.freq_hz is None and r.source == "none" and cpu.steps_hz == []
    assert cpu.min_hz is None and cpu.max_hz is None
