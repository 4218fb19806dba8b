"""The Jetson GPU clock through devfreq: discovery on four real layouts, probe, a monitor window
with the GPU as the compute clock, and DVFS apply/restore in an order the kernel accepts (the
signal-safe restore, shared with cpufreq, is in test_clock_guard.py).

The trees (``fixtures/``, sources in fixtures/README.md) hold the GPU's devfreq node as it is
named on each module and JetPack: Orin on JetPack 6 (``17000000.gpu``), AGX Orin on JetPack 5
(``17000000.ga10b``), Xavier NX (``17000000.gv11b``) and Nano on JetPack 4 (``57000000.gpu``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from edge_agent.cli import main
from edge_agent.sensing import GpuFreq, PowerMonitor, SensingConfig, detect_power_source
from edge_agent.sensing import clock as clock_mod

from .conftest import FIXTURES, FakeClock

DEVFREQ = "sys/class/devfreq"

# tree, node, device-tree name, steps, lowest and highest step (Hz), cur_freq (Hz)
LAYOUTS: List[Tuple[str, str, str, int, float, float, float]] = [
    ("orin_nano_jp6", "17000000.gpu", "gpu", 8, 306e6, 1020e6, 612e6),
    ("agx_orin", "17000000.ga10b", "ga10b", 13, 114.75e6, 1300.5e6, 1300.5e6),
    ("xavier_nx_jp5", "17000000.gv11b", "gv11b", 15, 114.75e6, 1109.25e6, 114.75e6),
    ("nano_jp4", "57000000.gpu", "gpu", 12, 76.8e6, 921.6e6, 76.8e6),
]


def limits(root: Path, node: str) -> List[int]:
    d = root / DEVFREQ / node
    return [int((d / f).read_text()) for f in ("min_freq", "max_freq")]


@pytest.mark.parametrize(("tree_name", "node", "kind", "n", "lo", "hi", "cur"), LAYOUTS)
def test_each_layout_is_found_read_and_probed(
    tree_name: str,
    node: str,
    kind: str,
    n: int,
    lo: float,
    hi: float,
    cur: float,
    capsys: pytest.CaptureFixture,
) -> None:
    root = FIXTURES / tree_name
    gpu = GpuFreq(root)
    assert gpu.node is not None and (gpu.node.name, gpu.node.kind) == (node, kind)
    assert len(gpu.steps_hz) == n and gpu.steps_hz == sorted(gpu.steps_hz)
    assert (gpu.min_hz, gpu.max_hz) == (lo, hi)
    r = gpu.read()
    assert (r.freq_hz, r.source) == (cur, "gpu-devfreq")

    assert main(["probe", "--json", "--sysfs-root", str(root)]) == 0
    rep: Dict[str, Any] = json.loads(capsys.readouterr().out)
    g = rep["gpu"]
    assert g["found"] and g["node"] == node and g["kind"] == kind
    assert (g["freq_hz"], g["min_hz"], g["max_hz"]) == (cur, lo, hi)
    assert g["dvfs"]["available"]  # root here: the tree's max_freq is writable
    assert rep["torch"]["importable"] and "distributed" in rep["torch"]


@pytest.mark.parametrize(("tree_name", "node"), [(t[0], t[1]) for t in LAYOUTS])
def test_a_window_with_the_gpu_as_compute_clock_reports_the_gpu_frequency(
    tree: Callable[[str], Path], tree_name: str, node: str
) -> None:
    root = tree(tree_name)
    cur = root / DEVFREQ / node / "cur_freq"
    gpu = GpuFreq(root)
    lo, hi = gpu.steps_hz[0], gpu.steps_hz[-1]
    cur.write_text(f"{int(lo)}\n")
    clock = FakeClock()
    mon = PowerMonitor(detect_power_source(SensingConfig(), root), gpu, clock=clock)
    mon.begin_window("compute")
    for i in range(20):  # 2 s at 10 Hz; the governor raises the clock after 0.9 s
        clock.advance(0.1)
        if i == 9:
            cur.write_text(f"{int(hi)}\n")
        mon.sample_now()
    w = mon.end_window("compute")
    # time-weighted (trapezoid): 0.95 s at the lowest step, 1.05 s at the top one
    assert w.mean_freq_hz == pytest.approx(0.475 * lo + 0.525 * hi)
    assert w.energy_j > 0 and w.source.startswith("ina3221") == (tree_name != "xavier_nx_jp5")


def test_probe_text_shows_the_gpu_its_range_and_dvfs(capsys: pytest.CaptureFixture) -> None:
    assert main(["probe", "--sysfs-root", str(FIXTURES / "nano_jp4")]) == 0
    out = capsys.readouterr().out
    assert "gpu:     57000000.gpu (gpu) 77 MHz now, range 77 MHz .. 922 MHz" in out
    assert "  dvfs:  available (max_freq writable)" in out
    assert "gpu rail: 6-0040:POM_5V_GPU (GPU)" in out
    assert "torch.distributed:" in out and "device auto -> " in out


def test_a_board_without_a_gpu_node_says_why(capsys: pytest.CaptureFixture) -> None:
    gpu = GpuFreq(FIXTURES / "rpi5")
    assert not gpu.found and gpu.read().freq_hz is None and gpu.steps_hz == []
    res = gpu.apply(500e6)
    assert not res.applied and "no Jetson GPU devfreq node" in res.reason
    assert main(["probe", "--json", "--sysfs-root", str(FIXTURES / "rpi5")]) == 0
    g = json.loads(capsys.readouterr().out)["gpu"]
    assert not g["found"] and "discrete GPU" in g["reason"]


def test_other_devfreq_nodes_are_not_taken_for_the_gpu(tmp_path: Path) -> None:
    # Synthetic: a memory-controller node listed before the GPU's (names made up for the test).
    base = tmp_path / DEVFREQ
    for node, dt_name, freq in [("13000000.mc", "memory-controller", 204e6), ("57000000.gpu",
                                "gpu", 76.8e6)]:  # fmt: skip
        (base / node / "device" / "of_node").mkdir(parents=True)
        (base / node / "device" / "of_node" / "name").write_text(dt_name + "\n")
        (base / node / "cur_freq").write_text(f"{int(freq)}\n")
    gpu = GpuFreq(tmp_path)
    assert gpu.node is not None and gpu.node.name == "57000000.gpu"
    assert gpu.read().freq_hz == 76.8e6


def _kernel_order_seam(monkeypatch: pytest.MonkeyPatch, node_dir: Path) -> List[str]:
    """Refuse, as the kernel's devfreq does, a write that would leave min_freq > max_freq."""
    real = clock_mod.write_text
    writes: List[str] = []

    def checked(path: Path, value: str) -> None:
        lo = int((node_dir / "min_freq").read_text())
        hi = int((node_dir / "max_freq").read_text())
        v = int(value)
        if (path.name == "max_freq" and v < lo) or (path.name == "min_freq" and v > hi):
            raise AssertionError(f"{path.name}={v} with limits [{lo}, {hi}]: EINVAL on a board")
        writes.append(f"{path.name}={v}")
        real(path, value)

    monkeypatch.setattr(clock_mod, "write_text", checked)
    return writes


def test_apply_clamps_to_the_next_step_and_restore_puts_back(
    tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree("orin_nano_jp6")
    node = "17000000.gpu"
    writes = _kernel_order_seam(monkeypatch, root / DEVFREQ / node)
    gpu = GpuFreq(root)
    res = gpu.apply(500e6)
    assert res.applied and res.freq_hz == 510e6, res
    assert limits(root, node) == [306000000, 510000000] and gpu.clamped
    assert gpu.apply(2e9).freq_hz == 1020e6  # above every step: the top step
    assert limits(root, node) == [306000000, 1020000000]
    gpu.restore()
    assert limits(root, node) == [306000000, 1020000000] and not gpu.clamped
    assert writes[:2] == ["min_freq=306000000", "max_freq=510000000"]


def test_apply_below_a_raised_min_lowers_min_first_and_restores_it(
    tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree("agx_orin")
    node = "17000000.ga10b"
    (root / DEVFREQ / node / "min_freq").write_text("624750000\n")  # e.g. a pinned floor
    writes = _kernel_order_seam(monkeypatch, root / DEVFREQ / node)
    gpu = GpuFreq(root)
    assert gpu.apply(300e6).freq_hz == 318.75e6
    assert limits(root, node) == [318750000, 318750000]
    gpu.restore()
    assert limits(root, node) == [624750000, 1300500000]
    assert writes == [
        "min_freq=318750000",
        "max_freq=318750000",
        "max_freq=1300500000",
        "min_freq=624750000",
    ]


def test_dvfs_unavailable_when_max_freq_is_not_writable(
    tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.sensing import devfreq

    root = tree("nano_jp4")
    monkeypatch.setattr(devfreq.os, "access", lambda *_: False)
    monkeypatch.setattr(devfreq.os, "geteuid", lambda: 1000)
    gpu = GpuFreq(root)
    res = gpu.apply(500e6)
    assert not res.applied and res.reason == "57000000.gpu/max_freq not writable: not root"
    assert limits(root, "57000000.gpu") == [76800000, 921600000]
