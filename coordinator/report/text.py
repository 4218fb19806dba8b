"""Terminal rendering of a report: the honesty banner, the per-scheme tables, the findings.

The HTML page shows the same rows (``table_rows``) so the terminal and the page never disagree.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from coordinator.report.summary import SchemeSummary
from coordinator.report.verdict import Finding

EMULATED_BOARD = "emulated-board"  # the power source of an emulated board (edge_agent)


def _f(v: Optional[float], spec: str = ",.1f") -> str:
    return "-" if v is None else format(v, spec)


def banner(summaries: Sequence[SchemeSummary]) -> List[str]:
    """Prominent statements about where the figures come from (estimated, emulated)."""
    lines: List[str] = []
    est = {s.estimated for s in summaries}
    sources = sorted({src for s in summaries for src in s.power_sources})
    emulated = any(name == EMULATED_BOARD for name, _ in sources)
    if "all" in est or "some" in est:
        share = "EVERY" if est == {"all"} else "SOME"
        lines.append(
            f"{share} ENERGY FIGURE IS ESTIMATED, NOT MEASURED: no power sensor was found, "
            "so the agents used a utilisation model (power = idle + (max - idle) x CPU "
            "utilisation, plus a fixed radio power while uploading)."
            if not emulated
            else f"{share} ENERGY FIGURE IS ESTIMATED, NOT MEASURED: the devices were "
            "EMULATED BOARDS on one machine (docs/emulated.md): each ran in its own cgroup, its "
            "clock the kernel's CPU quota (real timing), its power its board profile's model "
            "at that clock (idle + busy share x (peak - idle) x (f / f_max)^3, the busy share "
            "from its own CPU time, plus a fixed radio power while uploading)."
        )
    else:
        lines.append("Every energy figure was measured by a power sensor (see the sources).")
    for name, scope in sources:
        lines.append(f"power source: {name}; scope: {scope}")
    devices = sorted({d for s in summaries for d in s.train_devices})
    if "cuda" in devices:
        lines.append(
            f"training devices: {', '.join(devices)}; a device training on cuda registered, "
            "was assigned and reported its GPU clock as the frequency f"
        )
    for s in summaries:
        if s.compute_gpu_energy_j is not None:
            lines.append(
                f"{s.scheme}: GPU rail {'; '.join(s.gpu_rails)}: {s.compute_gpu_energy_j:,.1f} J "
                f"of the {s.compute_energy_j:,.1f} J compute energy (a part of it, not added)"
            )
    emu = {s.emulated_link for s in summaries}
    if "all" in emu or "some" in emu:
        rates = sorted({r for s in summaries for r in s.link_mbps})
        lines.append(
            "LINKS ARE EMULATED (in-process): uploads went over loopback, throttled to "
            + ", ".join(f"{r:.3g}" for r in rates[:8])
            + (" ..." if len(rates) > 8 else "")
            + " Mbit/s by each agent; upload energy is the model's power over that time."
        )
    shaped = {s.shaped_link for s in summaries}
    if "all" in shaped or "some" in shaped:
        lines.append(
            "LINKS ARE SHAPED (netns/tc): every agent ran in its own network namespace behind "
            "a kernel-shaped uplink (docs/links.md); rates and energy per byte are measured "
            "over those links."
        )
    return lines


ENERGY_HEADER: Tuple[str, ...] = (
    "scheme", "rounds", "total J", "J/round", "compute J", "upload J",
    "dynamic J", "dyn J/round", "compute dyn J", "upload dyn J", "predicted dyn J",
    "pred. error",
)  # fmt: skip
DATA_HEADER: Tuple[str, ...] = (
    "scheme", "bytes up", "bytes/round", "mean bits", "round s", "final FD",
    "FD floor", "FD noise", "deadline s", "error budget", "estimated", "emulated link",
)  # fmt: skip


def energy_rows(summaries: Sequence[SchemeSummary]) -> List[List[str]]:
    return [
        [
            s.scheme,
            f"{s.rounds_completed}/{s.rounds_recorded}",
            _f(s.total_energy_j),
            _f(s.per_round(s.total_energy_j)),
            _f(s.compute_energy_j),
            _f(s.comm_energy_j, ",.2f"),
            _f(s.total_dynamic_j),
            _f(s.per_round(s.total_dynamic_j)),
            _f(s.compute_dynamic_j),
            _f(s.comm_dynamic_j, ",.2f"),
            _f(s.predicted_dynamic_j),
            "-" if s.mean_abs_rel_error is None else f"{s.mean_abs_rel_error:.0%}",
        ]
        for s in summaries
    ]


def data_rows(summaries: Sequence[SchemeSummary]) -> List[List[str]]:
    return [
        [
            s.scheme,
            f"{s.bytes_up:,}",
            _f(s.per_round(float(s.bytes_up)), ",.0f"),
            _f(s.mean_bits, ".2f"),
            _f(s.mean_round_time_s),
            _f(s.final_fd, ".3f"),
            _f(s.final_floor, ".3f"),
            _f(s.final_noise, ".1f"),
            "/".join(f"{d:.1f}" for d in s.deadline_s) or "-",
            "/".join(f"{b:.4g}" for b in s.error_budget) or "-",
            s.estimated,
            s.emulated_link,
        ]
        for s in summaries
    ]


ADAPTER_HEADER: Tuple[str, ...] = (
    "run", "aggregation", "bytes/round", "vs full fp32", "final FD", "personal better",
    "own FD personal", "own FD global",
)  # fmt: skip


def has_adapters(summaries: Sequence[SchemeSummary]) -> bool:
    return any(s.aggregation != "fedavg" or s.personal_devices for s in summaries)


def adapter_rows(summaries: Sequence[SchemeSummary]) -> List[List[str]]:
    """Full model and adapters side by side: uplink per round against full-model fp32, final
    FD, and personal adapters against the global one on the devices' own held-out images."""
    ref = next((s for s in summaries if s.scheme == "fp32"), None)
    ref_bytes = ref.per_round(float(ref.bytes_up)) if ref is not None else None
    rows = []
    for s in summaries:
        per_round = s.per_round(float(s.bytes_up))
        share = per_round / ref_bytes if per_round is not None and ref_bytes else None
        rows.append(
            [
                s.scheme,
                s.aggregation,
                _f(per_round, ",.0f"),
                "-" if share is None else f"{share:.2%}",
                _f(s.final_fd, ".3f"),
                f"{s.personal_wins}/{s.personal_devices}" if s.personal_devices else "-",
                _f(s.personal_fd_mean, ".3f"),
                _f(s.global_fd_own_mean, ".3f"),
            ]
        )
    return rows


ADAPTER_NOTES = (
    "Adapters (docs/lora.md): fedit sends LoRA factors A and B, ffa sends B only, on a frozen "
    "pretrained backbone; fedavg runs federate every weight. 'personal better' counts the "
    "devices whose own adapter scored a lower FD than the global adapter on the images they "
    "held out of training, in the last round they were scored."
)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = [
        "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))
    ]
    for r in rows:
        out.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        )
    return "\n".join(out)


NOTES = (
    "Energy: 'total' is what the power source gave over the window, 'dynamic' is total minus "
    "the idle power over the same time; 'upload' is the upload window only (the download "
    "window is stored in each report's JSON and not counted). Only completed rounds count. "
    "'pred. error' is the mean of |predicted - measured| / measured dynamic energy per "
    "device-round."
)


def render(
    summaries: Sequence[SchemeSummary],
    found: Sequence[Finding],
    checks: Sequence[str],
    clock_lines: Sequence[str] = (),
) -> str:
    """The terminal report; ``clock_lines``: the clocks per round (report/clocks.py)."""
    parts = ["== where the numbers come from ==", *banner(summaries), ""]
    parts += ["== energy per scheme (J) ==", format_table(ENERGY_HEADER, energy_rows(summaries))]
    parts += [
        "",
        "== bytes, bits, time, quality ==",
        format_table(DATA_HEADER, data_rows(summaries)),
    ]
    if clock_lines:
        parts += ["", "== clocks per round (MHz, assigned/ran at) ==", *clock_lines]
    if has_adapters(summaries):
        parts += [
            "",
            "== full model and adapters ==",
            format_table(ADAPTER_HEADER, adapter_rows(summaries)),
            "",
            ADAPTER_NOTES,
        ]
    parts += ["", NOTES, "", "== answers ==", *checks, *(f.line() for f in found)]
    return "\n".join(parts)
