"""Plain-text tables of stored rounds, for the terminal (serve, demo, report)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from coordinator.store import Store


def _fmt(v: Optional[float], spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _dyn(rep: Dict[str, Any]) -> Optional[float]:
    """Measured dynamic (above idle) energy of compute + communication: what is predicted."""
    parts = [rep.get("compute_dynamic_j"), rep.get("comm_dynamic_j")]
    return None if all(p is None for p in parts) else sum(p or 0.0 for p in parts)


def round_table(store: Store, round_no: int) -> str:
    """Per-device lines of one round: bits, frequency, energy with its source, bytes."""
    r = store.get_round(round_no)
    if r is None:
        return f"round {round_no}: not found"
    reports = {x["device_id"]: x for x in store.reports(round_no)}
    lines: List[str] = []
    quality = (
        f"FD {r['quality_fd']:.2f} (floor {_fmt(r['quality_floor'])}, noise "
        f"{_fmt(r['quality_noise'], '.0f')})"
        if r["quality_fd"] is not None
        else "FD -"
    )
    lines.append(
        f"round {round_no} [{r['status']}] {r['scheme']}: {r['arrived']}/{r['participants']} "
        f"updates, deadline {r['deadline_s']:.0f} s, {quality}"
    )
    lines.append(
        f"  {'device':<10} {'bits':>4} {'MHz':>6} {'compute J':>10} {'comm J':>8} "
        f"{'dyn J':>7} {'pred J':>7} {'bytes':>9} {'status':<9} power source"
    )
    for a in store.assignments(round_no):
        rep: Dict[str, Any] = reports.get(a["device_id"], {})
        flags = []
        if rep.get("estimated"):
            flags.append("estimated")
        if rep.get("link_kind") in ("shaped", "emulated") or rep.get("emulated_link"):
            kind = rep.get("link_kind") or "emulated"
            got = rep.get("goodput_mbps")
            flags.append(
                f"{kind} link {rep.get('link_mbps') or 0:.3g} Mbit/s"
                + (f", measured {got:.3g}" if got else "")
            )
        source = rep.get("power_source") or "-"
        if flags:
            source += " [" + ", ".join(flags) + "]"
        lines.append(
            f"  {a['device_id']:<10} {a['bits']:>4} {a['freq_hz'] / 1e6:>6.0f} "
            f"{_fmt(rep.get('compute_energy_j')):>10} {_fmt(rep.get('comm_energy_j')):>8} "
            f"{_fmt(_dyn(rep)):>7} {_fmt(a['predicted_energy_j']):>7} "
            f"{rep.get('bytes_up') or 0:>9} "
            f"{a['status']:<9} {source}"
        )
    return "\n".join(lines)


def summary_table(store: Store) -> str:
    """One line per round: energy totals, bytes, mean bits, quality."""
    lines = [
        f"{'round':>5} {'status':<9} {'scheme':<10} {'compute J':>10} {'comm J':>8} "
        f"{'bytes up':>10} {'mean bits':>9} {'FD':>8}"
    ]
    for r in store.rounds():
        reps = store.reports(r["round"])
        comp = sum(x["compute_energy_j"] or 0.0 for x in reps)
        comm = sum(x["comm_energy_j"] or 0.0 for x in reps)
        sent = sum(x["bytes_up"] or 0 for x in reps)
        bits = [a["bits"] for a in store.assignments(r["round"])]
        mean_bits = sum(bits) / len(bits) if bits else 0.0
        lines.append(
            f"{r['round']:>5} {r['status']:<9} {r['scheme']:<10} {comp:>10.2f} {comm:>8.2f} "
            f"{sent:>10} {mean_bits:>9.1f} {_fmt(r['quality_fd']):>8}"
        )
    return "\n".join(lines)
