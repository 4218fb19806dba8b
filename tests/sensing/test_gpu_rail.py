"""The GPU rail beside the total: which rail each Jetson layout has, integrated per window.

The module input rail (VDD_IN, POM_5V_IN) or the sum of rails stays the window's total; the
rail feeding the GPU is reported beside it, a part of it. On the Orin Nano the only GPU rail
is the combined CPU/GPU/CV one, and the window's rail name says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import pytest

from edge_agent.sensing import (
    PowerMonitor,
    PowerReading,
    SensingConfig,
    WindowResult,
    detect_power_source,
)
from edge_agent.sensing.rails import gpu_rail_of

from .conftest import FakeClock, ScriptedSource


def window(root: Path) -> WindowResult:
    clock = FakeClock()
    mon = PowerMonitor(detect_power_source(SensingConfig(), root), clock=clock)
    mon.begin_window("compute")
    for _ in range(20):
        clock.advance(0.1)
        mon.sample_now()
    return mon.end_window("compute")


@pytest.mark.parametrize(
    ("name", "rail", "rail_w", "total_w"),
    [
        # VDD_IN 5.0 V x 1132.544 mA; VDD_CPU_GPU_CV 1.61792 W (the tree's mV x mA)
        ("orin_nano_jp6", "VDD_CPU_GPU_CV (CPU, GPU and CV combined)", 1.61792, 5.66272),
        # AGX Orin: no VDD_IN, the total is the sum of the connected rails
        ("agx_orin", "VDD_GPU_SOC (GPU and SoC)", 3.20512, 8.2064),
        # Nano, JetPack 4 (ina3221x iio, in_powerN_input mW)
        ("nano_jp4", "POM_5V_GPU (GPU)", 0.039, 2.456),
    ],
)
def test_the_gpu_rail_is_reported_beside_the_total(
    tree: Callable[[str], Path], name: str, rail: str, rail_w: float, total_w: float
) -> None:
    w = window(tree(name))
    assert w.gpu_rail == rail
    assert w.energy_j == pytest.approx(total_w * 2.0)
    assert w.gpu_energy_j == pytest.approx(rail_w * 2.0)


def test_a_board_without_a_gpu_rail_reports_none(tree: Callable[[str], Path]) -> None:
    w = window(tree("rpi5"))
    assert w.gpu_energy_j is None and w.gpu_rail == ""


class RailScripted(ScriptedSource):
    """Scripted total powers (W), the GPU rail drawing half of each."""

    def __init__(self) -> None:
        super().__init__([10.0, 10.0, 12.0])
        self.gpu_rail = "0-0040:VDD_GPU"
        self.gpu_rail_covers = "GPU"

    def read(self) -> PowerReading:
        r = super().read()
        r.rails_w = {self.gpu_rail: r.power_w / 2.0}
        return r


def test_gpu_energy_follows_the_trapezoid_of_the_total() -> None:
    clock = FakeClock()
    mon = PowerMonitor(RailScripted(), clock=clock)
    mon.begin_window("compute")  # 10 W at t = 0
    clock.advance(1.0)
    mon.sample_now()  # 10 W
    clock.advance(1.0)
    w = mon.end_window("compute")  # 12 W
    assert w.energy_j == pytest.approx(10.0 + 11.0)
    assert w.gpu_energy_j == pytest.approx((10.0 + 11.0) / 2.0)
    assert w.gpu_rail == "VDD_GPU (GPU)"


@pytest.mark.parametrize(
    ("keys", "want"),
    [
        (["1-0040:VDD_IN", "1-0040:VDD_CPU_GPU_CV", "1-0040:VDD_SOC"], "1-0040:VDD_CPU_GPU_CV"),
        (["VDD_IN", "VDD_CPU", "VDD_GPU", "VDD_SOC"], "VDD_GPU"),  # TX2 in tegrastats / jtop
        (["GPU", "CPU", "SOC", "CV"], "GPU"),  # AGX Xavier
        (["VDD_GPU_SOC", "VDD_CPU_CV"], "VDD_GPU_SOC"),
        (["EXT5V", "VDD_CORE"], None),  # a Pi: no GPU rail
    ],
)
def test_gpu_rail_of_picks_the_rail_feeding_the_gpu(keys: list, want: Optional[str]) -> None:
    got = gpu_rail_of(keys)
    assert (got[0] if got else None) == want
