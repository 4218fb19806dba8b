"""An emulated fleet's make-up, its host CPU, its deadline, and the fallback to plain agents."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordinator.boards import (
    MIXED_BOARDS,
    BoardsUnavailable,
    FleetSpecError,
    boards_for_run,
    fleet_boards,
    fleet_scale,
    groups,
)
from coordinator.boards.sizing import describe, fastest_rounds, fleet_deadline
from coordinator.cli import main
from coordinator.launcher import merge_tables, toml_lines
from greenfed.boards import CpuGroup, get_profile
from tests.boards.conftest import V1_BOARD, tree


def test_the_mixed_fleet_and_given_boards_are_cycled() -> None:
    assert [b.name for b in fleet_boards(5)] == [*MIXED_BOARDS, MIXED_BOARDS[0]]
    assert [b.name for b in fleet_boards(3, ["rpi5", "rpi4"])] == ["rpi5", "rpi4", "rpi5"]
    with pytest.raises(FleetSpecError, match="unknown board profile 'pi-zero'"):
        fleet_boards(2, ["pi-zero"])


def test_host_cpus_keep_the_boards_ratios_and_fit_the_budget() -> None:
    boards = fleet_boards(4)  # speeds 1 + 2 + 2 + 1
    scale = fleet_scale(boards, budget_cpus=1.5)
    assert scale.cpu_per_unit == 0.2 and not scale.note
    assert [scale.cpus(b) for b in boards] == pytest.approx([0.2, 0.4, 0.4, 0.2])
    tight = fleet_scale(boards, budget_cpus=0.6)
    assert tight.cpu_per_unit == pytest.approx(0.1) and "scaled to 0.100 to fit 0.60" in tight.note
    with pytest.raises(FleetSpecError):
        fleet_scale(boards, budget_cpus=0)


def test_the_deadline_is_the_slowest_boards_fastest_fp32_round() -> None:
    rpi4, orin = get_profile("rpi4"), get_profile("orin-nano-cpu")
    scale = fleet_scale([rpi4, orin], budget_cpus=2.0)
    rounds = fastest_rounds([("a", rpi4, 20.0), ("b", orin, 2.0)], scale, 60, 30.0, fp32_bytes=1e6)
    assert rounds[0].compute_s == pytest.approx(60 / (30 * 0.2))  # 10 s at 0.2 CPU
    assert rounds[1].upload_s == pytest.approx(4.0)  # 8 Mbit at 2 Mbit/s
    assert fleet_deadline(rounds, factor=1.3) == pytest.approx(13.6)  # 1.3 x 10.4 s = 13.52, up
    assert "a (rpi4) 10.0+0.4 s" in describe(rounds, 30.0, 1.3)


def test_the_enter_prefix_joins_every_hierarchy_then_execs(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")  # plain files here: the shell writes its pid into both
    group = CpuGroup.open(root / V1_BOARD[0], root / V1_BOARD[1])
    out = subprocess.run(
        [*groups.enter_prefix(group), "sh", "-c", 'echo "$$ $0"', "agent"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    pid, name = out.stdout.split()
    assert name == "agent"  # the argv after the prefix ran, as the same process (exec)
    assert [f.read_text().strip() for f in group.procs_files] == [pid, pid]


def test_auto_falls_back_to_plain_agents_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups, "probe", lambda root=None: (None, "not root"))
    scale = fleet_scale(fleet_boards(2), budget_cpus=1.0)
    assert boards_for_run(tmp_path, "auto", scale) == (
        None, "plain agents: emulated boards unavailable (not root)"
    )  # fmt: skip
    assert boards_for_run(tmp_path, "none", scale)[0] is None
    with pytest.raises(BoardsUnavailable, match="not root"):
        boards_for_run(tmp_path, "emulated", scale)


def test_agent_toml_nests_tables_and_merges_them() -> None:
    values = merge_tables(
        {"device_id": "a", "link": {"kind": "shaped"}},
        {"sensing": {"emulated": {"profile": "rpi4", "cpu_share": 0.2}}, "link": {"rate": 2.0}},
    )
    assert values["link"] == {"kind": "shaped", "rate": 2.0}
    assert toml_lines(values) == [
        'device_id = "a"', "\n[link]", 'kind = "shaped"', "rate = 2.0", "\n[sensing]",
        "\n[sensing.emulated]", 'profile = "rpi4"', "cpu_share = 0.2",
    ]  # fmt: skip


def test_boards_list_prints_every_profile_with_its_sources(capsys: pytest.CaptureFixture) -> None:
    assert main(["boards", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("rpi4", "rpi5", "orin-nano-cpu", "jetson-nano-cpu"):
        assert f"{name}: " in out
    assert "assumed" in out and "[P4]" in out and "docs/emulated.md" in out
