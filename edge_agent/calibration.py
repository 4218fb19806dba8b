"""The calibration profile a board starts with: the saved one, or a quick one made now.

Shared by the agent daemon and a pool member (``greenfed-agent pool-member``): both need
their board's coefficients before they join anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.sensing import CalibrationProfile, CpuFreq, PowerMonitor, PowerSource, SensingConfig

log = logging.getLogger(__name__)


def load_or_calibrate(
    path: Path, quick: bool, source: PowerSource, cpu: CpuFreq, sensing: SensingConfig
) -> CalibrationProfile:
    """The profile at ``path``; without one, a quick calibration (a few seconds) saved
    there when ``quick``, else :class:`FileNotFoundError` saying what to run."""
    if path.exists():
        return CalibrationProfile.load(path)
    if not quick:
        raise FileNotFoundError(
            f"no calibration profile at {path}: run `greenfed-agent calibrate --out {path}`"
        )
    log.info(
        "no calibration profile at %s: running a quick calibration (a few seconds); "
        "run `greenfed-agent calibrate` for a full one",
        path,
    )
    from edge_agent.sensing import LoopbackSink, calibrate
    from edge_agent.training.workloads import default_workload

    workload, name = default_workload("auto", 64)
    monitor = PowerMonitor(source, cpu, sensing)
    with monitor, LoopbackSink() as sink:
        profile = calibrate(
            monitor,
            cpu,
            workload,
            sink.send,
            workload_name=name,
            uplink_target="loopback (quick calibration)",
            rest_s=1.0,
            step_s=1.5,
            max_steps=1,
            upload_bytes=1 << 20,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.save(path)
    return profile
