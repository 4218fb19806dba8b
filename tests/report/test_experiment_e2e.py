"""Tiny real experiments: 2 agent processes, 2 schemes, 2 rounds, then its report (plain
agents); and one round over emulated boards (root), whose clocks the report carries."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coordinator.boards import groups
from coordinator.cli import main
from coordinator.report import load_run, summarize


@pytest.mark.slow
def test_tiny_experiment_runs_both_schemes_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exp"
    code = main(
        ["experiment", "--schemes", "fp32,on-demand", "--rounds", "2", "--devices", "2",
         "--local-steps", "5", "--eval-samples", "16", "--deadline-s", "90",
         "--fleet-sizes", "10", "--boards", "none", "--out", str(out)]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
    doc = json.loads((out / "experiment.json").read_text())
    assert [r["scheme"] for r in doc["results"]] == ["fp32", "on-demand"]
    assert all(r["rounds_completed"] == 2 for r in doc["results"])
    # The shared calibration profiles were written once and reused.
    assert sorted(p.name for p in (out / "profiles").iterdir()) == ["board-1.json", "board-2.json"]

    run = load_run(out)
    sums = {s.scheme: summarize(s) for s in run.schemes}
    assert set(sums) == {"fp32", "on-demand"}
    for s in sums.values():
        assert s.rounds_completed == 2 and s.missing_reports == 0
        assert s.deadline_s == [90.0]
        assert s.error_budget == [pytest.approx(doc["error_budget"])]
    assert sums["fp32"].mean_bits == 32
    assert sums["on-demand"].bytes_up < sums["fp32"].bytes_up
    devices = {
        s.scheme: sorted({(r["device_id"], r["link_mbps"]) for r in s.device_rounds})
        for s in run.schemes
    }
    assert devices["fp32"] == devices["on-demand"] == [("board-1", 2.0), ("board-2", 5.0)]
    assert (out / "report" / "report.html").is_file()
    assert (out / "fleet-study" / "simulate.csv").is_file()
    assert "Did on-demand use less energy than fp32" in text


@pytest.mark.slow
def test_an_experiment_over_emulated_boards_sizes_its_deadline_and_reports_clocks(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    hierarchy, why = groups.probe()
    if hierarchy is None:
        pytest.skip(f"emulated boards unavailable here: {why}")
    out = tmp_path / "exp"
    code = main(
        ["experiment", "--schemes", "on-demand", "--rounds", "1", "--devices", "2",
         "--local-steps", "3", "--eval-samples", "8", "--fleet-sizes", "", "--boards", "emulated",
         "--out", str(out)]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
    doc = json.loads((out / "experiment.json").read_text())
    assert doc["results"][0]["rounds_completed"] == 1
    # No --deadline-s: the deadline was sized from the boards, and says so.
    assert "slowest board" in json.dumps(doc), doc.get("notes")
    with open(out / "report" / "clocks.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["device_id"] for r in rows} == {"board-1", "board-2"}
    for r in rows:
        assert r["board"] and float(r["assigned_mhz"]) > 0 and float(r["ran_at_mhz"]) > 0
