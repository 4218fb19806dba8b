from __future__ import annotations

import json
from pathlib import Path

from coordinator.store import Store


def test_rounds_survive_reopen_and_open_rounds_are_aborted(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    s = Store(db)
    s.upsert_device("a", {"samples": 10, "profile_json": json.dumps({"kappa": 1.0})})
    s.open_round(0, {"scheme": "fp32", "deadline_s": 10.0, "start_sha256": "x"})
    s.update_round(0, {"status": "completed", "checkpoint_path": "c0"})
    s.open_round(1, {"scheme": "fp32", "deadline_s": 10.0, "start_sha256": "y"})
    s.close()
    s = Store(db)  # a restarted coordinator
    assert s.abort_open_rounds("restart") == [1]
    assert s.last_completed_round()["checkpoint_path"] == "c0"
    assert s.next_round_number() == 2
    assert s.completed_rounds() == 1
    assert s.get_device("a")["samples"] == 10
    assert s.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_reports_and_assignments_round_trip(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite")
    s.upsert_device("a", {"samples": 5})
    s.open_round(0, {"scheme": "on-demand", "deadline_s": 5.0, "start_sha256": "x"})
    s.add_assignment(0, "a", {"mode": "stochastic", "bits": 4, "freq_hz": 1e9, "local_steps": 3})
    s.set_assignment_status(0, "a", "uploaded")
    s.record_report(0, "a", {"compute_energy_j": 2.5, "report_json": "{}"})
    assert s.assignments(0)[0]["status"] == "uploaded"
    assert s.reports(0)[0]["compute_energy_j"] == 2.5
    assert s.device_reports("a")[0]["round"] == 0
    s.event("refused", "x" * 5000, device_id="a")
    assert len(s.events("refused")[0]["message"]) == 2000


def test_a_store_from_before_the_link_columns_gains_them(tmp_path: Path) -> None:
    import sqlite3

    from coordinator.store import ADDED_COLUMNS

    db = tmp_path / "old.sqlite"
    Store(db).close()
    con = sqlite3.connect(db)  # make it look like a store written before these columns
    for table, column, _ in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.commit()
    con.close()
    s = Store(db)
    s.record_report(0, "a", {"link_kind": "shaped", "goodput_mbps": 4.8, "report_json": "{}"})
    assert s.reports(0)[0]["link_kind"] == "shaped"
    s.record_report(1, "a", {"error": "late", "report_json": "{}"})
    assert [r["round"] for r in s.device_reports("a")] == [0]
    assert [r["round"] for r in s.device_reports("a", with_errors=True)] == [1, 0]
