"""The clock each device was assigned and ran at, per round: the allocator's lever, made visible.

From stored records only: the assignment's ``freq_hz`` (what the allocator chose), the report's
``applied_freq_hz`` (what the device's clock accepted: the next step up, 0 when DVFS was not
applied) and the compute window's ``mean_freq_hz`` (what the clock read while training: on an
emulated board the step its CPU quota stood for, on a board its cpufreq or GPU clock). The
terminal and the page show one matrix per scheme (rounds × devices, "assigned/ran at" MHz);
``clocks.csv`` holds every device-round with its board, compute time and deadline.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from coordinator.report.records import RunRecords, SchemeRecords
from coordinator.report.text import format_table

CLOCK_COLUMNS: List[str] = [
    "scheme", "round", "round_status", "device_id", "board", "assigned_mhz", "applied_mhz",
    "ran_at_mhz", "dvfs_applied", "compute_time_s", "deadline_s", "bits",
]  # fmt: skip


def _mhz(hz: Optional[float]) -> Optional[float]:
    return None if not hz else round(float(hz) / 1e6, 1)


def _board(records: SchemeRecords) -> Dict[str, str]:
    return {str(d["id"]): str(d.get("board") or "") for d in records.devices}


def clock_records(run: RunRecords) -> List[Dict[str, Any]]:
    """One dict per stored device-round (CLOCK_COLUMNS), every scheme, in round order."""
    out = []
    for s in run.schemes:
        boards = _board(s)
        deadlines = {int(r["round"]): r["deadline_s"] for r in s.rounds}
        for r in s.device_rounds:
            applied = r.get("applied_freq_hz") if r.get("dvfs_applied") else None
            out.append(
                {
                    "scheme": s.scheme,
                    "round": r["round"],
                    "round_status": r["round_status"],
                    "device_id": r["device_id"],
                    "board": boards.get(str(r["device_id"]), ""),
                    "assigned_mhz": _mhz(r.get("freq_hz")),
                    "applied_mhz": _mhz(applied),
                    "ran_at_mhz": _mhz(r.get("mean_freq_hz")),
                    "dvfs_applied": r.get("dvfs_applied"),
                    "compute_time_s": r.get("compute_time_s"),
                    "deadline_s": deadlines.get(int(r["round"])),
                    "bits": r.get("bits"),
                }
            )
    return out


def _cell(rec: Dict[str, Any]) -> str:
    a, ran = rec["assigned_mhz"], rec["ran_at_mhz"]
    return f"{'-' if a is None else f'{a:.0f}'}/{'-' if ran is None else f'{ran:.0f}'}"


def clock_matrices(run: RunRecords) -> List[Tuple[str, List[str], List[List[str]]]]:
    """Per scheme: (title, header, rows): rounds × devices, cells "assigned/ran at" in MHz."""
    recs = clock_records(run)
    out = []
    for s in run.schemes:
        mine = [r for r in recs if r["scheme"] == s.scheme]
        devices = sorted({str(r["device_id"]) for r in mine})
        if not devices:
            continue
        boards = _board(s)
        title = f"{s.scheme}: " + "; ".join(
            f"{d} {boards.get(d) or 'board ?'}".replace("emulated board ", "") for d in devices
        )
        rows = []
        for rnd in sorted({int(r["round"]) for r in mine}):
            cells = {str(r["device_id"]): _cell(r) for r in mine if int(r["round"]) == rnd}
            status = next(r["round_status"] for r in mine if int(r["round"]) == rnd)
            rows.append([f"{rnd} {status}", *(cells.get(d, "") for d in devices)])
        out.append((title, ["round", *devices], rows))
    return out


def emulated_boards(run: RunRecords) -> List[str]:
    """The distinct boards of devices that were emulated boards (e.g. "emulated board rpi4")."""
    return sorted(
        {str(d.get("board")) for s in run.schemes for d in s.devices
         if str(d.get("board") or "").startswith("emulated board ")}
    )  # fmt: skip


CLOCK_NOTE = (
    "Clocks in MHz, 'assigned/ran at': assigned is the allocator's choice, ran at the mean "
    "compute clock the device reported over its training window (an emulated board reports "
    "the step its CPU quota stood for; a board without DVFS its own unchanged clock)."
)


def render_clocks(matrices: Sequence[Tuple[str, List[str], List[List[str]]]]) -> List[str]:
    """The terminal lines of the clock matrices."""
    lines: List[str] = []
    for title, header, rows in matrices:
        lines += [title, format_table(header, rows), ""]
    return [*lines, CLOCK_NOTE] if lines else []
