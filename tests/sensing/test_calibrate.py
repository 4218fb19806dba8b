"""Calibration recovers known coefficients from a synthetic board; profiles round-trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Tuple

import pytest

from edge_agent.sensing import (
    CalibrationProfile,
    CpuFreq,
    GpuFreq,
    LoopbackSink,
    PowerMonitor,
    PowerReading,
    SensingConfig,
    calibrate,
    detect_power_source,
    fit_kappa,
)
from edge_agent.sensing.calibrate import pick_steps
from edge_agent.sensing.profile import NOMINAL_CLOCK_HZ

from .conftest import FIXTURES, FakeClock, ScriptedSource

KAPPA = 2.0e-28  # W/Hz^3: 2.4 GHz -> 2.76 W dynamic
IDLE = 2.5


class CubicBoard(ScriptedSource):
    """Power = idle + κ f³ while busy, f following scaling_max_freq like a governor would."""

    def __init__(self, root: Path) -> None:
        super().__init__([IDLE], scope="synthetic PMIC")
        self.pol = root / "sys/devices/system/cpu/cpufreq/policy0"
        self.busy = False

    def window_event(self, name: str, opened: bool) -> None:
        if name == "communicate" and opened:
            self.busy = False  # the upload does no training

    def read(self) -> PowerReading:
        f_khz = int((self.pol / "scaling_max_freq").read_text())
        (self.pol / "scaling_cur_freq").write_text(f"{f_khz}\n")
        f = f_khz * 1e3
        return PowerReading(power_w=IDLE + (KAPPA * f**3 if self.busy else 0.0))


def drive(
    board: CubicBoard, mon: PowerMonitor, clock: FakeClock, samples: int
) -> Tuple[Callable[[float], None], Callable[[], int]]:
    """The rest and the workload of a synthetic board, each advancing the fake clock in
    sampler periods (0.1 s): the board is busy only while the workload runs."""

    def idle_sleep(seconds: float) -> None:
        board.busy = False
        for _ in range(round(seconds / 0.1)):
            clock.advance(0.1)
            mon.sample_now()

    def workload() -> int:
        board.busy = True
        clock.advance(0.1)
        mon.sample_now()
        return samples

    return idle_sleep, workload


def test_fit_kappa_and_step_choice() -> None:
    pts = [(f, KAPPA * f**3) for f in (1e9, 1.5e9, 2e9)]
    assert fit_kappa(pts) == pytest.approx(KAPPA)
    assert pick_steps([1, 2, 3, 4, 5, 6, 7], 4) == [1, 3, 5, 7]
    assert pick_steps([1, 2], 4) == [1, 2]
    assert pick_steps([1, 2, 3], 1) == [3]  # the quick calibration's one step (was 0/0)


def test_calibration_recovers_kappa_cycles_and_uplink(tree: Any, tmp_path: Path) -> None:
    root = tree("rpi5")
    clock = FakeClock()
    board = CubicBoard(root)
    cpu = CpuFreq(root)
    mon = PowerMonitor(board, cpu, SensingConfig(), clock=clock)
    idle_sleep, workload = drive(board, mon, clock, 32)

    with LoopbackSink() as sink:

        def send(data: bytes) -> None:
            board.busy = False
            sink.send(data)
            clock.advance(0.01)

        prof = calibrate(
            mon,
            cpu,
            workload,
            send,
            workload_name="synthetic",
            rest_s=1.0,
            step_s=1.0,
            max_steps=3,
            upload_bytes=1 << 20,
            chunk_bytes=1 << 16,
            sleep=idle_sleep,
            clock=clock,
        )
    assert sink.received == 1 << 20
    assert prof.idle_power_w == pytest.approx(IDLE)
    assert [p.freq_hz for p in prof.kappa_points] == pytest.approx([1.5e9, 1.9e9, 2.4e9])
    assert prof.kappa == pytest.approx(KAPPA, rel=0.01)
    assert not prof.kappa_single_point
    top = prof.kappa_points[-1]
    assert prof.cycles_per_sample == pytest.approx(2.4e9 * top.duration_s / top.train_samples)
    assert prof.uplink_bytes_per_s == pytest.approx((1 << 20) / 0.16, rel=0.01)
    assert prof.energy_per_byte_j == pytest.approx(0.0, abs=1e-12)  # no power above idle
    assert prof.f_steps_hz[0] == 1.5e9 and prof.f_max_hz == 2.4e9
    assert not prof.estimated and prof.source == "scripted"
    assert (
        root / "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq"
    ).read_text().strip() == "2400000"
    path = tmp_path / "profile.json"
    prof.save(path)
    again = CalibrationProfile.load(path)
    assert again == prof


def test_estimated_calibration_is_single_point_and_labelled() -> None:
    clock = FakeClock()
    src = detect_power_source(SensingConfig(), FIXTURES / "bare")
    src._util = lambda: 1.0  # type: ignore[attr-defined]
    cpu = CpuFreq(FIXTURES / "bare")
    mon = PowerMonitor(src, cpu, clock=clock)

    def tick(_: float = 0.0) -> None:
        clock.advance(0.1)
        mon.sample_now()

    def workload() -> int:
        tick()
        return 8

    prof = calibrate(
        mon, cpu, workload, None, workload_name="w", rest_s=0.5, step_s=0.5, sleep=tick, clock=clock
    )
    assert prof.estimated and prof.kappa_single_point
    assert prof.idle_power_w == 5.0  # the generic class's model constant
    assert any("ESTIMATED" in n for n in prof.notes)
    assert "dvfs: unavailable" in prof.dvfs
    # The bare tree has no readable clock: a nominal reference clock, said so, and the model
    # in seconds per sample at it (κ·f³ = the measured dynamic power, C/f = the time).
    assert prof.clock == "nominal" and prof.f_steps_hz == [NOMINAL_CLOCK_HZ]
    assert prof.f_min_hz == prof.f_max_hz == NOMINAL_CLOCK_HZ
    assert any("clock unreadable" in n for n in prof.notes)
    (point,) = prof.kappa_points
    assert prof.kappa == pytest.approx(point.dynamic_power_w / NOMINAL_CLOCK_HZ**3)
    assert point.dynamic_power_w == pytest.approx(10.0 - 5.0, rel=0.01)  # generic: 5 W -> 10 W
    seconds_per_sample = point.duration_s / point.train_samples
    assert prof.cycles_per_sample == pytest.approx(NOMINAL_CLOCK_HZ * seconds_per_sample)


class CubicGpuBoard(CubicBoard):
    """The same synthetic board, its dynamic power following the GPU's devfreq max_freq."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.node = root / "sys/class/devfreq/17000000.gpu"

    def read(self) -> PowerReading:
        f = int((self.node / "max_freq").read_text())
        (self.node / "cur_freq").write_text(f"{f}\n")
        return PowerReading(power_w=IDLE + (KAPPA * f**3 * 1e3 if self.busy else 0.0))


def test_calibration_on_the_gpu_clock_fits_kappa_per_gpu_cycle(tree: Any) -> None:
    root = tree("orin_nano_jp6")
    clock = FakeClock()
    board = CubicGpuBoard(root)
    gpu = GpuFreq(root)
    mon = PowerMonitor(board, gpu, SensingConfig(), clock=clock)
    idle_sleep, workload = drive(board, mon, clock, 64)

    prof = calibrate(
        mon,
        gpu,
        workload,
        None,
        workload_name="synthetic on the GPU",
        rest_s=1.0,
        step_s=1.0,
        max_steps=3,
        sleep=idle_sleep,
        clock=clock,
        device="cuda",
    )
    assert prof.clock == "gpu-devfreq" and prof.train_device == "cuda"
    assert [p.freq_hz for p in prof.kappa_points] == pytest.approx([306e6, 714e6, 1020e6])
    assert prof.kappa == pytest.approx(KAPPA * 1e3, rel=0.01)  # per GPU cycle, not per CPU's
    assert (prof.f_min_hz, prof.f_max_hz, len(prof.f_steps_hz)) == (306e6, 1020e6, 8)
    top = prof.kappa_points[-1]
    assert prof.cycles_per_sample == pytest.approx(1020e6 * top.duration_s / top.train_samples)
    node = root / "sys/class/devfreq/17000000.gpu"
    assert (node / "max_freq").read_text().strip() == "1020000000"  # restored
    assert (node / "min_freq").read_text().strip() == "306000000"


def test_an_upload_below_idle_records_no_cost_not_a_negative_one() -> None:
    """A negative energy per byte (noise, or rounding: -4e-25 J/B was seen in a real run)
    would be refused by the coordinator at registration; it is recorded as 0 with a note."""
    from edge_agent.sensing.calibrate import measure_uplink

    clock = FakeClock()
    src = ScriptedSource([1.999])  # the upload reads a hair below the 2.0 W idle
    mon = PowerMonitor(src, clock=clock)
    notes: list = []

    def send(data: bytes) -> None:
        clock.advance(0.01)

    up = measure_uplink(mon, send, 2.0, 1 << 16, 1 << 14, notes)
    assert up.energy_per_byte_j == 0.0 and up.rate_bytes_per_s is not None
    assert any("recorded as 0 (unknown)" in n for n in notes)
