"""A GPU-training device's registration and round report, through serde, validation and the
store: the training device, the GPU rail beside the total, and the schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator.errors import InvalidRequest
from coordinator.serde import registration_from_pb, report_from_pb
from coordinator.store import _SCHEMA_V1, SCHEMA_VERSION, Store, report_columns
from coordinator.validation import check_registration, check_report
from greenfed.v1 import fleet_pb2 as pb


def _report(gpu_j: float, total_j: float = 20.0) -> pb.RoundReport:
    w = pb.EnergyWindow(
        name="compute", energy_j=total_j, dynamic_energy_j=total_j / 2, duration_s=4.0,
        mean_power_w=total_j / 4, peak_power_w=total_j / 3, samples=40, mean_freq_hz=612e6,
        source="ina3221-hwmon", scope="VDD_IN (module input, INA3221 1-0040)",
        gpu_energy_j=gpu_j, gpu_rail="VDD_CPU_GPU_CV (CPU, GPU and CV combined)",
    )  # fmt: skip
    return pb.RoundReport(
        round=0, windows=[w], train_device="cuda", applied_freq_hz=306e6, dvfs_applied=True
    )


def test_a_gpu_device_registers_and_reports_into_the_store(tmp_path: Path) -> None:
    profile = pb.CalibrationProfile(f_min_hz=306e6, f_max_hz=1020e6, clock="gpu-devfreq")
    req = pb.RegisterRequest(samples=100, board="jetson-orin-nano", profile=profile)
    req.train_device, req.device_name = "cuda", "cuda:0 Orin"
    reg = registration_from_pb(req)
    check_registration(reg)
    rep = report_from_pb(_report(5.7))
    check_report(rep)
    cols = report_columns(rep)
    assert cols["train_device"] == "cuda" and cols["mean_freq_hz"] == 612e6
    assert cols["compute_gpu_energy_j"] == pytest.approx(5.7) and cols["compute_energy_j"] == 20.0
    assert cols["gpu_rail"].startswith("VDD_CPU_GPU_CV")
    s = Store(tmp_path / "s.sqlite")
    from coordinator.store import registration_columns

    s.upsert_device("orin", registration_columns(reg))
    s.record_report(0, "orin", cols)
    assert s.get_device("orin")["train_device"] == "cuda"  # type: ignore[index]
    assert s.reports(0)[0]["compute_gpu_energy_j"] == pytest.approx(5.7)


def test_a_report_without_a_gpu_rail_stores_none_and_an_old_agent_counts_as_cpu() -> None:
    rep = report_from_pb(pb.RoundReport(round=0, windows=[pb.EnergyWindow(name="compute")]))
    cols = report_columns(rep)
    assert cols["compute_gpu_energy_j"] is None and cols["gpu_rail"] is None
    assert cols["train_device"] == "cpu"


def test_a_gpu_rail_above_the_windows_total_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"windows\[compute\].gpu_energy_j"):
        check_report(report_from_pb(_report(25.0, total_j=20.0)))
    with pytest.raises(InvalidRequest, match="train_device is 40 characters"):
        check_report(report_from_pb(pb.RoundReport(round=0, train_device="x" * 40)))


def test_a_first_schema_store_gains_the_device_and_gpu_columns(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO devices (id, registered_at, last_seen, samples) VALUES ('pi', 1, 1, 9)")
    db.execute(
        "INSERT INTO reports (round, device_id, received_at, report_json) VALUES (0, 'pi', 1, '{}')"
    )
    db.commit()
    db.close()
    s = Store(path)
    assert s.get_device("pi")["train_device"] == ""  # type: ignore[index]
    old = s.reports(0)[0]
    assert old["train_device"] is None and old["compute_gpu_energy_j"] is None
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
