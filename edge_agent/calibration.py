"""The calibration profile a board starts with: the saved one, or a quick one made now.

Shared by the agent daemon and a pool member (``greenfed-agent pool-member``): both need
their board's coefficients before they join anything. The profile's place is the agent
TOML's ``profile``, else ``state_dir/calibration.json`` (where ``calibrate`` writes too).
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.sensing import (
    CalibrationError,
    CalibrationProfile,
    ComputeClock,
    PowerSource,
    SensingConfig,
)

log = logging.getLogger(__name__)

#: A quick calibration's uplink target: a later start says the profile is only a quick one.
QUICK_UPLINK_TARGET = "loopback (quick calibration)"


def load_or_calibrate(
    path: Path,
    where: str,
    quick: bool,
    source: PowerSource,
    clock: ComputeClock,
    sensing: SensingConfig,
    device: str = "cpu",
) -> CalibrationProfile:
    """The profile at ``path`` (``where``: which setting named it), checked against the
    training ``device``; without one, a quick calibration (a few seconds) saved there when
    ``quick``, else :class:`FileNotFoundError` saying what to run. Logged either way."""
    if path.exists():
        profile = CalibrationProfile.load(path)
        if profile.train_device != device:
            raise CalibrationError(
                f"the profile at {path} was calibrated on {profile.train_device}, but this "
                f"run trains on {device}: its coefficients do not hold here. Run "
                f"`greenfed-agent calibrate --device {device} --out {path}`, or "
                f"`greenfed-agent run --device {profile.train_device}`"
            )
        log.info(
            "calibration profile %s (%s): measured %s, power %s%s, workload %s",
            path,
            where,
            profile.created_at,
            profile.source,
            " (estimated)" if profile.estimated else "",
            profile.workload,
        )
        if profile.uplink_target == QUICK_UPLINK_TARGET:
            log.warning(
                "%s holds a quick calibration's profile (rough coefficients): stop the "
                "agent and run `greenfed-agent calibrate --device %s --out %s` for "
                "measured ones",
                path,
                device,
                path,
            )
        return profile
    if not quick:
        raise FileNotFoundError(
            f"no calibration profile at {path} ({where}) and quick_calibration is off: "
            f"run `greenfed-agent calibrate --device {device} --out {path}` (or "
            "calibrate --config with this agent's TOML)"
        )
    log.warning(
        "no calibration profile at %s (%s): running a quick calibration instead "
        "(1 s at rest, one 1.5 s training step, 1 MiB to a loopback sink), rougher than "
        "a full one; run `greenfed-agent calibrate --config <this agent's TOML>` and restart",
        path,
        where,
    )
    from edge_agent.sensing import calibrate_on_loopback
    from edge_agent.training.workloads import default_workload

    workload, name = default_workload("auto", 64, device=device)
    profile = calibrate_on_loopback(
        source,
        clock,
        sensing,
        workload,
        workload_name=name,
        device=device,
        uplink_target=QUICK_UPLINK_TARGET,
        rest_s=1.0,
        step_s=1.5,
        max_steps=1,
        upload_bytes=1 << 20,
    )
    profile.notes.append("quick calibration at agent start: no profile existed")
    try:  # kept, so a restart plans with the same coefficients; calibrate overwrites it
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.save(path)
        log.info("quick calibration saved to %s (calibrate replaces it)", path)
    except (OSError, CalibrationError) as e:
        log.warning("quick calibration not saved (%s): the next start calibrates again", e)
    return profile
