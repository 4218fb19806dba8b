"""Coordinator state in SQLite (WAL): devices, rounds, assignments, uploads, reports, events.

One connection guarded by a lock: the coordinator's writes are few (a handful per device per
round), so serialising them costs nothing measurable and keeps transactions simple. Every
write commits at once, so a SIGKILL loses at most the statement in flight.

Rounds move ``open`` -> ``completed`` | ``failed`` | ``aborted`` (an open round found at
start-up, left by a killed coordinator). Checkpoints live on disk; the store keeps their path
and hash.

Schema versions: ``PRAGMA user_version`` says which of :data:`MIGRATIONS` a file has had;
opening applies the missing ones in order, in one transaction, and refuses a file written by a
newer greenfed (:class:`~coordinator.errors.StoreError`) instead of misreading it. A change of
schema is one more entry at the end of the list, never an edit of a shipped one. Stores of
the first release (``meta.schema_version = 1``, no ``user_version``) count as version 1.

This module is the one that knows column names: :func:`registration_columns` and
:func:`report_columns` turn the coordinator's values (coordinator.messages) into rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from coordinator.errors import StoreError
from coordinator.messages import Registration, Report

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    registered_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    samples INTEGER NOT NULL,
    board TEXT NOT NULL DEFAULT '',
    profile_json TEXT NOT NULL DEFAULT '{}',
    coeffs_json TEXT NOT NULL DEFAULT '{}',
    dvfs_available INTEGER NOT NULL DEFAULT 0,
    dvfs_reason TEXT NOT NULL DEFAULT '',
    bits_min INTEGER NOT NULL DEFAULT 0,
    bits_max INTEGER NOT NULL DEFAULT 0,
    link_mbps REAL NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    scheme TEXT NOT NULL,
    started_at REAL NOT NULL,
    closed_at REAL,
    deadline_s REAL NOT NULL,
    error_budget REAL,
    multiplier REAL,
    predicted_error REAL,
    predicted_energy_j REAL,
    start_sha256 TEXT NOT NULL,
    result_sha256 TEXT,
    checkpoint_path TEXT,
    quality_fd REAL,
    quality_floor REAL,
    quality_noise REAL,
    participants INTEGER NOT NULL DEFAULT 0,
    arrived INTEGER NOT NULL DEFAULT 0,
    update_sq_norm REAL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS assignments (
    round INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    bits INTEGER NOT NULL,
    freq_hz REAL NOT NULL,
    local_steps INTEGER NOT NULL,
    predicted_energy_j REAL,
    predicted_compute_j REAL,
    predicted_comm_j REAL,
    predicted_time_s REAL,
    status TEXT NOT NULL,
    PRIMARY KEY (round, device_id)
);
CREATE TABLE IF NOT EXISTS uploads (
    round INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    total_bytes INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished_at REAL,
    PRIMARY KEY (round, device_id)
);
CREATE TABLE IF NOT EXISTS reports (
    round INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    compute_energy_j REAL, compute_dynamic_j REAL, compute_time_s REAL,
    comm_energy_j REAL, comm_dynamic_j REAL, comm_time_s REAL,
    power_source TEXT, power_scope TEXT, estimated INTEGER,
    mean_freq_hz REAL, applied_freq_hz REAL, dvfs_applied INTEGER,
    bytes_up INTEGER, bits INTEGER, samples INTEGER, steps INTEGER,
    loss_first REAL, loss_last REAL,
    emulated_link INTEGER, link_mbps REAL,
    update_sq_error REAL, update_error_bound REAL, update_range REAL, update_norm REAL,
    error TEXT,
    report_json TEXT NOT NULL,
    PRIMARY KEY (round, device_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    device_id TEXT,
    round INTEGER,
    message TEXT NOT NULL
);
"""

# Version 2: LoRA adapters (docs/lora.md): the round's aggregation rule, and the quality of a
# device's personal and global adapters on its own held-out images.
_ADAPTERS_V2 = """
ALTER TABLE rounds ADD COLUMN aggregation TEXT NOT NULL DEFAULT 'fedavg';
ALTER TABLE reports ADD COLUMN personal_fd REAL;
ALTER TABLE reports ADD COLUMN global_fd_own REAL;
ALTER TABLE reports ADD COLUMN own_eval_images INTEGER;
"""

#: Migration i takes a store from version i to i + 1.
MIGRATIONS: List[str] = [_SCHEMA_V1, _ADAPTERS_V2]
SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if (
        version == 0
        and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
    ):
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0  # the first release wrote it here
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {version} is newer than this greenfed's "
            f"({SCHEMA_VERSION}); open it with the greenfed version that wrote it"
        )
    if version == SCHEMA_VERSION and db.execute("PRAGMA user_version").fetchone()[0]:
        return
    db.execute("BEGIN IMMEDIATE")  # one transaction: all missing migrations or none
    try:
        for sql in MIGRATIONS[version:]:
            for statement in sql.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise


def registration_columns(reg: Registration) -> Dict[str, Any]:
    """The devices row of a registration (``revoked`` reset: registering is enrolling)."""
    return {
        "samples": reg.samples,
        "board": reg.board,
        "profile_json": json.dumps(reg.profile),
        "dvfs_available": int(reg.dvfs_available),
        "dvfs_reason": reg.dvfs_reason,
        "bits_min": reg.bits_min,
        "bits_max": reg.bits_max,
        "link_mbps": reg.link_mbps,
        "revoked": 0,
    }


def report_columns(rep: Report) -> Dict[str, Any]:
    """The reports row of a round report: the compute and communicate windows flattened."""
    comp = rep.window("compute")
    comm = rep.window("communicate")
    ref = comp or comm
    return {
        "compute_energy_j": comp.energy_j if comp else None,
        "compute_dynamic_j": comp.dynamic_energy_j if comp else None,
        "compute_time_s": comp.duration_s if comp else None,
        "comm_energy_j": comm.energy_j if comm else None,
        "comm_dynamic_j": comm.dynamic_energy_j if comm else None,
        "comm_time_s": comm.duration_s if comm else None,
        "power_source": ref.source if ref else "",
        "power_scope": ref.scope if ref else "",
        "estimated": int(any(w.estimated for w in rep.windows)),
        "mean_freq_hz": comp.mean_freq_hz if comp else None,
        "applied_freq_hz": rep.applied_freq_hz,
        "dvfs_applied": int(rep.dvfs_applied),
        "bytes_up": rep.bytes_up,
        "bits": rep.bits,
        "samples": rep.samples,
        "steps": rep.steps,
        "loss_first": rep.loss_first,
        "loss_last": rep.loss_last,
        "emulated_link": int(rep.emulated_link),
        "link_mbps": rep.link_mbps,
        "update_sq_error": rep.update_sq_error,
        "update_error_bound": rep.update_error_bound,
        "update_range": rep.update_range,
        "update_norm": rep.update_norm,
        "error": rep.error or None,
        "personal_fd": rep.personal_fd,
        "global_fd_own": rep.global_fd_own,
        "own_eval_images": rep.own_eval_images,
        "report_json": rep.raw_json,
    }


class Store:
    """The coordinator's SQLite database. Thread-safe; every method commits."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                _migrate(self._db, self.path)
            except sqlite3.DatabaseError as e:
                self._db.close()
                raise StoreError(f"{self.path}: not a greenfed store ({e})") from e
            except StoreError:
                self._db.close()
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- generic helpers -------------------------------------------------------------------
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            cur = self._db.execute(sql, params)
            self._db.commit()
            return cur

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        """Rows of a read-only query as dicts (reports and tests use this)."""
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def count(self, table: str) -> int:
        if table not in ("devices", "rounds", "assignments", "uploads", "reports", "events"):
            raise ValueError(f"unknown table {table}")
        return int(self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])

    def get_meta(self, key: str) -> Optional[str]:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def totals(self) -> Dict[str, Any]:
        """Running totals for monitoring (coordinator.metrics): rounds by status, devices and
        revoked ones, accepted upload bytes, reported energy per window split by estimated,
        refused requests."""
        q = self.query
        by_status = {
            r["status"]: int(r["n"])
            for r in q("SELECT status, COUNT(*) AS n FROM rounds GROUP BY status")
        }
        dev = q("SELECT COUNT(*) AS n, COALESCE(SUM(revoked != 0), 0) AS revoked FROM devices")[0]
        up = q("SELECT COALESCE(SUM(total_bytes), 0) AS b FROM uploads WHERE status='accepted'")[0]
        e = q(
            "SELECT "
            "COALESCE(SUM(CASE WHEN estimated THEN compute_energy_j END), 0) AS ce, "
            "COALESCE(SUM(CASE WHEN NOT estimated THEN compute_energy_j END), 0) AS cm, "
            "COALESCE(SUM(CASE WHEN estimated THEN comm_energy_j END), 0) AS ne, "
            "COALESCE(SUM(CASE WHEN NOT estimated THEN comm_energy_j END), 0) AS nm "
            "FROM reports WHERE estimated IS NOT NULL"
        )[0]
        refused = q("SELECT COUNT(*) AS n FROM events WHERE kind = 'refused'")[0]
        return {
            "rounds_by_status": by_status,
            "devices": int(dev["n"]),
            "revoked": int(dev["revoked"]),
            "uploaded_bytes": float(up["b"]),
            # (window, estimated) -> joules
            "energy_j": {
                ("compute", False): float(e["cm"]),
                ("compute", True): float(e["ce"]),
                ("communicate", False): float(e["nm"]),
                ("communicate", True): float(e["ne"]),
            },
            "refusals": int(refused["n"]),
        }

    # -- devices ---------------------------------------------------------------------------
    def upsert_device(self, device_id: str, fields: Mapping[str, Any]) -> None:
        now = time.time()
        existing = self.get_device(device_id)
        cols = dict(fields)
        cols["last_seen"] = now
        if existing is None:
            cols.setdefault("registered_at", now)
            cols["id"] = device_id
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            self._exec(f"INSERT INTO devices ({names}) VALUES ({marks})", list(cols.values()))
        else:
            sets = ", ".join(f"{k} = ?" for k in cols)
            self._exec(f"UPDATE devices SET {sets} WHERE id = ?", [*cols.values(), device_id])

    def get_device(self, device_id: str) -> Optional[Dict[str, Any]]:
        rows = self.query("SELECT * FROM devices WHERE id = ?", (device_id,))
        return rows[0] if rows else None

    def devices(self) -> List[Dict[str, Any]]:
        return self.query("SELECT * FROM devices ORDER BY id")

    def touch_device(self, device_id: str) -> None:
        self._exec("UPDATE devices SET last_seen = ? WHERE id = ?", (time.time(), device_id))

    def set_device_coeffs(self, device_id: str, coeffs: Mapping[str, Any]) -> None:
        self._exec(
            "UPDATE devices SET coeffs_json = ? WHERE id = ?", (json.dumps(coeffs), device_id)
        )

    def set_revoked(self, device_id: str, revoked: bool) -> None:
        self._exec("UPDATE devices SET revoked = ? WHERE id = ?", (int(revoked), device_id))

    # -- rounds ----------------------------------------------------------------------------
    def open_round(self, round_no: int, fields: Mapping[str, Any]) -> None:
        cols = {"round": round_no, "status": "open", "started_at": time.time(), **fields}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self._exec(f"INSERT INTO rounds ({names}) VALUES ({marks})", list(cols.values()))

    def update_round(self, round_no: int, fields: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._exec(f"UPDATE rounds SET {sets} WHERE round = ?", [*fields.values(), round_no])

    def get_round(self, round_no: int) -> Optional[Dict[str, Any]]:
        rows = self.query("SELECT * FROM rounds WHERE round = ?", (round_no,))
        return rows[0] if rows else None

    def rounds(self) -> List[Dict[str, Any]]:
        return self.query("SELECT * FROM rounds ORDER BY round")

    def last_completed_round(self) -> Optional[Dict[str, Any]]:
        rows = self.query(
            "SELECT * FROM rounds WHERE status = 'completed' ORDER BY round DESC LIMIT 1"
        )
        return rows[0] if rows else None

    def next_round_number(self) -> int:
        rows = self.query("SELECT MAX(round) AS m FROM rounds")
        m = rows[0]["m"]
        return 0 if m is None else int(m) + 1

    def completed_rounds(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM rounds WHERE status='completed'")[0]["n"])

    def abort_open_rounds(self, note: str) -> List[int]:
        """Mark rounds left open by a killed coordinator as aborted; returns their numbers."""
        rows = self.query("SELECT round FROM rounds WHERE status = 'open'")
        for r in rows:
            self.update_round(
                r["round"], {"status": "aborted", "closed_at": time.time(), "note": note}
            )
        return [int(r["round"]) for r in rows]

    # -- assignments, uploads, reports -----------------------------------------------------
    def add_assignment(self, round_no: int, device_id: str, fields: Mapping[str, Any]) -> None:
        cols = {"round": round_no, "device_id": device_id, "status": "assigned", **fields}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self._exec(f"INSERT INTO assignments ({names}) VALUES ({marks})", list(cols.values()))

    def set_assignment_status(self, round_no: int, device_id: str, status: str) -> None:
        self._exec(
            "UPDATE assignments SET status = ? WHERE round = ? AND device_id = ?",
            (status, round_no, device_id),
        )

    def assignments(self, round_no: int) -> List[Dict[str, Any]]:
        return self.query(
            "SELECT * FROM assignments WHERE round = ? ORDER BY device_id", (round_no,)
        )

    def record_upload(
        self, round_no: int, device_id: str, sha256: str, total_bytes: int, samples: int
    ) -> None:
        self._exec(
            "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, 'accepted', ?)",
            (round_no, device_id, sha256, total_bytes, samples, time.time()),
        )

    def get_upload(self, round_no: int, device_id: str) -> Optional[Dict[str, Any]]:
        rows = self.query(
            "SELECT * FROM uploads WHERE round = ? AND device_id = ?", (round_no, device_id)
        )
        return rows[0] if rows else None

    def record_report(self, round_no: int, device_id: str, fields: Mapping[str, Any]) -> None:
        cols = {"round": round_no, "device_id": device_id, "received_at": time.time(), **fields}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self._exec(
            f"INSERT OR REPLACE INTO reports ({names}) VALUES ({marks})", list(cols.values())
        )

    def reports(self, round_no: Optional[int] = None) -> List[Dict[str, Any]]:
        if round_no is None:
            return self.query("SELECT * FROM reports ORDER BY round, device_id")
        return self.query("SELECT * FROM reports WHERE round = ? ORDER BY device_id", (round_no,))

    def device_reports(self, device_id: str, limit: int = 20) -> List[Dict[str, Any]]:
        return self.query(
            "SELECT * FROM reports WHERE device_id = ? AND (error IS NULL OR error = '') "
            "ORDER BY round DESC LIMIT ?",
            (device_id, limit),
        )

    def event(
        self,
        kind: str,
        message: str,
        device_id: Optional[str] = None,
        round_no: Optional[int] = None,
    ) -> None:
        self._exec(
            "INSERT INTO events (at, kind, device_id, round, message) VALUES (?, ?, ?, ?, ?)",
            (time.time(), kind, device_id, round_no, message[:2000]),
        )

    def events(self, kind: Optional[str] = None) -> List[Dict[str, Any]]:
        if kind is None:
            return self.query("SELECT * FROM events ORDER BY id")
        return self.query("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))

    def iter_table(self, table: str) -> Iterator[Dict[str, Any]]:
        self.count(table)  # validates the name
        yield from self.query(f"SELECT * FROM {table}")
