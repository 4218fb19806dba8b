"""Windows integrate power exactly; time is driven by a fake clock, never by sleeps."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from edge_agent.sensing import (
    CpuFreq,
    MonitorError,
    PowerMonitor,
    PowerReading,
    SensingConfig,
    SensorReadError,
)
from edge_agent.sensing.rapl import RaplSource

from .conftest import FIXTURES, FakeClock, ScriptedSource


def test_constant_power_window_is_power_times_time_within_1_percent() -> None:
    clock = FakeClock()
    src = ScriptedSource([4.2])
    mon = PowerMonitor(src, cfg=SensingConfig(idle_power_w=1.5), clock=clock)
    mon.begin_window("compute")
    for _ in range(123):  # 10 Hz for 12.3 s
        clock.advance(0.1)
        mon.sample_now()
    clock.advance(0.05)
    w = mon.end_window("compute")
    assert w.duration_s == pytest.approx(12.35)
    assert w.energy_j == pytest.approx(4.2 * 12.35, rel=0.01)
    assert w.mean_power_w == pytest.approx(4.2, rel=0.01)
    assert w.dynamic_energy_j == pytest.approx((4.2 - 1.5) * 12.35, rel=0.01)
    assert w.samples == 125 and w.peak_power_w == 4.2
    assert (w.source, w.scope, w.estimated) == ("scripted", "test rail", False)


def test_trapezoid_over_a_ramp_and_overlapping_windows() -> None:
    clock = FakeClock()
    src = ScriptedSource([0.0, 1.0, 2.0, 3.0, 4.0])
    mon = PowerMonitor(src, clock=clock)
    mon.begin_window("round")  # reads 0 W
    clock.advance(1.0)
    mon.sample_now()  # 1 W
    mon.begin_window("communicate")  # 2 W at t=1
    clock.advance(1.0)
    mon.sample_now()  # 3 W
    clock.advance(1.0)
    inner = mon.end_window("communicate")  # 4 W at t=3
    outer = mon.end_window("round")  # 4 W at t=3 (repeats)
    assert inner.energy_j == pytest.approx((2 + 3) / 2 + (3 + 4) / 2)
    # 0->1 W over 1 s, (the 1 W and 2 W samples share t=1), 2->3 W, 3->4 W
    assert outer.energy_j == pytest.approx(0.5 + 2.5 + 3.5)
    assert outer.peak_power_w == 4.0 and outer.dynamic_energy_j is None


def test_window_misuse_raises() -> None:
    mon = PowerMonitor(ScriptedSource([1.0]), clock=FakeClock())
    mon.begin_window("a")
    with pytest.raises(MonitorError):
        mon.begin_window("a")
    with pytest.raises(MonitorError):
        mon.end_window("b")


class FlakySource(ScriptedSource):
    def read(self) -> PowerReading:
        self.reads += 1
        if self.reads == 2:
            raise SensorReadError("i2c hiccup")
        return PowerReading(power_w=2.0)


def test_failed_read_holds_the_last_value_and_is_counted() -> None:
    clock = FakeClock()
    mon = PowerMonitor(FlakySource([2.0]), clock=clock)
    mon.begin_window("w")
    clock.advance(1.0)
    mon.sample_now()  # fails
    clock.advance(1.0)
    w = mon.end_window("w")
    assert w.energy_j == pytest.approx(4.0)
    assert w.read_errors == 1 and mon.read_errors == 1


def test_rapl_window_uses_counter_deltas(tree: Any) -> None:
    root = tree("laptop_rapl")
    clock = FakeClock()
    from edge_agent.sensing import make_context

    src = RaplSource.open(make_context(SensingConfig(), root))
    src._clock = clock
    energy = root / "sys/class/powercap/intel-rapl:0/energy_uj"
    mon = PowerMonitor(src, clock=clock)
    mon.begin_window("compute")
    energy.write_text("1671150\n")  # wraps: 2 J since the window began
    clock.advance(0.5)
    mon.sample_now()
    energy.write_text("4671150\n")  # +3 J
    clock.advance(0.5)
    w = mon.end_window("compute")
    assert w.energy_j == pytest.approx(5.0)
    assert w.mean_power_w == pytest.approx(5.0)


def test_mean_frequency_is_sampled_from_cpufreq() -> None:
    clock = FakeClock()
    cpu = CpuFreq(FIXTURES / "orin_nano_jp6")
    mon = PowerMonitor(ScriptedSource([3.0]), cpu, clock=clock)
    mon.begin_window("w")
    clock.advance(1.0)
    w = mon.end_window("w")
    # 4 CPUs at 1510.4 MHz, 2 at 729.6 MHz
    assert w.mean_freq_hz == pytest.approx((4 * 1510.4e6 + 2 * 729.6e6) / 6)


class CountingSource(ScriptedSource):
    def __init__(self, n: int) -> None:
        super().__init__([1.0])
        self.n = n
        self.done = threading.Event()

    def read(self) -> PowerReading:
        r = super().read()
        if self.reads >= self.n:
            self.done.set()
        return r


def test_background_thread_samples_and_stop_joins() -> None:
    src = CountingSource(5)
    mon = PowerMonitor(src, cfg=SensingConfig(rate_hz=200.0))
    mon.start()
    assert src.done.wait(timeout=10.0)
    mon.stop()
    assert not mon.running
    assert mon.samples_taken >= 5
    assert mon.sampler_cpu_s >= 0.0
    n = src.reads
    assert src.reads == n  # nothing samples after stop() returned


def test_period_respects_the_source_minimum() -> None:
    src = ScriptedSource([1.0])
    src.min_period_s = 0.5
    assert PowerMonitor(src, cfg=SensingConfig(rate_hz=10.0)).period_s == 0.5
