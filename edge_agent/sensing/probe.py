"""What this board can measure, and why not: the data behind ``greenfed-agent probe``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .base import SourceContext
from .cpufreq import CpuFreq
from .devfreq import GpuFreq
from .errors import SensingError
from .estimated import board_model, detect_board_class
from .factory import detect_power_source, make_context, probe_sources
from .jetson_stats import service_status


def gpu_report(gpu: GpuFreq) -> Dict[str, Any]:
    """The Jetson GPU's devfreq clock: node, range, steps, governor, DVFS on it and why not."""
    dvfs = gpu.dvfs_status()
    if gpu.node is None:
        return {"found": False, "reason": gpu.missing_reason, "dvfs": {"available": False,
                "reason": dvfs.reason}}  # fmt: skip
    try:
        freq: Optional[float] = gpu.read().freq_hz
        error = ""
    except SensingError as e:
        freq, error = None, str(e)
    return {
        "found": True,
        "node": gpu.node.name,
        "kind": gpu.node.kind,
        "path": str(gpu.node.path),
        "freq_hz": freq,
        "read_error": error,
        "min_hz": gpu.min_hz,
        "max_hz": gpu.max_hz,
        "steps_hz": gpu.steps_hz,
        "governor": gpu.node.governor,
        "dvfs": {"available": dvfs.applied, "reason": dvfs.reason},
    }


def build_report(
    ctx: SourceContext, cpu: Optional[CpuFreq] = None, gpu: Optional[GpuFreq] = None
) -> Dict[str, Any]:
    """A JSON-able report: board, every source's verdict, the chosen one, CPU, GPU, DVFS."""
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
        if src.name == "emulated-board":
            notes.append(
                "an emulated board: energy is ESTIMATED from its profile's model at its clock "
                "and its cgroup's CPU time; every record says estimated and emulated board"
            )
        elif src.estimated:
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
    report["gpu"] = gpu_report(gpu or GpuFreq(ctx.sysfs_root))
    if report["gpu"]["found"] and not report["gpu"]["dvfs"]["available"]:
        notes.append(f"GPU dvfs: unavailable ({report['gpu']['dvfs']['reason']})")
    report["jtop"] = service_status(ctx)
    if ctx.cfg.emulated is not None:
        report["emulated"] = emulated_report(ctx)
    report["notes"] = notes
    return report


def emulated_report(ctx: SourceContext) -> Dict[str, Any]:
    """An emulated board's clock: the step its cgroup quota stands for, its steps, DVFS."""
    from .emulated_clock import EmulatedClock

    assert ctx.cfg.emulated is not None
    try:
        clock = EmulatedClock.from_config(ctx.cfg.emulated, ctx.sysfs_root)
        dvfs = clock.dvfs_status()
        return {
            "profile": clock.board.profile.name,
            "freq_hz": clock.read().freq_hz,
            "steps_hz": clock.steps_hz,
            "cgroup": str(clock.board.group.cpu_dir),
            "dvfs": {"available": dvfs.applied, "reason": dvfs.reason},
        }
    except SensingError as e:
        return {"profile": ctx.cfg.emulated.profile, "error": str(e)}


def _mhz(hz: Optional[float]) -> str:
    return "unknown" if not hz else f"{hz / 1e6:.0f} MHz"


def _gpu_lines(g: Dict[str, Any]) -> List[str]:
    if not g["found"]:
        return [f"gpu:     {g['reason']}"]
    steps = ", ".join(f"{s / 1e6:.0f}" for s in g["steps_hz"]) or "unknown"
    now = _mhz(g["freq_hz"]) if not g["read_error"] else f"unreadable ({g['read_error']})"
    d = g["dvfs"]
    return [
        f"gpu:     {g['node']} ({g['kind']}) {now} now, range {_mhz(g['min_hz'])} .. "
        f"{_mhz(g['max_hz'])}, governor {g['governor']}",
        f"  steps: {steps} MHz",
        "  dvfs:  available (max_freq writable)"
        if d["available"]
        else f"  dvfs:  unavailable ({d['reason']})",
    ]


def format_report(rep: Dict[str, Any], extra: Sequence[str] = ()) -> str:
    """Human-readable text of :func:`build_report`; ``extra`` lines go before the notes."""
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
        if c.get("gpu_rail"):
            watts = c.get("rails_w", {}).get(c["gpu_rail"])
            now = f", {watts:.2f} W now" if watts is not None else ""
            lines.append(
                f"gpu rail: {c['gpu_rail']} ({c['gpu_rail_covers']}){now}, "
                "reported per window beside the total"
            )
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
    lines.extend(_gpu_lines(rep["gpu"]))
    e = rep.get("emulated")
    if e is not None and "error" in e:
        lines.append(f"board clock: emulated board {e['profile']}: ERROR {e['error']}")
    elif e is not None:
        d = e["dvfs"]
        lines.append(
            f"board clock: emulated board {e['profile']} at {_mhz(e['freq_hz'])} (the CPU quota "
            f"of {e['cgroup']}), steps {_mhz(e['steps_hz'][0])} .. {_mhz(e['steps_hz'][-1])}; "
            + ("dvfs available" if d["available"] else f"dvfs unavailable ({d['reason']})")
        )
    lines.append(f"jtop:    {rep['jtop']}")
    lines.extend(extra)
    for n in rep["notes"]:
        lines.append(f"note:    {n}")
    return "\n".join(lines)


def probe(sysfs_root: Path = Path("/"), ctx: Optional[SourceContext] = None) -> Dict[str, Any]:
    return build_report(ctx or make_context(sysfs_root=sysfs_root))
