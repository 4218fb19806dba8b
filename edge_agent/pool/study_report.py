"""The pool study's results: predicted vs measured, as JSON, Markdown, a plot and a table.

Time is predicted for processes sharing the host's cores (processor sharing, with the
background load measured before the runs; :class:`~edge_agent.pool.study.Sharing`).
Measured step time is the leader's training loop (rank 0's compute + exchange time: the
weights' trip out and back included, the round's rendezvous excluded) divided by the steps;
predicted is the model's round time divided by the steps. Energies compared are dynamic
(above each member's idle power), per member and summed; the measured totals with idle power
are listed beside them. Every figure is ``estimated``: the per-process model of
:mod:`.shared_host`.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from edge_agent.sensing import WindowResult

TOLERANCE = 0.25  # the acceptance: predictions within ±25 % of measurement


def machine_facts() -> Dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "load_avg": load}


def _rel(pred: float, meas: float) -> Optional[float]:
    return (pred - meas) / meas if meas else None


def _dyn(windows: List[Dict[str, Any]], name: str) -> float:
    return float(
        sum(WindowResult(**w).dynamic_energy_j or 0.0 for w in windows if w["name"] == name)
    )


def summarize(study: Any) -> Dict[str, Any]:
    """Everything the outputs show, as plain data."""
    cases = []
    for c in study.cases:
        lead = c.outcomes[0]
        loop_s = float(sum(lead.seconds.values()))
        pred_step = c.time_plan.round_time_s / study.config.steps
        meas_step = loop_s / max(c.steps, 1)
        predicted = {m.id: m for m in c.energy_plan.members}
        members = []
        for o in c.outcomes:
            p = predicted[o.member_id]
            comp, exch = _dyn(o.windows, "compute"), _dyn(o.windows, "exchange")
            total = float(sum(WindowResult(**w).energy_j for w in o.windows))
            members.append(
                {
                    "member": o.member_id,
                    "units": list(o.units),
                    "predicted_compute_j": p.compute_energy_j,
                    "predicted_exchange_j": p.exchange_energy_j,
                    "predicted_dynamic_j": p.energy_j,
                    "measured_compute_j": comp,
                    "measured_exchange_j": exch,
                    "measured_dynamic_j": comp + exch,
                    "measured_total_j": total,
                    "dynamic_error": _rel(p.energy_j, comp + exch),
                    "predicted_bytes": p.bytes_moved,
                    "measured_bytes": o.bytes_sent + o.bytes_received,
                    "compute_s": o.seconds.get("compute", 0.0),
                    "exchange_s": o.seconds.get("exchange", 0.0),
                    "compute_cpu_s": o.cpu_seconds.get("compute", 0.0),
                    "exchange_cpu_s": o.cpu_seconds.get("exchange", 0.0),
                }
            )
        pred_e = sum(m["predicted_dynamic_j"] for m in members)
        meas_e = sum(m["measured_dynamic_j"] for m in members)
        cases.append(
            {
                "kind": c.kind,
                "label": c.label,
                "engine": c.engine,
                "steps": c.steps,
                "predicted_step_s": pred_step,
                "measured_step_s": meas_step,
                "step_error": _rel(pred_step, meas_step),
                "predicted_dynamic_j": pred_e,
                "measured_dynamic_j": meas_e,
                "measured_total_j": sum(m["measured_total_j"] for m in members),
                "energy_error": _rel(pred_e, meas_e),
                "predicted_bytes": sum(m["predicted_bytes"] for m in members),
                "measured_bytes": sum(m["measured_bytes"] for m in members),
                "sharing": c.sharing,
                "predicted_cpu_share": _share(c),
                "measured_cpu_share": [
                    m["compute_cpu_s"] / m["compute_s"] if m["compute_s"] else None for m in members
                ],
                "members": members,
            }
        )
    before, after = study.machine["before"], study.machine["after"]
    return {
        "command": " ".join(["greenfed-agent", *(shlex.quote(a) for a in sys.argv[1:])]),
        "machine": before,
        "load_avg_after": after.get("load_avg"),
        "sharing": sharing_statement(study),
        "power_model": study.power_model,
        "links": study.links,
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in study.config.__dict__.items()
        },
        "tolerance": TOLERANCE,
        "cases": cases,
    }


def _share(case: Any) -> float:
    """The CPU share per busy process the case's time plan assumed."""
    cpu = sum(m.compute_time_s for m in case.energy_plan.members)
    wall = sum(m.compute_time_s for m in case.time_plan.members)
    return cpu / wall if wall else 0.0


def sharing_statement(study: Any) -> str:
    m = study.machine["before"]
    load = m.get("load_avg") or [float("nan")]
    return (
        f"The {study.config.members} members are processes sharing this machine's {m['cores']} "
        f"cores ({m['cpu']}; load average {load[0]:.2f} at the start, other sessions' work "
        "included): their times say nothing of the speed-up separate boards would give, and "
        "none is claimed. What this study checks is the pool model's predictions against "
        "measurement on this machine. Links are loopback (neither shaped nor emulated); power "
        "is the per-process estimated model. " + sharing_model(study)
    )


def sharing_model(study: Any) -> str:
    s = study.machine.get("sharing") or {}
    if not s:
        return ""
    rule = (
        "the share of a core one busy process of this session measured just before each "
        "structure's run, split between the session's busy processes (the kernel's autogroup "
        "scheduling shares the CPU between sessions first)"
        if s.get("autogroup")
        else "cores / (busy processes + background load), the background load estimated from "
        "one process's share measured just before each structure's run"
    )
    speed = ", ".join(f"{v:.2f}" for v in s.get("speed") or (1.0,))
    return (
        f"Times are predicted from the CPU-time profile at the CPU share each busy process "
        f"gets: {rule}, at most one core ({s['share_alone']:.2f} of a core for one process "
        "at the start), times the speed one process keeps while 1, 2, ... of them train at "
        f"once on cores of their own (measured: {speed}); data-parallel replicas count as all "
        "busy (they compute in lockstep), a pipeline's members by their CPU time over the "
        "round's. The table lists the share each case assumed and the share its members got."
    )


def text_table(summary: Dict[str, Any]) -> str:
    rows = [
        f"{'structure':<36} {'engine':<11} {'step s pred/meas':>18} {'err':>6} "
        f"{'dyn J pred/meas':>18} {'err':>6} {'MB pred/meas':>15}"
    ]
    for c in summary["cases"]:
        rows.append(
            f"{c['label']:<36} {c['engine']:<11} "
            f"{c['predicted_step_s']:8.4f}/{c['measured_step_s']:<9.4f} {_pct(c['step_error']):>6} "
            f"{c['predicted_dynamic_j']:8.3f}/{c['measured_dynamic_j']:<9.3f} "
            f"{_pct(c['energy_error']):>6} "
            f"{c['predicted_bytes'] / 1e6:7.2f}/{c['measured_bytes'] / 1e6:<7.2f}"
        )
        got = ", ".join("n/a" if x is None else f"{x:.2f}" for x in c["measured_cpu_share"])
        rows.append(
            f"    CPU share per busy process: assumed {c['predicted_cpu_share']:.2f}, "
            f"members got {got} while computing"
        )
        for m in c["members"]:
            rows.append(
                f"    {m['member']:<8} units {m['units']!s:<9} "
                f"dyn J {m['predicted_dynamic_j']:7.3f}/{m['measured_dynamic_j']:<7.3f} "
                f"({_pct(m['dynamic_error'])}), compute "
                f"{m['measured_compute_j']:.3f} J, exchange {m['measured_exchange_j']:.3f} J, "
                f"total with idle {m['measured_total_j']:.2f} J"
            )
    return "\n".join(rows)


def _loads(values: Optional[List[float]]) -> str:
    return " ".join(f"{v:.2f}" for v in values or []) or "unavailable"


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:+.0f}%"


def verdict(summary: Dict[str, Any]) -> List[str]:
    out = []
    for c in summary["cases"]:
        for what, key in (("step time", "step_error"), ("dynamic energy", "energy_error")):
            err = c[key]
            ok = err is not None and abs(err) <= TOLERANCE
            out.append(
                f"{c['label']}: {what} {'within' if ok else 'MISSED'} ±{100 * TOLERANCE:.0f} % "
                f"({_pct(err)})"
            )
    return out


def plot(summary: Dict[str, Any], path: Path) -> Optional[Path]:
    """Step time and per-member dynamic energy, predicted beside measured (PNG); None when
    matplotlib is not installed (a board without the coordinator extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cases = summary["cases"]
    labels = [c["label"] for c in cases]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6))
    x = range(len(cases))
    ax1.bar([i - 0.2 for i in x], [c["predicted_step_s"] for c in cases], 0.4, label="predicted")
    ax1.bar([i + 0.2 for i in x], [c["measured_step_s"] for c in cases], 0.4, label="measured")
    ax1.set_xticks(list(x), labels, rotation=15, fontsize=8)
    ax1.set_ylabel("seconds per step")
    ax1.set_title("step time (members share this machine's cores)")
    ax1.legend()
    shown = set()
    for i, c in enumerate(cases):
        bottom_p = bottom_m = 0.0
        for k, m in enumerate(c["members"]):
            color = f"C{k}"
            label = None if m["member"] in shown else m["member"]
            shown.add(m["member"])
            ax2.bar(i - 0.2, m["predicted_dynamic_j"], 0.4, bottom=bottom_p, color=color,
                    alpha=0.5, label=label)  # fmt: skip
            ax2.bar(i + 0.2, m["measured_dynamic_j"], 0.4, bottom=bottom_m, color=color)
            bottom_p += m["predicted_dynamic_j"]
            bottom_m += m["measured_dynamic_j"]
    ax2.set_xticks(list(x), labels, rotation=15, fontsize=8)
    ax2.set_ylabel("dynamic energy, J (estimated)")
    ax2.set_title("per member: predicted (light, left) / measured (right)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_outputs(study: Any, out: Path) -> Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(study)
    paths = {"json": out / "results.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(summary, indent=1) + "\n")
    png = plot(summary, out / "pool-study.png")
    lines = [
        "# Pool study: predicted vs measured",
        "",
        f"Command: `{summary['command']}`",
        "",
        f"Machine: {summary['machine']['host']}, {summary['machine']['cpu']}, "
        f"{summary['machine']['cores']} cores; load average (1, 5, 15 min) "
        f"{_loads(summary['machine']['load_avg'])} at the start, "
        f"{_loads(summary['load_avg_after'])} at the end.",
        "",
        f"**{summary['sharing']}**",
        "",
        f"Power: {summary['power_model']}.",
        "",
        "```",
        text_table(summary),
        "```",
        "",
        *[f"- {v}" for v in verdict(summary)],
        "",
    ]
    lines.append(
        "![step time and energy per member](pool-study.png)"
        if png is not None
        else "(no plot: matplotlib is not installed here; `pip install matplotlib`)"
    )
    paths["markdown"].write_text("\n".join(lines) + "\n")
    if png is not None:
        paths["plot"] = png
    return paths
