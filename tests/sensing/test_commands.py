"""``greenfed-agent probe`` and ``calibrate`` end to end on fixture trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main

from .conftest import FIXTURES


def test_probe_on_a_bare_machine_explains_and_succeeds(capsys: pytest.CaptureFixture) -> None:
    assert main(["probe", "--sysfs-root", str(FIXTURES / "bare")]) == 0
    out = capsys.readouterr().out
    assert "chosen:  estimated (ESTIMATED)" in out
    assert "no ina3221 hwmon device" in out
    assert "dvfs:    unavailable (no cpufreq policies" in out
    assert "energy will be ESTIMATED" in out


def test_probe_json_on_orin(capsys: pytest.CaptureFixture) -> None:
    assert main(["probe", "--json", "--sysfs-root", str(FIXTURES / "orin_nano_jp6")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["chosen"]["name"] == "ina3221-hwmon"
    assert rep["chosen"]["power_w"] == pytest.approx(5.663, abs=1e-3)
    assert rep["board"]["board_class"] == "jetson-orin-nano"
    assert len(rep["cpu"]["policies"]) == 2
    assert rep["dvfs"]["available"] in (True, False)  # root-dependent
    rails = next(s for s in rep["sources"] if s["name"] == "ina3221-hwmon")["rails"]
    assert "1-0040:VDD_IN" in rails


def test_probe_rejects_an_unknown_source(capsys: pytest.CaptureFixture) -> None:
    assert main(["probe", "--source", "nope", "--sysfs-root", str(FIXTURES / "bare")]) == 2
    assert "unknown source" in capsys.readouterr().err


def test_calibrate_dry_run_in_estimated_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cal.json"
    argv = ["calibrate", "--sysfs-root", str(FIXTURES / "bare"), "--out", str(out)]
    argv += ["--rest-s", "0.2", "--step-s", "0.3", "--upload-mib", "0.5"]
    argv += ["--workload", "torch-conv", "--batch-size", "8", "--threads", "1"]
    assert main(argv) == 0
    prof = json.loads(out.read_text())
    assert prof["estimated"] is True and prof["source"] == "estimated"
    assert prof["kappa_single_point"] is True
    assert prof["uplink_bytes"] == 512 * 1024 and prof["uplink_bytes_per_s"] > 0
    assert prof["energy_per_byte_j"] > 0  # radio term above idle
    assert prof["workload"].startswith("torch-conv")
    assert "ESTIMATED profile written" in capsys.readouterr().out


@pytest.mark.hardware
@pytest.mark.skipif(
    not __import__("os").environ.get("GREENFED_HARDWARE"), reason="needs a real board"
)
def test_real_board_has_a_measured_source() -> None:
    from edge_agent.sensing import SensingConfig, detect_power_source

    src = detect_power_source(SensingConfig())
    assert not src.estimated, src.fallback_reasons  # type: ignore[attr-defined]
    assert src.read().power_w > 0
