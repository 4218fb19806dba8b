"""The ``plan`` and ``simulate`` commands through ``coordinator.cli.main``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coordinator.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "coordinator" / "examples" / "fleet.json"
DEVICE_KEYS = {"id", "bits", "freq_hz", "energy_j", "compute_energy_j", "comm_energy_j", "time_s"}
PLAN_KEYS = {
    "scheme",
    "feasible",
    "multiplier",
    "error",
    "error_budget",
    "total_energy_j",
    "devices",
    "infeasible",
}


def _write(tmp_path: Path, obj) -> str:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return str(path)


def test_plan_json_on_the_example(capsys):
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == PLAN_KEYS
    assert doc["scheme"] == "on-demand" and doc["feasible"] is True
    assert doc["multiplier"] > 0 and doc["error"] <= doc["error_budget"]
    assert len(doc["devices"]) == 5 and set(doc["devices"][0]) == DEVICE_KEYS
    assert doc["infeasible"] == []
    total = sum(d["energy_j"] for d in doc["devices"])
    assert doc["total_energy_j"] == pytest.approx(total)


def test_plan_table_and_baselines(capsys):
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "scheme on-demand" in out and "rpi4-lte" in out and "freq_MHz" in out
    assert main(["plan", str(EXAMPLE), "--scheme", "fixed-8"]) == 0
    # the LTE board cannot upload an fp32 update before the deadline
    assert main(["plan", str(EXAMPLE), "--scheme", "fp32", "--json"]) == 1
    capsys.readouterr()
    assert main(["plan", str(EXAMPLE), "--scheme", "fp32", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["infeasible"][0]["kind"] == "deadline"
    assert doc["infeasible"][0]["id"] == "rpi4-lte"
    assert doc["infeasible"][0]["excess"] > 0


def test_infeasible_budget_exits_1(tmp_path, capsys):
    obj = json.loads(EXAMPLE.read_text())
    obj["error_budget"] = 1e-20
    assert main(["plan", _write(tmp_path, obj)]) == 1
    assert "error_budget" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ({"params": 10}, "deadline_s: missing"),
    ],
)
def test_malformed_files_exit_2(tmp_path, capsys, content, message):
    assert main(["plan", _write(tmp_path, content)]) == 2
    assert message in capsys.readouterr().err


def test_impossible_values_exit_2_naming_the_field(tmp_path, capsys):
    obj = json.loads(EXAMPLE.read_text())
    obj["devices"][2]["f_min_hz"] = 9e9
    assert main(["plan", _write(tmp_path, obj), "--json"]) == 2
    assert "devices[2].f_min_hz: must be <= f_max_hz" in capsys.readouterr().err
    obj = json.loads(EXAMPLE.read_text())
    obj["devices"][1]["energy_per_byte_j"] = -1e-7
    assert main(["plan", _write(tmp_path, obj)]) == 2
    assert "devices[1].energy_per_byte_j: must be >= 0" in capsys.readouterr().err


def test_missing_file_and_bad_scheme_exit_2(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["plan", str(EXAMPLE), "--scheme", "fixed-17"]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_simulate_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--devices", "10,40", "--out", str(out), "--seed", "2"]) == 0
    with open(out / "simulate.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["devices"], r["scheme"]) for r in rows] == [
        (n, s) for n in ("10", "40") for s in ("on-demand", "fp32", "fixed-8")
    ]
    assert all(r["feasible"] == "True" for r in rows)
    assert (out / "simulate.png").stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out
