from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_schema_version_is_recorded_and_checked_at_open(tmp_path: Path) -> None:
    import sqlite3

    from coordinator.errors import StoreError
    from coordinator.store import SCHEMA_VERSION

    path = tmp_path / "state.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")  # written by a newer greenfed
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1} is newer"):
        Store(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a greenfed store"):
        Store(junk)


def test_a_first_release_store_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    """The first release set meta.schema_version = 1 and no user_version."""
    import sqlite3

    from coordinator.store import _SCHEMA_V1, SCHEMA_VERSION

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO devices (id, registered_at, last_seen, samples) VALUES ('pi-1', 1, 1, 40)"
    )
    db.commit()
    db.close()
    s = Store(path)
    assert s.get_device("pi-1")["samples"] == 40  # type: ignore[index]
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_before_the_link_columns_gains_them(tmp_path: Path) -> None:
    import sqlite3

    from coordinator.store import MIGRATIONS

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)  # a store as version 2 wrote it: the first two migrations only
    for sql in MIGRATIONS[:2]:
        con.executescript(sql)
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    s = Store(db)
    s.record_report(0, "a", {"link_kind": "shaped", "goodput_mbps": 4.8, "report_json": "{}"})
    assert s.reports(0)[0]["link_kind"] == "shaped"
    s.record_report(1, "a", {"error": "late", "report_json": "{}"})
    assert [r["round"] for r in s.device_reports("a")] == [0]
    assert [r["round"] for r in s.device_reports("a", with_errors=True)] == [1, 0]
