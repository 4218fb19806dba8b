"""Board states seen on real machines, each through probe, a monitor window and run's start-up.

Every tree is a copy of a real layout (``fixtures/``); where the real kernel answers a read
with an errno (an inactive cpufreq policy answers EBUSY), ``fixtures/<tree>.errno`` says so
and the one file-opening seam of the sensing layer answers it, so the real parsing runs.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from edge_agent.cli import main
from edge_agent.config import AgentConfig
from edge_agent.daemon import Agent
from edge_agent.sensing import CpuFreq, PowerMonitor, SensingConfig, detect_power_source

from .conftest import FakeClock, install_errno_seam

POLICY = "sys/devices/system/cpu/cpufreq/policy{}"
BAT = "sys/class/power_supply/{}"


def probe_json(root: Path, capsys: pytest.CaptureFixture) -> Dict[str, Any]:
    assert main(["probe", "--json", "--sysfs-root", str(root)]) == 0
    return dict(json.loads(capsys.readouterr().out))


def window(root: Path, seconds: float = 2.0) -> Any:
    """One 'compute' window over the tree's source and clock, driven by a fake clock."""
    clock = FakeClock()
    mon = PowerMonitor(detect_power_source(SensingConfig(), root), CpuFreq(root), clock=clock)
    mon.begin_window("compute")
    for _ in range(round(seconds / 0.1)):
        clock.advance(0.1)
        mon.sample_now()
    return mon.end_window("compute")


def start_agent(root: Path, tmp_path: Path) -> Agent:
    """``greenfed-agent run``'s start-up up to the network: sources, clock, DVFS guard."""
    return Agent(AgentConfig(device_id="board", state_dir=tmp_path / "state", sysfs_root=root))


# -- a Jetson in a low-power mode: a cluster offline ------------------------------------------
def test_offline_cluster_is_reported_inactive_and_left_out(
    tree: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tree("orin_nano_jp6_7w")  # nvpmodel 7 W: CPUs 4-5 offline, policy4 answers EBUSY
    rep = probe_json(root, capsys)
    assert [p["name"] for p in rep["cpu"]["policies"]] == ["policy0"]
    (inactive,) = rep["cpu"]["inactive_policies"]
    assert inactive["name"] == "policy4" and "offline CPUs: 4-5" in inactive["reason"]
    assert rep["cpu"]["freq_hz"] == 1510400e3  # policy0 only
    assert rep["cpu"]["max_hz"] == 1510400e3
    assert any("policy4" in n and "left out" in n for n in rep["notes"])
    assert rep["chosen"]["name"] == "ina3221-hwmon"

    w = window(root)
    assert w.mean_freq_hz == pytest.approx(1510400e3) and w.energy_j > 0

    agent = start_agent(root, tmp_path)
    assert [p.name for p in agent.cpu.policies] == ["policy0"]
    res = agent.cpu.apply(1.0e9)  # root here: the copied tree is writable
    assert res.applied, res
    assert (root / POLICY.format(0) / "scaling_max_freq").read_text().strip() == "1036800"
    agent.cpu.restore()
    assert (root / POLICY.format(0) / "scaling_max_freq").read_text().strip() == "1510400"


def test_a_cluster_going_offline_mid_run_is_dropped_not_fatal(
    tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree("orin_nano_jp6")
    cpu = CpuFreq(root)
    assert [p.name for p in cpu.policies] == ["policy0", "policy4"]
    # nvpmodel switches to 7 W while the agent runs: policy4 starts answering EBUSY
    install_errno_seam(monkeypatch, root, [(errno.EBUSY, POLICY.format(4) + "/")])
    r = cpu.read()
    assert r.freq_hz == 1510400e3 and list(r.per_policy_hz) == ["policy0"]
    assert [p.name for p in cpu.inactive] == ["policy4"]
    assert cpu.apply(1.0e9).applied
    cpu.restore()


# -- batteries -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "power_w", "carried_by"),
    [
        # the kernel ABI's sign: current_now < 0 while discharging (sbs-battery)
        ("arm_laptop_signed_current", 0.612 * 8.251, "sbs-12-000b"),
        # two packs: BAT0 idle ("Unknown"), BAT1 carries the load
        ("thinkpad_two_packs", 9.12, "BAT1"),
        # a HID mouse's battery (scope=Device) is not the system's
        ("laptop_hid_battery", 6.21, "BAT0"),
    ],
)
def test_system_batteries_are_chosen_and_signed(
    tree: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    name: str,
    power_w: float,
    carried_by: str,
) -> None:
    root = tree(name)
    rep = probe_json(root, capsys)
    assert rep["chosen"]["name"] == "battery", rep["sources"]
    assert rep["chosen"]["power_w"] == pytest.approx(power_w, abs=1e-3)
    assert carried_by in rep["chosen"]["scope"] and "hid-" not in rep["chosen"]["scope"]
    w = window(root)
    assert w.mean_power_w == pytest.approx(power_w) and w.energy_j > 0
    agent = start_agent(root, tmp_path)
    assert agent.source.name == "battery"
    assert agent.source.read().power_w == pytest.approx(power_w)


def test_packs_switching_mid_run_are_followed(tree: Callable[[str], Path]) -> None:
    root = tree("thinkpad_two_packs")
    src = detect_power_source(SensingConfig(), root)
    assert src.read().power_w == pytest.approx(9.12)
    (root / BAT.format("BAT1") / "status").write_text("Unknown\n")  # firmware switches packs
    (root / BAT.format("BAT0") / "status").write_text("Discharging\n")
    (root / BAT.format("BAT0") / "power_now").write_text("8400000\n")
    assert src.read().power_w == pytest.approx(8.4)


@pytest.mark.parametrize(
    ("status", "ac", "says", "never"),
    [
        ("Not charging", "0", "no system battery discharging (BAT0 Not charging)", "on AC"),
        ("Unknown", "1", "on AC: no system battery discharging", "charging:"),
        ("Charging", "1", "BAT0 status Charging: on AC", "no system battery"),
    ],
)
def test_no_discharge_gives_the_true_reason(
    tree: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    status: str,
    ac: str,
    says: str,
    never: str,
) -> None:
    root = tree("laptop_battery")
    (root / BAT.format("BAT0") / "status").write_text(status + "\n")
    (root / BAT.format("AC") / "online").write_text(ac + "\n")
    rep = probe_json(root, capsys)
    battery = next(s for s in rep["sources"] if s["name"] == "battery")
    assert not battery["available"]
    assert says in battery["reason"] and never not in battery["reason"], battery["reason"]
    assert rep["chosen"]["name"] == "estimated"
    assert start_agent(root, tmp_path).source.name == "estimated"


# -- nothing of the host read under a sysfs root -------------------------------------------
def test_a_copied_tree_reads_its_recorded_commands_not_this_hosts(
    tree: Callable[[str], Path], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    def host_freq(*_: Any) -> Any:
        raise AssertionError("the host's psutil frequency leaked into a copied tree")

    monkeypatch.setattr(psutil, "cpu_freq", host_freq)
    pi5 = probe_json(tree("rpi5"), capsys)  # vcgencmd's output recorded on a real Pi 5
    assert pi5["chosen"]["name"] == "rpi5-pmic"
    assert pi5["chosen"]["power_w"] == pytest.approx(7.24, abs=0.01)
    bare = probe_json(tree("bare"), capsys)
    pmic = next(s for s in bare["sources"] if s["name"] == "rpi5-pmic")
    assert "no pmic_read_adc.txt in" in pmic["reason"]
    assert bare["cpu"]["source"] == "none" and bare["cpu"]["freq_hz"] is None


# -- RAPL says what it leaves out; the Jetson classes the estimated model knows --------------
def test_rapl_scope_names_dram_as_excluded(
    tree: Callable[[str], Path], capsys: pytest.CaptureFixture
) -> None:
    rep = probe_json(tree("laptop_rapl"), capsys)
    rapl = next(s for s in rep["sources"] if s["name"] == "rapl")
    assert rapl["available"], rapl
    assert "excludes DRAM" in rapl["scope"]


@pytest.mark.parametrize(
    ("name", "board_class", "max_w"),
    [
        ("xavier_nx_jp5", "jetson-xavier-nx", 20.0),
        ("agx_xavier_jp4", "jetson-agx-xavier", 30.0),
        ("tx2_jp4", "jetson-tx2", 15.0),
    ],
)
def test_xavier_and_tx2_get_their_own_estimated_class(
    tree: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    name: str,
    board_class: str,
    max_w: float,
) -> None:
    root = tree(name)
    rep = probe_json(root, capsys)
    assert rep["board"]["board_class"] == board_class
    assert rep["chosen"]["board_class"] == board_class and rep["chosen"]["max_w"] == max_w
    agent = start_agent(root, tmp_path)
    assert agent.source.estimated and board_class in agent.source.scope
