"""Summary figures per scheme, computed from stored device-round and round records only.

Conventions (the report's text repeats them):

- Only **completed** rounds count. A device-round counts when its report arrived; device-rounds
  without a report add no energy and no bytes (their number is given as ``missing_reports``).
- ``compute`` is the agent's compute window (local training + encoding); ``comm`` is its upload
  window. The download window is kept in each report's ``report_json`` and not counted here.
- ``total`` energy is what the power source measured (or estimated) over the window; ``dynamic``
  is total minus the device's idle power over the same time. The allocator predicts dynamic
  energy, so predicted-vs-measured compares dynamic figures.
- Per-round figures are totals divided by the number of completed rounds.
- ``compute_gpu_energy_j`` is the GPU rail's part of the compute energy where the boards have
  such a rail (None where none reported one): a part of the total, never added to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from coordinator.report.records import SchemeRecords


def _sum(rows: Sequence[Dict[str, Any]], key: str) -> float:
    return float(sum(r[key] or 0.0 for r in rows))


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(sum(values) / len(values)) if values else None


def measured_dynamic_j(row: Dict[str, Any]) -> Optional[float]:
    """compute_dynamic_j + comm_dynamic_j of one device-round; None without a report."""
    if row.get("compute_dynamic_j") is None and row.get("comm_dynamic_j") is None:
        return None
    return float((row.get("compute_dynamic_j") or 0.0) + (row.get("comm_dynamic_j") or 0.0))


def relative_error(predicted: Optional[float], measured: Optional[float]) -> Optional[float]:
    """(predicted - measured) / measured; None when either is missing or measured is 0."""
    if predicted is None or measured is None or measured == 0:
        return None
    return (float(predicted) - float(measured)) / float(measured)


@dataclass
class SchemeSummary:
    scheme: str
    store: str
    rounds_completed: int
    rounds_recorded: int
    device_rounds: int  # assignments in completed rounds
    missing_reports: int
    compute_energy_j: float
    comm_energy_j: float
    compute_dynamic_j: float
    comm_dynamic_j: float
    bytes_up: int
    mean_bits: Optional[float]
    mean_round_time_s: Optional[float]
    final_round: Optional[int]
    final_fd: Optional[float]
    final_floor: Optional[float]
    final_noise: Optional[float]
    predicted_dynamic_j: float
    mean_abs_rel_error: Optional[float]  # |predicted - measured| / measured, dynamic, per row
    deadline_s: List[float] = field(default_factory=list)  # distinct values over the rounds
    error_budget: List[float] = field(default_factory=list)
    power_sources: List[Tuple[str, str]] = field(default_factory=list)  # (source, scope)
    estimated: str = "none"  # "all", "some" or "none" of the counted device-rounds
    emulated_link: str = "none"
    link_mbps: List[float] = field(default_factory=list)
    train_devices: List[str] = field(default_factory=list)  # "cpu", "cuda" (distinct)
    compute_gpu_energy_j: Optional[float] = None  # the GPU rail's part of compute_energy_j
    gpu_rails: List[str] = field(default_factory=list)
    shaped_link: str = "none"  # device-rounds over kernel-shaped links (netns/tc)
    mean_goodput_mbps: Optional[float] = None  # measured upload goodput, mean over reports
    aggregation: str = "fedavg"
    # Personal adapters, in the last completed round where devices scored them: devices
    # scored, how many scored their personal model better than the global one on their own
    # held-out images, and the mean FDs.
    personal_round: Optional[int] = None
    personal_devices: int = 0
    personal_wins: int = 0
    personal_fd_mean: Optional[float] = None
    global_fd_own_mean: Optional[float] = None

    @property
    def total_energy_j(self) -> float:
        return self.compute_energy_j + self.comm_energy_j

    @property
    def total_dynamic_j(self) -> float:
        return self.compute_dynamic_j + self.comm_dynamic_j

    def per_round(self, value: float) -> Optional[float]:
        return value / self.rounds_completed if self.rounds_completed else None

    def as_row(self) -> Dict[str, Any]:
        """Flat dict for summary.csv (lists joined with ';')."""
        row = asdict(self)
        row["total_energy_j"] = self.total_energy_j
        row["total_dynamic_j"] = self.total_dynamic_j
        row["energy_per_round_j"] = self.per_round(self.total_energy_j)
        row["dynamic_per_round_j"] = self.per_round(self.total_dynamic_j)
        row["bytes_per_round"] = self.per_round(float(self.bytes_up))
        row["deadline_s"] = ";".join(f"{v:g}" for v in self.deadline_s)
        row["error_budget"] = ";".join(f"{v:g}" for v in self.error_budget)
        row["power_sources"] = ";".join(f"{s} ({scope})" for s, scope in self.power_sources)
        row["link_mbps"] = ";".join(f"{v:g}" for v in self.link_mbps)
        row["train_devices"] = ";".join(self.train_devices)
        row["gpu_rails"] = ";".join(self.gpu_rails)
        return row


def _share(flags: Sequence[bool]) -> str:
    if not flags or not any(flags):
        return "none"
    return "all" if all(flags) else "some"


def counted_rows(records: SchemeRecords) -> List[Dict[str, Any]]:
    """Device-rounds of completed rounds (with or without a report)."""
    return [r for r in records.device_rounds if r["round_status"] == "completed"]


def personal_scores(records: SchemeRecords) -> Tuple[Optional[int], List[Dict[str, Any]]]:
    """The last completed round in which devices scored personal adapters, and those rows."""
    scored = [
        r
        for r in counted_rows(records)
        if r.get("personal_fd") is not None and r.get("global_fd_own") is not None
    ]
    if not scored:
        return None, []
    last = max(int(r["round"]) for r in scored)
    return last, [r for r in scored if int(r["round"]) == last]


def summarize(records: SchemeRecords) -> SchemeSummary:
    rounds = records.completed()
    rows = counted_rows(records)
    reported = [r for r in rows if r["report_received_at"] is not None]
    times = [
        float(r["closed_at"]) - float(r["started_at"]) for r in rounds if r["closed_at"] is not None
    ]
    final = rounds[-1] if rounds else None
    errors = [
        abs(e)
        for e in (relative_error(r["predicted_energy_j"], measured_dynamic_j(r)) for r in reported)
        if e is not None
    ]
    sources = sorted({(str(r["power_source"]), str(r["power_scope"])) for r in reported})
    with_gpu = [r for r in reported if r.get("compute_gpu_energy_j") is not None]
    personal_round, personal = personal_scores(records)
    return SchemeSummary(
        scheme=records.scheme,
        store=str(records.store_path),
        rounds_completed=len(rounds),
        rounds_recorded=len(records.rounds),
        device_rounds=len(rows),
        missing_reports=len(rows) - len(reported),
        compute_energy_j=_sum(reported, "compute_energy_j"),
        comm_energy_j=_sum(reported, "comm_energy_j"),
        compute_dynamic_j=_sum(reported, "compute_dynamic_j"),
        comm_dynamic_j=_sum(reported, "comm_dynamic_j"),
        bytes_up=int(_sum(reported, "bytes_up")),
        mean_bits=_mean([float(r["bits"]) for r in rows]),
        mean_round_time_s=_mean(times),
        final_round=None if final is None else int(final["round"]),
        final_fd=None if final is None else final["quality_fd"],
        final_floor=None if final is None else final["quality_floor"],
        final_noise=None if final is None else final["quality_noise"],
        predicted_dynamic_j=_sum(reported, "predicted_energy_j"),
        mean_abs_rel_error=_mean(errors),
        deadline_s=sorted({float(r["deadline_s"]) for r in rounds}),
        error_budget=sorted({float(r["error_budget"]) for r in rounds if r["error_budget"]}),
        power_sources=sources,
        estimated=_share([bool(r["estimated"]) for r in reported]),
        emulated_link=_share([bool(r["emulated_link"]) for r in reported]),
        link_mbps=sorted({float(r["link_mbps"]) for r in reported if r["link_mbps"]}),
        train_devices=sorted({str(r.get("train_device") or "cpu") for r in reported}),
        compute_gpu_energy_j=_sum(with_gpu, "compute_gpu_energy_j") if with_gpu else None,
        gpu_rails=sorted({str(r["gpu_rail"]) for r in with_gpu if r.get("gpu_rail")}),
        shaped_link=_share([r.get("link_kind") == "shaped" for r in reported]),
        mean_goodput_mbps=_mean(
            [float(r["goodput_mbps"]) for r in reported if r.get("goodput_mbps")]
        ),
        aggregation=records.aggregation,
        personal_round=personal_round,
        personal_devices=len(personal),
        personal_wins=sum(1 for r in personal if r["personal_fd"] < r["global_fd_own"]),
        personal_fd_mean=_mean([float(r["personal_fd"]) for r in personal]),
        global_fd_own_mean=_mean([float(r["global_fd_own"]) for r in personal]),
    )


def per_round_series(records: SchemeRecords) -> List[Dict[str, Any]]:
    """One dict per completed round: energy split, bytes, mean bits, quality (for plots)."""
    out = []
    rows = counted_rows(records)
    for r in records.completed():
        mine = [x for x in rows if x["round"] == r["round"]]
        rep = [x for x in mine if x["report_received_at"] is not None]
        out.append(
            {
                "round": int(r["round"]),
                "compute_energy_j": _sum(rep, "compute_energy_j"),
                "comm_energy_j": _sum(rep, "comm_energy_j"),
                "compute_dynamic_j": _sum(rep, "compute_dynamic_j"),
                "comm_dynamic_j": _sum(rep, "comm_dynamic_j"),
                "bytes_up": int(_sum(rep, "bytes_up")),
                "mean_bits": _mean([float(x["bits"]) for x in mine]),
                "quality_fd": r["quality_fd"],
                "quality_floor": r["quality_floor"],
            }
        )
    return out
