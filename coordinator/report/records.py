"""Load stored records for a report: one coordinator store per scheme, opened read-only.

A report source is one of:

- an experiment directory (``experiment.json`` names the schemes; each scheme's store is
  ``<dir>/<scheme>/state/greenfed.sqlite``);
- any run directory holding ``state/greenfed.sqlite`` (a demo) or ``*/state/greenfed.sqlite``;
- a store file (``greenfed.sqlite``) itself.

Stores are opened with SQLite's read-only URI mode: a report never writes to the records it
reads (``coordinator.store.Store`` would create missing tables in whatever file it opens).

Errors: :class:`ReportError` (a ValueError) for a missing path or a file that is not a
greenfed store, with a message that names the path and the problem.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from coordinator.errors import ReportError

STORE_NAME = "greenfed.sqlite"
REQUIRED_TABLES = ("meta", "devices", "rounds", "assignments", "reports")


@dataclass
class SchemeRecords:
    """Everything one store holds that a report uses; rows are plain dicts of stored columns."""

    label: str  # the scheme (from the rounds table), or the store's folder name
    store_path: Path
    rounds: List[Dict[str, Any]]
    device_rounds: List[Dict[str, Any]]  # assignments LEFT JOIN reports, one per device-round
    devices: List[Dict[str, Any]]

    @property
    def aggregation(self) -> str:
        """The run's aggregation rule (stores before adapters existed: fedavg)."""
        rules = sorted({str(r.get("aggregation") or "fedavg") for r in self.rounds})
        return rules[0] if len(rules) == 1 else "mixed"

    @property
    def scheme(self) -> str:
        """The run's name in a report: its scheme, prefixed by the aggregation rule when that
        is not full-model FedAvg (``ffa-on-demand``), as ``experiment`` names its folders."""
        schemes = sorted({str(r["scheme"]) for r in self.rounds})
        if len(schemes) != 1:
            return self.label
        rule = self.aggregation
        return schemes[0] if rule == "fedavg" else f"{rule}-{schemes[0]}"

    def completed(self) -> List[Dict[str, Any]]:
        return [r for r in self.rounds if r["status"] == "completed"]


@dataclass
class RunRecords:
    """The schemes of one run (in experiment order) and the experiment setup, if any."""

    source: Path
    schemes: List[SchemeRecords]
    experiment: Dict[str, Any] = field(default_factory=dict)
    fleet_study_csv: Optional[Path] = None

    def by_scheme(self, scheme: str) -> Optional[SchemeRecords]:
        for s in self.schemes:
            if s.scheme == scheme:
                return s
        return None


# The device-round record: assignment columns, then report columns (``report_`` prefix where
# names collide), with the round's scheme and status. Stored values only, nothing derived.
_ASSIGNMENT_COLS = (
    "mode", "bits", "freq_hz", "local_steps", "predicted_energy_j", "predicted_compute_j",
    "predicted_comm_j", "predicted_time_s",
)  # fmt: skip
_REPORT_COLS = (
    "compute_energy_j", "compute_dynamic_j", "compute_time_s", "comm_energy_j",
    "comm_dynamic_j", "comm_time_s", "power_source", "power_scope", "estimated",
    "mean_freq_hz", "applied_freq_hz", "dvfs_applied", "bytes_up", "samples", "steps",
    "loss_first", "loss_last", "emulated_link", "link_mbps", "update_sq_error",
    "update_error_bound", "update_range", "update_norm", "link_kind", "link_profile",
    "goodput_mbps", "train_device", "compute_gpu_energy_j", "gpu_rail", "personal_fd",
    "global_fd_own", "own_eval_images",
)  # fmt: skip
# Columns added by later schema versions read as NULL from a store written before them.
_DEVICE_COLS = (
    "id", "samples", "board", "dvfs_available", "dvfs_reason", "link_mbps", "profile_json",
    "coeffs_json", "train_device",
)  # fmt: skip
# Report columns added by a later store version: read as NULL from older stores.
_RENAMED = {
    "p.bits": "report_bits",
    "p.error": "report_error",
    "p.received_at": "report_received_at",
}
_SELECT = [
    ("r.scheme", "scheme"),
    ("a.round", "round"),
    ("r.status", "round_status"),
    ("a.device_id", "device_id"),
    ("a.status", "assignment_status"),
    *((f"a.{c}", c) for c in _ASSIGNMENT_COLS),
    *((f"p.{c}", c) for c in _REPORT_COLS),
    *_RENAMED.items(),
]
DEVICE_ROUND_COLUMNS: List[str] = [alias for _, alias in _SELECT]


def _device_round_sql(report_columns: Set[str]) -> str:
    """The device-round query; report columns a store predates read as NULL."""

    def expr(e: str) -> str:
        table, _, col = e.partition(".")
        return "NULL" if table == "p" and col not in report_columns else e

    return (
        "SELECT "
        + ", ".join(f"{expr(e)} AS {alias}" for e, alias in _SELECT)
        + " FROM assignments a JOIN rounds r ON r.round = a.round"
        + " LEFT JOIN reports p ON p.round = a.round AND p.device_id = a.device_id"
        + " ORDER BY a.round, a.device_id"
    )


def connect_ro(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise ReportError(f"{path}: not a greenfed store (SQLite says: {e})") from e
    missing = [t for t in REQUIRED_TABLES if t not in names]
    if missing:
        db.close()
        raise ReportError(f"{path}: not a greenfed store (missing tables: {', '.join(missing)})")
    return db


def load_store(path: Path, label: Optional[str] = None) -> SchemeRecords:
    """Read one store; ``label`` names it where its rounds do not (an empty store)."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such store file")
    db = connect_ro(path)
    try:
        rounds = [dict(r) for r in db.execute("SELECT * FROM rounds ORDER BY round")]
        have = {r[1] for r in db.execute("PRAGMA table_info(reports)")}
        device_rounds = [dict(r) for r in db.execute(_device_round_sql(have))]
        dev_have = {r[1] for r in db.execute("PRAGMA table_info(devices)")}
        picked = ", ".join(c if c in dev_have else f"NULL AS {c}" for c in _DEVICE_COLS)
        devices = [dict(r) for r in db.execute(f"SELECT {picked} FROM devices ORDER BY id")]
    finally:
        db.close()
    name = label or (path.parent.parent.name if path.parent.name == "state" else path.stem)
    return SchemeRecords(name, path, rounds, device_rounds, devices)


def _stores_in(directory: Path) -> List[Path]:
    direct = [directory / STORE_NAME, directory / "state" / STORE_NAME]
    found = [p for p in direct if p.is_file()]
    found += sorted(directory.glob(f"*/state/{STORE_NAME}"))
    return found


def load_run(source: Path) -> RunRecords:
    """Records of an experiment directory, a run directory or one store file."""
    source = Path(source)
    if not source.exists():
        raise ReportError(f"{source}: no such file or directory")
    if source.is_file():
        return RunRecords(source, [load_store(source)])
    experiment: Dict[str, Any] = {}
    exp_path = source / "experiment.json"
    if exp_path.is_file():
        try:
            experiment = json.loads(exp_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ReportError(f"{exp_path}: not valid JSON ({e})") from e
        paths = []
        # "runs" (aggregation x scheme, named like ffa-on-demand) where an experiment compared
        # aggregation rules, else one run per scheme.
        labels = [r["label"] for r in experiment.get("runs", [])] or experiment.get("schemes", [])
        for label in labels:
            p = source / label / "state" / STORE_NAME
            if p.is_file():
                paths.append((p, label))
    else:
        paths = [(p, None) for p in _stores_in(source)]
    if not paths:
        raise ReportError(
            f"{source}: not a greenfed run directory (no experiment.json with stored schemes, "
            f"no {STORE_NAME} under state/ or */state/)"
        )
    fleet = source / "fleet-study" / "simulate.csv"
    return RunRecords(
        source,
        [load_store(p, label) for p, label in paths],
        experiment,
        fleet if fleet.is_file() else None,
    )
