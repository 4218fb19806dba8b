"""Phases measured as windows of the member's own source, and the shared-host source."""

from __future__ import annotations

from typing import List

import pytest

from edge_agent.pool.meter import COMPUTE, EXCHANGE, PhaseMeter
from edge_agent.pool.shared_host import ProcessShareSource
from edge_agent.sensing import BOARD_CLASSES, PowerMonitor, SensingConfig


class Clock:
    """Deterministic time and CPU time the test advances."""

    def __init__(self) -> None:
        self.t = 100.0
        self.cpu = 5.0

    def wall(self) -> float:
        return self.t

    def cpu_s(self) -> float:
        return self.cpu

    def run(self, seconds: float, busy_cores: float) -> None:
        self.t += seconds
        self.cpu += seconds * busy_cores


def test_process_source_counts_this_process_cpu_time_on_the_board_model() -> None:
    c = Clock()
    board = BOARD_CLASSES["rpi4"]  # 2.3 W idle, 5.4 W with every core busy
    src = ProcessShareSource(board, cores=4, clock=c.wall, cpu_time=c.cpu_s)
    c.run(2.0, busy_cores=1.0)
    r = src.read()
    assert r.energy_j == pytest.approx(2.3 * 2.0 + (5.4 - 2.3) / 4 * 2.0)
    assert r.power_w == pytest.approx(2.3 + (5.4 - 2.3) / 4)
    assert src.estimated and "members share this host" in src.scope


def test_phases_are_windows_with_exact_edges_and_the_split_follows_the_cpu_time() -> None:
    c = Clock()
    board = BOARD_CLASSES["rpi4"]
    src = ProcessShareSource(board, cores=1, clock=c.wall, cpu_time=c.cpu_s)
    monitor = PowerMonitor(src, None, SensingConfig(), idle_power_w=board.idle_w, clock=c.wall)
    meter = PhaseMeter(monitor, clock=c.wall)
    for _ in range(3):  # not started: windows sample at their own edges only
        meter.switch(COMPUTE)
        c.run(0.2, busy_cores=1.0)
        meter.switch(EXCHANGE)
        c.run(0.05, busy_cores=0.0)  # waiting for a peer
    meter.sent(1000)
    meter.received(600)
    meter.stop()
    by = {w.name: w for w in meter.windows()}
    assert by[COMPUTE].duration_s == pytest.approx(0.6)
    assert by[COMPUTE].dynamic_energy_j == pytest.approx((5.4 - 2.3) * 0.6)
    assert by[EXCHANGE].duration_s == pytest.approx(0.15)
    assert by[EXCHANGE].dynamic_energy_j == pytest.approx(0.0, abs=1e-12)
    assert meter.seconds == pytest.approx({COMPUTE: 0.6, EXCHANGE: 0.15})
    assert (meter.bytes_sent, meter.bytes_received, meter.merged_s) == (1000, 600, 0.0)
    assert monitor.open_windows == {}


def test_a_slow_source_is_not_switched_faster_than_it_can_be_read() -> None:
    c = Clock()
    src = ProcessShareSource(BOARD_CLASSES["rpi5"], cores=1, clock=c.wall, cpu_time=c.cpu_s)
    src.min_period_s = 0.1  # as the Pi 5's PMIC (vcgencmd) demands
    monitor = PowerMonitor(src, None, SensingConfig(rate_hz=5), clock=c.wall)
    meter = PhaseMeter(monitor, clock=c.wall)
    phases: List[str] = [COMPUTE, EXCHANGE] * 5
    for p in phases:
        meter.switch(p)
        c.run(0.03, busy_cores=1.0 if p == COMPUTE else 0.0)
    meter.stop()
    total = sum(w.duration_s for w in meter.windows())
    assert total == pytest.approx(0.3)
    assert meter.merged_s > 0  # short exchanges stayed in the compute window, and say so
    assert meter.seconds[EXCHANGE] == pytest.approx(0.15)


def test_without_a_monitor_the_meter_keeps_times_and_bytes() -> None:
    c = Clock()
    meter = PhaseMeter(None, clock=c.wall)
    meter.switch(COMPUTE)
    c.run(1.0, 1.0)
    meter.stop()
    assert meter.windows() == [] and meter.seconds[COMPUTE] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="phase"):
        meter.switch("idle")
