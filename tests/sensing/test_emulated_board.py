"""An emulated board seen by the agent: a compute clock (the cgroup quota) and a power source
(its profile's model driven by its own cgroup CPU time), on copied cgroup trees."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pytest

from edge_agent.sensing import (
    BoardCgroup,
    EmulatedBoardConfig,
    EmulatedBoardSource,
    EmulatedClock,
    PowerMonitor,
    SensingConfig,
    SourceUnavailable,
    detect_power_source,
)
from edge_agent.training.device import compute_clock
from greenfed.boards import get_profile
from greenfed.errors import ConfigError
from tests.boards.conftest import V1_BOARD, V2_BOARD, tree
from tests.sensing.conftest import FakeClock

RPI4 = get_profile("rpi4")
SHARE = 0.2  # the trees' quota: 10000 of 50000 µs = 0.2 CPU, rpi4's top step


def v1_config(root: Path) -> EmulatedBoardConfig:
    return EmulatedBoardConfig(
        profile="rpi4", cpu_share=SHARE, cgroup="/" + V1_BOARD[0], cgroup_acct="/" + V1_BOARD[1]
    )


def usage_file(root: Path) -> Path:
    return root / V1_BOARD[1] / "cpuacct.usage"


def add_cpu(root: Path, seconds: float) -> None:
    f = usage_file(root)
    f.write_text(str(int(f.read_text()) + int(seconds * 1e9)))


def test_the_clock_is_the_quota_in_the_profiles_steps_and_restores(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    clock = EmulatedClock.from_config(v1_config(root), root)
    quota = root / V1_BOARD[0] / "cpu.cfs_quota_us"
    assert clock.read().freq_hz == RPI4.f_max_hz and clock.read().source == "emulated"
    assert clock.steps_hz == list(RPI4.steps_hz)
    assert (clock.min_hz, clock.max_hz) == (600e6, 1800e6)
    assert clock.dvfs_status().applied
    res = clock.apply(850e6)  # the next step up, as cpufreq does
    assert res.applied and res.freq_hz == 900e6
    assert quota.read_text() == "5000"  # 0.2 CPU x 900/1800 of a 50000 µs period
    assert clock.read().freq_hz == 900e6 and clock.clamped
    clock.apply(100e6)
    assert clock.read().freq_hz == 600e6 and quota.read_text() == str(round(0.2 / 3 * 50000))
    clock.restore()
    assert quota.read_text() == "10000" and not clock.clamped
    assert clock.read().freq_hz == RPI4.f_max_hz


def test_v2_clock_writes_cpu_max(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v2")
    cfg = EmulatedBoardConfig(profile="rpi4", cpu_share=SHARE, cgroup="/" + V2_BOARD)
    clock = EmulatedClock.from_config(cfg, root)
    clock.apply(1200e6)
    assert (root / V2_BOARD / "cpu.max").read_text() == f"{round(0.2 * 1200 / 1800 * 50000)} 50000"
    assert clock.read().freq_hz == 1200e6
    clock.restore()
    assert (root / V2_BOARD / "cpu.max").read_text() == "10000 50000"


def test_a_quota_between_steps_reads_as_the_frequency_it_stands_for(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    board = BoardCgroup.open(v1_config(root), root)
    (root / V1_BOARD[0] / "cpu.cfs_quota_us").write_text("7400")
    assert board.clock_hz() == pytest.approx(7400 / 50000 / SHARE * 1800e6)  # 1332 MHz
    (root / V1_BOARD[0] / "cpu.cfs_quota_us").write_text("7777")  # 1399.9 MHz: whole µs
    assert board.clock_hz() == 1400e6
    (root / V1_BOARD[0] / "cpu.cfs_quota_us").write_text("-1")
    assert board.clock_hz() == RPI4.f_max_hz  # unlimited: the top step


def source_and_clock(root: Path) -> Tuple[EmulatedBoardSource, FakeClock]:
    t = FakeClock()
    return EmulatedBoardSource(BoardCgroup.open(v1_config(root), root), clock=t), t


def test_power_follows_its_own_cpu_time_at_its_clock(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    src, t = source_and_clock(root)
    assert src.read().power_w == RPI4.idle_w  # the first reading has no interval yet
    t.advance(1.0)
    add_cpu(root, 0.2)  # busy the whole second at the top step (0.2 CPU)
    assert src.read().power_w == pytest.approx(RPI4.peak_w)
    t.advance(1.0)
    add_cpu(root, 0.05)  # a quarter of its quota
    assert src.read().power_w == pytest.approx(RPI4.idle_w + 0.25 * (RPI4.peak_w - RPI4.idle_w))
    EmulatedClock(src.board).apply(900e6)  # half the clock: half the CPU, an eighth the power
    t.advance(1.0)
    add_cpu(root, 0.1)
    reading = src.read()
    assert reading.power_w == pytest.approx(RPI4.idle_w + (RPI4.peak_w - RPI4.idle_w) / 8)
    assert reading.t == t() and reading.energy_j is not None


def test_a_neighbours_cpu_time_is_not_this_boards_energy(tmp_path: Path) -> None:
    mine, other = tree(tmp_path / "a", "cgroup_v1"), tree(tmp_path / "b", "cgroup_v1")
    src, t = source_and_clock(mine)
    src.read()
    t.advance(2.0)
    add_cpu(other, 0.4)  # the other board (another cgroup) works; this one idles
    assert src.read().power_w == pytest.approx(RPI4.idle_w)


def test_window_energy_is_the_counter_with_radio_while_communicating(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    src, t = source_and_clock(root)
    mon = PowerMonitor(src, clock=t)
    assert mon.idle_power_w == RPI4.idle_w
    mon.begin_window("compute")
    t.advance(3.0)
    add_cpu(root, 0.3)  # half busy for 3 s at the top step
    w = mon.end_window("compute")
    assert w.estimated and w.scope.startswith("emulated board rpi4")
    assert w.dynamic_energy_j == pytest.approx(0.5 * (RPI4.peak_w - RPI4.idle_w) * 3.0)
    mon.begin_window("communicate")
    t.advance(2.0)
    up = mon.end_window("communicate")
    assert up.energy_j == pytest.approx((RPI4.idle_w + RPI4.radio_w) * 2.0)


def test_the_factory_picks_it_when_configured_and_says_why_not_otherwise(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    src = detect_power_source(SensingConfig(emulated=v1_config(root)), root)
    assert src.name == "emulated-board" and src.estimated
    assert src.board_class == "emulated board rpi4" and src.model_idle_power_w == RPI4.idle_w
    plain = detect_power_source(SensingConfig(), root)
    assert "not an emulated board" in plain.fallback_reasons["emulated-board"]  # type: ignore[attr-defined]
    broken = EmulatedBoardConfig(profile="rpi4", cpu_share=0.2, cgroup="/no/such/group")
    with pytest.raises(SourceUnavailable, match=r"emulated board rpi4: .*not a cgroup"):
        detect_power_source(SensingConfig(source="emulated-board", emulated=broken), root)


def test_the_compute_clock_of_an_emulated_board(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    assert isinstance(compute_clock("cpu", root, emulated=v1_config(root)), EmulatedClock)
    with pytest.raises(ConfigError, match="trains on the CPU"):
        compute_clock("cuda", root, emulated=v1_config(root))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"profile": "pi-zero", "cpu_share": 0.2, "cgroup": "/x"}, "unknown board profile"),
        ({"profile": "rpi4", "cpu_share": 0, "cgroup": "/x"}, "cpu_share must be > 0"),
        ({"profile": "rpi4", "cpu_share": 0.2}, "cgroup is required"),
        ({"profile": "rpi4", "cpu_share": 0.2, "cgroup": "/x", "period_us": 10}, "period_us"),
    ],
)
def test_config_errors(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatedBoardConfig(**kw)


def test_probe_shows_the_emulated_boards_clock(tmp_path: Path) -> None:
    from edge_agent.sensing import make_context
    from edge_agent.sensing.probe import build_report, format_report

    root = tree(tmp_path, "cgroup_v1")
    text = format_report(build_report(make_context(SensingConfig(emulated=v1_config(root)), root)))
    assert "[yes] emulated-board emulated board rpi4 (" in text
    assert "board clock: emulated board rpi4 at 1800 MHz (the CPU quota of " in text
    assert "steps 600 MHz .. 1800 MHz; dvfs available" in text
    assert "energy is ESTIMATED from its profile's model" in text
