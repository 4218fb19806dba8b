"""What this board can measure, and why not: the data behind ``greenfed-agent probe``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from .base import SourceContext
from .cpufreq import CpuFreq
from .errors import SensingError
from .estimated import board_model, detect_board_class
from .factory import detect_power_source, make_context, probe_sources
from .jetson_stats import service_status


def build_report(ctx: SourceContext, cpu: Optional[CpuFreq] = None) -> Dict[str, Any]:
    """A JSON-able report: board, every source's verdict, the chosen one, CPU and DVFS."""
    notes: List[str] = []
    report: Dict[str, Any] = {
        "sysfs_root": str(ctx.sysfs_root),
        "euid": os.geteuid(),
        "board": {
            "model": board_model(ctx.sysfs_root),
            "board_class": detect_board_class(ctx.sysfs_root, ctx.cfg.board_class),
        },
    }
    probes = probe_sources(ctx)
    report["sources"] = [
        {"name": p.name, "available": p.available, "reason": p.reason, **p.detail} for p in probes
    ]
    try:
        src = detect_power_source(ctx.cfg, ctx.sysfs_root, ctx.runner)
        chosen: Dict[str, Any] = dict(src.describe())
        try:
            src.read()
            r = src.read()
            chosen["power_w"] = round(r.power_w, 3)
            chosen["rails_w"] = {k: round(v, 3) for k, v in r.rails_w.items()}
        except SensingError as e:
            chosen["read_error"] = str(e)
        if src.estimated:
            notes.append(
                "no power sensor available: energy will be ESTIMATED from CPU utilisation "
                f"({src.scope}); every record says estimated"
            )
    except SensingError as e:
        chosen = {"error": str(e)}
    report["chosen"] = chosen

    cpu = cpu or CpuFreq(ctx.sysfs_root)
    reading = cpu.read()
    report["cpu"] = {
        "source": reading.source,
        "freq_hz": reading.freq_hz,
        "min_hz": cpu.min_hz,
        "max_hz": cpu.max_hz,
        "steps_hz": cpu.steps_hz,
        "policies": [
            {
                "name": p.name,
                "cpus": p.cpus,
                "governor": p.governor,
                "min_hz": p.min_khz * 1000.0,
                "max_hz": p.max_khz * 1000.0,
                "steps_hz": [s * 1000.0 for s in p.steps_khz],
            }
            for p in cpu.policies
        ],
        "inactive_policies": [{"name": p.name, "reason": p.reason} for p in cpu.inactive],
    }
    for p in cpu.inactive:
        notes.append(f"cpufreq {p.name}: {p.reason}; left out of the frequency model")
    if not cpu.policies and not cpu.inactive:
        notes.append(
            "no cpufreq in sysfs: frequency "
            + ("from psutil" if reading.freq_hz else "unknown")
            + "; the allocator gets a single frequency"
        )
    dvfs = cpu.dvfs_status()
    report["dvfs"] = {"available": dvfs.applied, "reason": dvfs.reason}
    if not dvfs.applied:
        notes.append(str(dvfs))
    report["jtop"] = service_status(ctx)
    report["notes"] = notes
    return report


def _mhz(hz: Optional[float]) -> str:
    return "unknown" if not hz else f"{hz / 1e6:.0f} MHz"


def format_report(rep: Dict[str, Any]) -> str:
    """Human-readable text of :func:`build_report`."""
    lines = [
        f"board:   {rep['board']['model'] or '(no device-tree model)'}"
        f"  [class {rep['board']['board_class']}]",
        "power sources (in order tried):",
    ]
    for s in rep["sources"]:
        mark = "yes" if s["available"] else "no "
        why = s.get("scope") or s.get("reason") or ""
        if s["name"] == "estimated":
            why = f"fallback model, board class {s.get('board_class')}"
        lines.append(f"  [{mark}] {s['name']:<14} {why}")
        if s.get("rails"):
            lines.append(f"        rails: {', '.join(s['rails'])}")
    c = rep["chosen"]
    if "error" in c:
        lines.append(f"chosen:  ERROR {c['error']}")
    else:
        tag = " (ESTIMATED)" if c.get("estimated") else ""
        lines.append(f"chosen:  {c['name']}{tag}, every {c['sample_period_s']:.2f} s")
        lines.append(f"scope:   {c['scope']}")
        if "power_w" in c:
            lines.append(f"reading: {c['power_w']:.2f} W")
        if c.get("read_error"):
            lines.append(f"reading: failed: {c['read_error']}")
    cpu = rep["cpu"]
    lines.append(
        f"cpu:     {_mhz(cpu['freq_hz'])} now (via {cpu['source']}), "
        f"range {_mhz(cpu['min_hz'])} .. {_mhz(cpu['max_hz'])}"
    )
    for p in cpu["policies"]:
        steps = ", ".join(f"{s / 1e6:.0f}" for s in p["steps_hz"]) or "continuous range"
        lines.append(f"  {p['name']} cpus {p['cpus']} governor {p['governor']}: {steps} MHz")
    for p in cpu.get("inactive_policies", ()):
        lines.append(f"  {p['name']} inactive (CPUs offline): not used")
    d = rep["dvfs"]
    lines.append(
        "dvfs:    available" if d["available"] else f"dvfs:    unavailable ({d['reason']})"
    )
    lines.append(f"jtop:    {rep['jtop']}")
    for n in rep["notes"]:
        lines.append(f"note:    {n}")
    return "\n".join(lines)


def probe(sysfs_root: Path = Path("/"), ctx: Optional[SourceContext] = None) -> Dict[str, Any]:
    return build_report(ctx or make_context(sysfs_root=sysfs_root))
