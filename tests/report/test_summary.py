"""Summary figures and answers from stores with known rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from coordinator.report import findings, load_run, summarize
from coordinator.report.verdict import NO, UNKNOWN, YES, quality_finding, setup_checks
from tests.report.conftest import SCOPE, make_store, two_rounds


def _summaries(root: Path) -> dict:
    return {s.scheme: summarize(s) for s in load_run(root).schemes}


def test_totals_count_completed_rounds_and_arrived_reports(experiment_dir: Path) -> None:
    s = _summaries(experiment_dir)
    fp32, od = s["fp32"], s["on-demand"]
    assert (fp32.rounds_completed, fp32.rounds_recorded) == (2, 3)
    assert fp32.compute_energy_j == pytest.approx(4 * 80.0)
    assert fp32.compute_dynamic_j == pytest.approx(4 * 40.0)
    assert fp32.comm_energy_j == pytest.approx(4 * 6.0)
    assert fp32.comm_dynamic_j == pytest.approx(4 * 3.0)
    assert fp32.total_energy_j == pytest.approx(344.0)
    assert fp32.per_round(fp32.total_dynamic_j) == pytest.approx(172.0 / 2)
    assert fp32.bytes_up == 4000
    assert fp32.mean_bits == 32
    assert fp32.mean_round_time_s == pytest.approx(40.0)
    assert (fp32.final_round, fp32.final_fd, fp32.final_floor) == (1, 2.0, 0.5)
    # Prediction 5 J against measured 40 + 3 J dynamic in every device-round.
    assert fp32.mean_abs_rel_error == pytest.approx(38.0 / 43.0)
    # On-demand: one report missing in round 1; its assignment still counts for the bits.
    assert od.missing_reports == 1 and od.device_rounds == 4
    assert od.compute_dynamic_j == pytest.approx(3 * 42.0)
    assert od.bytes_up == 450
    assert od.mean_bits == 4


def test_sources_and_flags_are_carried(experiment_dir: Path) -> None:
    od = _summaries(experiment_dir)["on-demand"]
    assert od.power_sources == [("estimated", SCOPE)]
    assert od.estimated == "all" and od.emulated_link == "all"
    assert od.link_mbps == [2.0]
    assert od.deadline_s == [60.0] and od.error_budget == [0.5]


def test_answers_on_known_figures(experiment_dir: Path) -> None:
    found = {f.key: f for f in findings(list(_summaries(experiment_dir).values()), 0.2)}
    assert found["bytes"].outcome == YES  # 225 B/round against fixed-8's 600
    assert "fixed-8" in found["bytes"].question
    assert found["energy_total"].outcome == YES  # 127.5 J/round against 172 J/round
    assert found["energy_comm"].outcome == YES
    assert found["quality"].outcome == YES  # 2.3 <= 1.2 x 2.0
    assert "2.400" in found["quality"].detail


def test_a_figure_that_goes_the_wrong_way_says_no(experiment_dir: Path) -> None:
    s = _summaries(experiment_dir)
    od = dataclasses.replace(s["on-demand"], compute_energy_j=1e6, bytes_up=10**7)
    found = {f.key: f for f in findings([s["fp32"], s["fixed-8"], od], 0.2)}
    assert found["energy_total"].outcome == NO
    assert found["bytes"].outcome == NO
    assert (
        found["energy_total"]
        .line()
        .startswith("Did on-demand use less energy than fp32 (total, compute + upload)? NO.")
    )


def test_quality_margin_boundary(experiment_dir: Path) -> None:
    s = _summaries(experiment_dir)
    ref = s["fp32"]  # final FD 2.0
    at = dataclasses.replace(s["on-demand"], final_fd=2.4)
    over = dataclasses.replace(s["on-demand"], final_fd=2.4001)
    assert quality_finding(at, ref, 0.2).outcome == YES
    assert quality_finding(over, ref, 0.2).outcome == NO
    assert quality_finding(over, ref, 0.25).outcome == YES
    assert quality_finding(None, ref, 0.2).outcome == UNKNOWN


def test_missing_scheme_cannot_say(tmp_path: Path) -> None:
    make_store(tmp_path / "greenfed.sqlite", "on-demand", two_rounds(4, 1.0, 1.0, 10, (1, 1)))
    found = findings([summarize(s) for s in load_run(tmp_path / "greenfed.sqlite").schemes])
    assert {f.outcome for f in found} == {UNKNOWN}


def test_setup_checks_state_differences(tmp_path: Path) -> None:
    a = make_store(tmp_path / "a.sqlite", "fp32", two_rounds(32, 1, 1, 1, (1, 1)), 60.0, 0.5)
    b = make_store(tmp_path / "b.sqlite", "on-demand", two_rounds(4, 1, 1, 1, (1, 1)), 90.0, 0.5)
    sums = [summarize(load_run(p).schemes[0]) for p in (a, b)]
    lines = setup_checks(sums)
    assert any("deadline was NOT the same" in line for line in lines)
    assert any("same absolute error budget: 0.5" in line for line in lines)


def test_gpu_training_and_the_gpu_rail_are_summarised_and_said(tmp_path: Path) -> None:
    from coordinator.report.text import banner
    from tests.report.conftest import report_fields

    def dev(gpu_j: float) -> tuple:
        rep = report_fields(10.0, 6.0, 1.0, 0.5, 100, 8)
        rep.update(train_device="cuda", compute_gpu_energy_j=gpu_j, gpu_rail="VDD_GPU_SOC (GPU)")
        return (8, 5.0, rep)

    path = tmp_path / "gpu" / "state" / "greenfed.sqlite"
    make_store(path, "on-demand", [{"fd": 3.0, "devices": {"a": dev(4.0), "b": dev(3.0)}}])
    (s,) = [summarize(r) for r in load_run(path).schemes]
    assert s.train_devices == ["cuda"] and s.gpu_rails == ["VDD_GPU_SOC (GPU)"]
    assert s.compute_gpu_energy_j == pytest.approx(7.0) and s.compute_energy_j == 20.0
    lines = banner([s])
    assert any("training devices: cuda" in x and "GPU clock" in x for x in lines)
    assert any("GPU rail VDD_GPU_SOC (GPU): 7.0 J of the 20.0 J compute energy" in x for x in lines)
    assert s.as_row()["train_devices"] == "cuda"


def test_a_store_of_the_first_schema_reads_without_the_new_columns(tmp_path: Path) -> None:
    """A report opens stores read-only: one written before the GPU columns still loads."""
    import sqlite3

    from coordinator.store import _SCHEMA_V1

    path = tmp_path / "old" / "state" / "greenfed.sqlite"
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("INSERT INTO devices (id, registered_at, last_seen, samples) VALUES ('a', 1, 1, 9)")
    db.execute(
        "INSERT INTO rounds (round, status, scheme, started_at, closed_at, deadline_s, "
        "start_sha256) VALUES (0, 'completed', 'fp32', 1, 2, 60, 'x')"
    )
    db.execute(
        "INSERT INTO assignments (round, device_id, mode, bits, freq_hz, local_steps, status) "
        "VALUES (0, 'a', 'fp32', 32, 1e9, 5, 'uploaded')"
    )
    db.execute(
        "INSERT INTO reports (round, device_id, received_at, compute_energy_j, report_json) "
        "VALUES (0, 'a', 3, 12.5, '{}')"
    )
    db.commit()
    db.close()
    (records,) = load_run(path).schemes
    (row,) = records.device_rounds
    assert row["compute_energy_j"] == 12.5 and row["train_device"] is None
    assert records.devices[0]["train_device"] is None
    s = summarize(records)
    assert s.train_devices == ["cpu"] and s.compute_gpu_energy_j is None
