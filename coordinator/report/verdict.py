"""The plain answers a report gives: did on-demand save bytes, energy, and keep quality?

Each finding compares per-round figures of two schemes (equal to comparing totals when both
completed the same number of rounds, which the report checks and states). Outcomes are
``YES``, ``NO`` or ``CANNOT SAY`` (a scheme or a figure is missing); a ``NO`` is stated as
plainly as a ``YES``.

Quality margin: on-demand's final Fréchet distance (FD, lower is better) is "within the margin
of fp32" when ``FD_on_demand <= (1 + margin) * FD_fp32``, default margin 0.20 (20 %). It is
one-sided: an on-demand FD below fp32's is within the margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from coordinator.report.summary import SchemeSummary

QUALITY_MARGIN_REL = 0.20
YES, NO, UNKNOWN = "YES", "NO", "CANNOT SAY"


@dataclass
class Finding:
    key: str
    question: str
    outcome: str
    detail: str

    def line(self) -> str:
        return f"{self.question} {self.outcome}. {self.detail}"


def _pct(a: float, b: float) -> str:
    if b == 0:
        return "n/a"
    return f"{(a - b) / b * 100:+.1f}%"


def _fixed_baseline(summaries: Dict[str, SchemeSummary]) -> Optional[str]:
    if "fixed-8" in summaries:
        return "fixed-8"
    fixed = sorted(s for s in summaries if s.startswith("fixed-"))
    return fixed[0] if fixed else None


def _compare(
    key: str,
    question: str,
    unit: str,
    mine: Optional[SchemeSummary],
    other: Optional[SchemeSummary],
    attr: str,
) -> Finding:
    if mine is None or other is None or not mine.rounds_completed or not other.rounds_completed:
        return Finding(key, question, UNKNOWN, "a scheme is missing or completed no round.")
    a = float(getattr(mine, attr))
    b = float(getattr(other, attr))
    pa, pb = a / mine.rounds_completed, b / other.rounds_completed
    outcome = YES if pa < pb else NO
    fmt = "{:,.0f}" if unit == "B" else "{:,.1f}"
    detail = (
        f"{mine.scheme} {fmt.format(a)} {unit} in {mine.rounds_completed} rounds "
        f"({fmt.format(pa)} {unit}/round) vs {other.scheme} {fmt.format(b)} {unit} in "
        f"{other.rounds_completed} rounds ({fmt.format(pb)} {unit}/round): {_pct(pa, pb)}."
    )
    return Finding(key, question, outcome, detail)


def quality_finding(
    mine: Optional[SchemeSummary], ref: Optional[SchemeSummary], margin: float
) -> Finding:
    question = f"Is on-demand's final quality within {margin:.0%} of fp32's (FD, lower is better)?"
    if mine is None or ref is None or mine.final_fd is None or ref.final_fd is None:
        return Finding("quality", question, UNKNOWN, "a final FD is missing.")
    limit = (1.0 + margin) * ref.final_fd
    outcome = YES if mine.final_fd <= limit else NO
    detail = (
        f"FD on-demand {mine.final_fd:.3f} (round {mine.final_round}) vs fp32 "
        f"{ref.final_fd:.3f} (round {ref.final_round}), limit {limit:.3f} = "
        f"(1 + {margin:g}) x fp32; real-vs-real floor {ref.final_floor or 0:.3f}, "
        f"noise {ref.final_noise or 0:.1f}."
    )
    return Finding("quality", question, outcome, detail)


def findings(summaries: List[SchemeSummary], margin: float = QUALITY_MARGIN_REL) -> List[Finding]:
    """The report's answers, in order: bytes, energy (total, dynamic, comm), quality."""
    by = {s.scheme: s for s in summaries}
    od, fp32 = by.get("on-demand"), by.get("fp32")
    fixed = _fixed_baseline(by)
    fixed_s = by.get(fixed) if fixed else None
    out = [
        _compare(
            "bytes",
            f"Did on-demand upload fewer bytes than {fixed or 'fixed-B'}?",
            "B",
            od,
            fixed_s,
            "bytes_up",
        ),
        _compare(
            "energy_total",
            "Did on-demand use less energy than fp32 (total, compute + upload)?",
            "J",
            od,
            fp32,
            "total_energy_j",
        ),
        _compare(
            "energy_dynamic",
            "Did on-demand use less dynamic energy (above idle) than fp32?",
            "J",
            od,
            fp32,
            "total_dynamic_j",
        ),
        _compare(
            "energy_comm",
            "Did on-demand use less upload energy (dynamic) than fp32?",
            "J",
            od,
            fp32,
            "comm_dynamic_j",
        ),
        quality_finding(od, fp32, margin),
    ]
    if od is not None and fp32 is not None and od.rounds_completed and fp32.rounds_completed:
        out[1].detail += " " + split_note(od, fp32)
    return out + adapter_findings(summaries, margin)


def adapter_findings(summaries: List[SchemeSummary], margin: float) -> List[Finding]:
    """For each adapter run (fedit, ffa): its uplink and energy against full-model fp32
    FedAvg, its final FD against the full model's with the same scheme, and whether the
    devices' personal adapters beat the global one on their own held-out images."""
    by = {s.scheme: s for s in summaries}
    full_fp32 = by.get("fp32")
    out: List[Finding] = []
    for s in summaries:
        if s.aggregation == "fedavg":
            continue
        label = s.scheme
        out.append(
            _compare(f"adapter_bytes:{label}",
                     f"Did {label} upload fewer bytes than full-model fp32 FedAvg?", "B", s,
                     full_fp32, "bytes_up")
        )  # fmt: skip
        out.append(
            _compare(f"adapter_energy:{label}",
                     f"Did {label} use less energy than full-model fp32 FedAvg (total)?", "J",
                     s, full_fp32, "total_energy_j")
        )  # fmt: skip
        base_scheme = label.split("-", 1)[1]
        full = by.get(base_scheme)
        question = (
            f"Is {label}'s final quality within {margin:.0%} of full-model {base_scheme}'s (FD)?"
        )
        if full is None or s.final_fd is None or full.final_fd is None:
            out.append(
                Finding(f"adapter_quality:{label}", question, UNKNOWN, "a final FD is missing.")
            )
        else:
            limit = (1.0 + margin) * full.final_fd
            out.append(
                Finding(
                    f"adapter_quality:{label}",
                    question,
                    YES if s.final_fd <= limit else NO,
                    f"FD {s.final_fd:.3f} (round {s.final_round}) vs {full.final_fd:.3f} "
                    f"(round {full.final_round}), limit {limit:.3f}.",
                )
            )
        if s.personal_devices:
            out.append(
                Finding(
                    f"personal:{label}",
                    f"Did {label}'s personal adapters beat the global adapter on the devices' "
                    "own held-out images (FD)?",
                    YES if 2 * s.personal_wins > s.personal_devices else NO,
                    f"better on {s.personal_wins} of {s.personal_devices} devices in round "
                    f"{s.personal_round}; mean FD personal {s.personal_fd_mean or 0:.3f} vs "
                    f"global {s.global_fd_own_mean or 0:.3f}.",
                )
            )
    return out


def split_note(mine: SchemeSummary, ref: SchemeSummary) -> str:
    """Where a total-energy difference comes from: the upload window or the compute window.

    Quantization changes the upload directly; compute energy changes only through the CPU
    frequency the allocator assigns, or through the time the compute took (machine load).
    """
    n, m = mine.rounds_completed, ref.rounds_completed
    d_comp = mine.compute_energy_j / n - ref.compute_energy_j / m
    d_comm = mine.comm_energy_j / n - ref.comm_energy_j / m
    return (
        f"Per round, the upload window accounts for {d_comm:+,.1f} J and the compute window "
        f"for {d_comp:+,.1f} J of the difference; a compute difference at the same assigned "
        "frequency comes from how long the compute took, not from the scheme."
    )


def setup_checks(summaries: List[SchemeSummary]) -> List[str]:
    """Plain statements on whether the schemes ran under the same deadline and budget."""
    lines: List[str] = []
    deadlines = {v for s in summaries for v in s.deadline_s}
    budgets = {v for s in summaries for v in s.error_budget}
    rounds = {s.rounds_completed for s in summaries}
    if len(deadlines) == 1:
        lines.append(f"Every round of every scheme had the same deadline: {deadlines.pop():.1f} s.")
    else:
        lines.append(
            "The deadline was NOT the same in every round: "
            + ", ".join(
                f"{s.scheme} {'/'.join(f'{d:.1f}' for d in s.deadline_s)} s" for s in summaries
            )
        )
    if len(budgets) == 1:
        lines.append(f"Every round recorded the same absolute error budget: {budgets.pop():.4g}.")
    elif budgets:
        lines.append(
            "The error budget differed between rounds or schemes: "
            + ", ".join(
                f"{s.scheme} {'/'.join(f'{b:.4g}' for b in s.error_budget)}" for s in summaries
            )
        )
    if len(rounds) > 1:
        lines.append(
            "The schemes completed different numbers of rounds ("
            + ", ".join(f"{s.scheme} {s.rounds_completed}" for s in summaries)
            + "): comparisons use per-round figures."
        )
    return lines
