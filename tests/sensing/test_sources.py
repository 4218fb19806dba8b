"""Each backend's real parsing code over copies of real sysfs layouts and command output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_agent.sensing import (
    FakeRunner,
    Ina2xxConfig,
    SensingConfig,
    SensorPermissionError,
    SourceUnavailable,
    detect_power_source,
    make_context,
    probe_sources,
)
from edge_agent.sensing import sysfs as sysfs_mod
from edge_agent.sensing.battery import BatterySource
from edge_agent.sensing.ina2xx import Ina2xxSource, decode
from edge_agent.sensing.ina3221_hwmon import Ina3221HwmonSource, is_skipped_label
from edge_agent.sensing.ina3221_iio import Ina3221IioSource
from edge_agent.sensing.jetson_stats import JtopSource
from edge_agent.sensing.rapl import RaplSource
from edge_agent.sensing.rpi_pmic import RpiPmicSource, parse_pmic_read_adc

from .conftest import FIXTURES, FakeClock


def ctx_for(name: str, runner: Any = None, **cfg: Any) -> Any:
    return make_context(SensingConfig(**cfg), FIXTURES / name, runner or FakeRunner())


def pmic_runner(name: str) -> FakeRunner:
    return FakeRunner({"pmic_read_adc": (FIXTURES / name / "pmic_read_adc.txt").read_text()})


def test_orin_nano_uses_vdd_in_from_a_nonzero_hwmon() -> None:
    src = Ina3221HwmonSource.open(ctx_for("orin_nano_jp6"))
    r = src.read()
    assert r.power_w == pytest.approx(5056 * 1120 / 1e6)
    assert src.scope.startswith("VDD_IN")
    assert set(r.rails_w) == {"1-0040:VDD_IN", "1-0040:VDD_CPU_GPU_CV", "1-0040:VDD_SOC"}
    assert "hwmon1" in str(src.rails[0].volt_path)


def test_agx_orin_sums_connected_rails_of_two_chips_and_says_so() -> None:
    src = Ina3221HwmonSource.open(ctx_for("agx_orin"))
    r = src.read()
    expected = (5008 * 640 + 5008 * 160 + 5000 * 700 + 5000 * 140) / 1e6
    assert r.power_w == pytest.approx(expected)
    assert "no VDD_IN" in src.scope
    labels = [x.label for x in src.rails]
    assert "NC" not in labels
    assert labels == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]


@pytest.mark.parametrize(
    ("label", "skipped"),
    [("NC", True), ("VDD_NC", True), ("sum of shunt voltages", True), ("VDD_SYNC", False)],
)
def test_label_filter(label: str, skipped: bool) -> None:
    assert is_skipped_label(label) is skipped


def test_nano_jp4_iio_total_is_pom_5v_in() -> None:
    src = Ina3221IioSource.open(ctx_for("nano_jp4"))
    r = src.read()
    assert r.power_w == pytest.approx(2.456)
    assert src.scope.startswith("POM_5V_IN")
    assert r.rails_w["6-0040:POM_5V_CPU"] == pytest.approx(0.546)


def test_rpi5_pmic_pairs_rails_and_excludes_ext5v() -> None:
    text = (FIXTURES / "rpi5" / "pmic_read_adc.txt").read_text()
    rails = parse_pmic_read_adc(text)
    assert "EXT5V" not in rails and "BATT" not in rails
    assert len(rails) == 12
    assert rails["VDD_CORE"] == pytest.approx((0.86173300, 6.22421000))
    runner = pmic_runner("rpi5")
    src = RpiPmicSource.open(ctx_for("rpi5", runner))
    r = src.read()
    assert r.power_w == pytest.approx(sum(v * a for v, a in rails.values()))
    assert r.power_w == pytest.approx(7.2398, abs=1e-3)
    assert src.scope.startswith("PMIC rails")
    assert src.sample_period_s >= 0.1
    assert runner.calls[-1] == ["vcgencmd", "pmic_read_adc"]


def test_rpi4_command_not_registered_is_unavailable_with_reason() -> None:
    p = RpiPmicSource.probe(ctx_for("rpi4", pmic_runner("rpi4")))
    assert not p.available
    assert "pmic_read_adc" in p.reason and "Pi 5" in p.reason


def test_vcgencmd_without_video_group_is_a_permission_error() -> None:
    runner = FakeRunner({"pmic_read_adc": "VCHI initialization failed\n"})
    with pytest.raises(SensorPermissionError, match="group video"):
        RpiPmicSource.open(ctx_for("rpi5", runner))


def test_rapl_sums_packages_only_and_unwraps_the_counter(tree: Any) -> None:
    root = tree("laptop_rapl")
    clock = FakeClock()
    src = RaplSource.open(make_context(SensingConfig(), root))
    src._clock = clock
    src._last_t = clock()
    assert [d.name for d in src.domains] == ["package-0"]  # psys and sub-domains not summed
    energy = root / "sys/class/powercap/intel-rapl:0/energy_uj"
    max_range = 262143328850
    start = 262143000000
    # the counter wraps: 328850 µJ to the top, then 2 000 000 µJ after zero
    energy.write_text("1671150\n")
    clock.advance(1.0)
    r = src.read()
    assert r.energy_j == pytest.approx((max_range - start + 1671150) / 1e6)
    assert r.power_w == pytest.approx(2.0)


def test_rapl_root_only_counter_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = sysfs_mod._open

    def deny(path: Any, mode: str = "r") -> Any:
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode)

    monkeypatch.setattr(sysfs_mod, "_open", deny)
    p = RaplSource.probe(ctx_for("laptop_rapl"))
    assert not p.available
    assert "root" in p.reason and "permission denied" in p.reason


def test_battery_discharging_and_on_ac(tree: Any) -> None:
    root = tree("laptop_battery")
    src = BatterySource.open(make_context(SensingConfig(), root))
    assert src.read().power_w == pytest.approx(7.843)
    bat = root / "sys/class/power_supply/BAT0"
    (bat / "power_now").unlink()
    (bat / "current_now").write_text("500000\n")
    assert src.read().power_w == pytest.approx(0.5 * 11.985)
    (bat / "status").write_text("Charging\n")
    p = BatterySource.probe(make_context(SensingConfig(), root))
    assert not p.available and "Charging" in p.reason


class FakeBus:
    def __init__(self, regs: dict) -> None:
        self.regs = regs

    def read_word(self, reg: int) -> int:
        return self.regs[reg]

    def close(self) -> None:
        pass


def test_ina219_and_ina226_register_decoding() -> None:
    # INA219: bus 5.000 V -> 1250 << 3; shunt 12.5 mV over 0.1 ohm = 125 mA -> 1250 LSB
    v, a = decode("ina219", 1250, 1250 << 3, 0.1)
    assert (v, a) == (pytest.approx(5.0), pytest.approx(0.125))
    # INA226: bus 5.1 V -> 4080 LSB; negative shunt -2.5 mV over 0.01 ohm = -0.25 A
    v, a = decode("ina226", 0x10000 - 1000, 4080, 0.01)
    assert (v, a) == (pytest.approx(5.1), pytest.approx(-0.25))
    icfg = Ina2xxConfig(chip="ina226", shunt_ohm=0.01, scope="Pi 4 USB-C input")
    ctx = make_context(SensingConfig(ina2xx=icfg), FIXTURES / "bare")
    src = Ina2xxSource.open(ctx, bus=FakeBus({0xFE: 0x5449, 0x01: 400, 0x02: 4080}))  # type: ignore[arg-type]
    assert src.read().power_w == pytest.approx(5.1 * 0.1)
    assert "Pi 4 USB-C input" in src.scope


def test_ina2xx_unconfigured_and_missing_bus() -> None:
    assert "not configured" in Ina2xxSource.probe(ctx_for("bare")).reason
    p = Ina2xxSource.probe(ctx_for("bare", ina2xx=Ina2xxConfig(bus=7)))
    assert not p.available and "i2c-7" in p.reason


def test_jtop_missing_is_explained() -> None:
    p = JtopSource.probe(ctx_for("orin_nano_jp6"))
    assert not p.available
    assert "jetson-stats" in p.reason or "jtop" in p.reason


@pytest.mark.parametrize(
    ("tree_name", "expected", "runner_tree"),
    [
        ("orin_nano_jp6", "ina3221-hwmon", None),
        ("agx_orin", "ina3221-hwmon", None),
        ("nano_jp4", "ina3221-iio", None),
        ("rpi5", "rpi5-pmic", "rpi5"),
        ("rpi4", "estimated", "rpi4"),
        ("laptop_rapl", "rapl", None),
        ("laptop_battery", "battery", None),
        ("bare", "estimated", None),
    ],
)
def test_factory_picks_the_board_source(tree_name: str, expected: str, runner_tree: Any) -> None:
    runner = pmic_runner(runner_tree) if runner_tree else FakeRunner()
    src = detect_power_source(SensingConfig(), FIXTURES / tree_name, runner)
    assert src.name == expected
    assert src.estimated is (expected == "estimated")
    assert src.scope


def test_bare_machine_falls_back_with_every_reason() -> None:
    src = detect_power_source(SensingConfig(), FIXTURES / "bare", FakeRunner())
    assert src.estimated
    reasons = src.fallback_reasons  # type: ignore[attr-defined]
    assert set(reasons) == set(SensingConfig().sources)
    assert "not installed" in reasons["rpi5-pmic"]
    probes = probe_sources(ctx_for("bare"))
    assert [p.available for p in probes] == [False] * len(SensingConfig().sources) + [True]


def test_an_explicit_source_that_is_missing_raises() -> None:
    with pytest.raises(SourceUnavailable, match="ina3221"):
        detect_power_source(SensingConfig(source="ina3221-hwmon"), FIXTURES / "bare")


def test_sysfs_root_default_is_root() -> None:
    assert make_context().sysfs_root == Path("/")
