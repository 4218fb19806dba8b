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

# Issue 14: where a device trains (cpu / cuda) and the GPU rail's energy beside the total.
_TRAIN_DEVICE_AND_GPU_RAIL = """
ALTER TABLE devices ADD COLUMN train_device TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN device_name TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN train_device TEXT;
ALTER TABLE reports ADD COLUMN compute_gpu_energy_j REAL;
ALTER TABLE reports ADD COLUMN gpu_rail TEXT;
"""

# Issue 15: the link a device had (shaped/emulated, its configured profile) and the measured
# upload goodput (bytes_up * 8 / upload_time_s / 1e6, Mbit/s).
_LINK_RECORD = """
ALTER TABLE reports ADD COLUMN link_kind TEXT;
ALTER TABLE reports ADD COLUMN link_profile TEXT;
ALTER TABLE reports ADD COLUMN goodput_mbps REAL;
"""

# Issue 17: repeated events (refusals, re-registrations) of one device and kind are one row
# with a count and the time of the last one, so floods cannot grow the table.
_EVENT_COUNTS = """
ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN last_at REAL;
"""

# Issue 20: a participant that is a pool of boards (docs/pools.md): each member's own figures
# per round, and on its report row the structure it trained with and the planner's prediction.
_POOLS = """
CREATE TABLE IF NOT EXISTS pool_members (
    round INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    compute_energy_j REAL, compute_dynamic_j REAL, compute_time_s REAL,
    exchange_energy_j REAL, exchange_dynamic_j REAL, exchange_time_s REAL,
    bytes_sent INTEGER, bytes_received INTEGER,
    freq_hz REAL, dvfs_applied INTEGER,
    stage_start INTEGER, stage_stop INTEGER,
    predicted_energy_j REAL,
    power_source TEXT, power_scope TEXT, estimated INTEGER,
    PRIMARY KEY (round, device_id, member_id)
);
ALTER TABLE reports ADD COLUMN pool_parallelism TEXT;
ALTER TABLE reports ADD COLUMN pool_predicted_energy_j REAL;
"""

# Issue 19: LoRA adapters (docs/lora.md): the round's aggregation rule, and the quality of a
# device's personal and global adapters on its own held-out images.
_ADAPTERS = """
ALTER TABLE rounds ADD COLUMN aggregation TEXT NOT NULL DEFAULT 'fedavg';
ALTER TABLE reports ADD COLUMN personal_fd REAL;
ALTER TABLE reports ADD COLUMN global_fd_own REAL;
ALTER TABLE reports ADD COLUMN own_eval_images INTEGER;
"""

#: Migration i takes a store from version i to i + 1.
MIGRATIONS: List[str] = [
    _SCHEMA_V1,
    _TRAIN_DEVICE_AND_GPU_RAIL,
    _LINK_RECORD,
    _EVENT_COUNTS,
    _POOLS,
    _ADAPTERS,
]
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("devices", "rounds", "assignments", "uploads", "reports", "events", "pool_members")


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
        "train_device": reg.train_device or "cpu",
        "device_name": reg.device_name,
        "revoked": 0,
    }


def report_columns(rep: Report) -> Dict[str, Any]:
    """The reports row of a round report: the compute and communicate windows flattened.

    ``mean_freq_hz`` is the compute clock the device reported (its GPU's under CUDA);
    ``compute_gpu_energy_j`` the GPU rail's part of ``compute_energy_j`` (None: no rail)."""
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
        "compute_gpu_energy_j": comp.gpu_energy_j if comp and comp.gpu_rail else None,
        "gpu_rail": (comp.gpu_rail or None) if comp else None,
        "train_device": rep.train_device or "cpu",
        "applied_freq_hz": rep.applied_freq_hz,
        "dvfs_applied": int(rep.dvfs_applied),
        "bytes_up": rep.bytes_up,
        "bits": rep.bits,
        "samples": rep.samples,
        "steps": rep.steps,
        "loss_first": rep.loss_first,
        "loss_last": rep.loss_last,
        "emulated_link": int(rep.emulated_link),
        "link_kind": rep.link_kind,
        "link_profile": rep.link_profile,
        "goodput_mbps": rep.goodput_mbps,
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
        "pool_parallelism": rep.pool.parallelism if rep.pool is not None else None,
        "pool_predicted_energy_j": rep.pool.predicted_energy_j if rep.pool is not None else None,
    }


def pool_member_rows(rep: Report) -> List[Dict[str, Any]]:
    """The pool_members rows of a pool's report (none for a single board)."""
    if rep.pool is None:
        return []
    rows = []
    for m in rep.pool.members:
        comp, exch = m.window("compute"), m.window("exchange")
        ref = comp or exch
        rows.append(
            {
                "member_id": m.member_id,
                "rank": m.rank,
                "compute_energy_j": comp.energy_j if comp else None,
                "compute_dynamic_j": comp.dynamic_energy_j if comp else None,
                "compute_time_s": m.compute_s,
                "exchange_energy_j": exch.energy_j if exch else None,
                "exchange_dynamic_j": exch.dynamic_energy_j if exch else None,
                "exchange_time_s": m.exchange_s,
                "bytes_sent": m.bytes_sent,
                "bytes_received": m.bytes_received,
                "freq_hz": m.freq_hz,
                "dvfs_applied": int(m.dvfs_applied),
                "stage_start": m.stage_start,
                "stage_stop": m.stage_stop,
                "predicted_energy_j": m.predicted_energy_j,
                "power_source": ref.source if ref else "",
                "power_scope": ref.scope if ref else "",
                "estimated": int(any(w.estimated for w in m.windows)),
            }
        )
    return rows


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
        if table not in TABLES:
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
        refused = q("SELECT COALESCE(SUM(count), 0) AS n FROM events WHERE kind = 'refused'")[0]
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
        """Insert a round's report (one per device and round: a second one is an error)."""
        cols = {"round": round_no, "device_id": device_id, "received_at": time.time(), **fields}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self._exec(f"INSERT INTO reports ({names}) VALUES ({marks})", list(cols.values()))

    def has_report(self, round_no: int, device_id: str) -> bool:
        return bool(
            self.query(
                "SELECT 1 FROM reports WHERE round = ? AND device_id = ?", (round_no, device_id)
            )
        )

    def record_pool_members(
        self, round_no: int, device_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """A pool's members' rows for a round (replacing any sent before)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM pool_members WHERE round = ? AND device_id = ?", (round_no, device_id)
            )
            for row in rows:
                cols = {"round": round_no, "device_id": device_id, **row}
                names = ", ".join(cols)
                marks = ", ".join("?" for _ in cols)
                self._db.execute(
                    f"INSERT INTO pool_members ({names}) VALUES ({marks})", list(cols.values())
                )
            self._db.commit()

    def pool_members(self, round_no: Optional[int] = None) -> List[Dict[str, Any]]:
        if round_no is None:
            return self.query("SELECT * FROM pool_members ORDER BY round, device_id, rank")
        return self.query(
            "SELECT * FROM pool_members WHERE round = ? ORDER BY device_id, rank", (round_no,)
        )

    def reports(self, round_no: Optional[int] = None) -> List[Dict[str, Any]]:
        if round_no is None:
            return self.query("SELECT * FROM reports ORDER BY round, device_id")
        return self.query("SELECT * FROM reports WHERE round = ? ORDER BY device_id", (round_no,))

    def device_reports(
        self, device_id: str, limit: int = 20, with_errors: bool = False
    ) -> List[Dict[str, Any]]:
        """A device's latest reports, newest first; those with an error only if asked."""
        ok = "" if with_errors else " AND (error IS NULL OR error = '')"
        return self.query(
            f"SELECT * FROM reports WHERE device_id = ?{ok} ORDER BY round DESC LIMIT ?",
            (device_id, limit),
        )

    def event(
        self,
        kind: str,
        message: str,
        device_id: Optional[str] = None,
        round_no: Optional[int] = None,
    ) -> int:
        """Insert one event (``count`` 1); returns its id for :meth:`bump_event`."""
        now = time.time()
        cur = self._exec(
            "INSERT INTO events (at, kind, device_id, round, message, count, last_at) "
            "VALUES (?, ?, ?, ?, ?, 1, ?)",
            (now, kind, device_id, round_no, message[:2000], now),
        )
        return int(cur.lastrowid or 0)

    def bump_event(self, event_id: int, count: int, last_at: float, message: str) -> None:
        """Set an event's count of repeats, the time of the last one and its latest message."""
        self._exec(
            "UPDATE events SET count = ?, last_at = ?, message = ? WHERE id = ?",
            (count, last_at, message[:2000], event_id),
        )

    def events(self, kind: Optional[str] = None) -> List[Dict[str, Any]]:
        if kind is None:
            return self.query("SELECT * FROM events ORDER BY id")
        return self.query("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))

    def iter_table(self, table: str) -> Iterator[Dict[str, Any]]:
        self.count(table)  # validates the name
        yield from self.query(f"SELECT * FROM {table}")
