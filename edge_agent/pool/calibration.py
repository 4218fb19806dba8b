"""The pool's calibration profile: the coefficients the coordinator plans the pool with.

The coordinator's allocator sees a pool as one device (κ, cycles per sample, idle power, a
clock), so the pool is calibrated *as a pool*: the leader waits for its members, probes their
links, then trains ``pool.calibration_steps`` steps of the calibration workload (``pi-small``
on the pool's own data, batch 64) the way the planner would for a round as fast as the leader
alone at its top clock, and reads the members' measured windows:

    P_dyn = (sum of the members' dynamic energy) / wall time
    kappa = P_dyn / f_ref**3,  cycles_per_sample = f_ref * wall time / samples

at the reference clock ``f_ref`` = :data:`~edge_agent.sensing.NOMINAL_CLOCK_HZ` (``clock =
"nominal"``: a unit, not a reading; the pool's members set their own clocks), so that
``kappa * C * f_ref**2`` is the measured dynamic energy of the work. The pool's idle power is
the sum of its boards'; its uplink is the leader's. The coordinator's closed loop refits the
coefficients from every round's report, whose "compute" window is the pool's sum.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from edge_agent.sensing import NOMINAL_CLOCK_HZ, CalibrationProfile
from edge_agent.training.base import LocalPlan
from edge_agent.training.pool import PoolTraining
from greenfed.pool import LayerSums, MemberSpec, PoolWork, evaluate_single

from .errors import PoolRoundFailed
from .leader import PoolLeader

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 64


def calibration_model_config(images: Any) -> Dict[str, Any]:
    from greenfed.ddpm import ScheduleConfig, preset

    cfg = preset("pi-small", in_channels=int(images.shape[1]), image_size=int(images.shape[2]))
    return {"unet": cfg.to_dict(), "schedule": ScheduleConfig().to_dict(), "training_mode": "full"}


def alone_at_top_s(trainer: PoolTraining, leader: MemberSpec, steps: int, batch: int) -> float:
    """Seconds the leader alone would take at its top clock (the calibration's deadline)."""
    top = MemberSpec(
        id=leader.id,
        kappa=leader.kappa,
        f_steps_hz=(leader.f_steps_hz[-1],),
        memory_bytes=leader.memory_bytes,
        link_bytes_per_s=leader.link_bytes_per_s,
        link_energy_per_byte_j=leader.link_energy_per_byte_j,
        speed_scale=leader.speed_scale,
    )
    work = PoolWork(batch_size=batch, steps=steps, deadline_s=1e9)
    return evaluate_single(LayerSums(trainer.layers), top, work).round_time_s


def calibrate_pool(leader: PoolLeader, steps: int, num_threads: int) -> CalibrationProfile:
    """Wait for the members, probe the links, train the calibration workload as a pool."""
    from greenfed.ddpm import build_model, get_state_arrays
    from greenfed.ddpm.unet import UNetConfig

    conns = leader.wait_members()
    if conns:
        try:
            leader.probe(conns)
        except PoolRoundFailed as e:
            log.warning("pool: link probe failed (%s); planning with assumed links", e)
            conns = leader.live()
    images = leader.images
    model_config = calibration_model_config(images)
    trainer = PoolTraining(model_config, images, leader)
    trainer.load_global(get_state_arrays(build_model(UNetConfig.from_dict(model_config["unet"]))))
    batch = min(CALIBRATION_BATCH, len(images))
    budget = alone_at_top_s(trainer, leader.specs(conns)[0], steps, batch)
    plan = LocalPlan(steps, batch, 2e-3, 0, max(budget, 0.5) * 2, num_threads)
    try:
        result = trainer.train(plan)
    except PoolRoundFailed as e:  # a member left: once more with the members that answer
        log.warning("pool calibration round failed (%s); again with the members left", e)
        result = trainer.train(plan)
    pool = result.pool
    assert pool is not None
    own = leader.me.profile
    f_ref = NOMINAL_CLOCK_HZ
    wall = max(pool.wall_s, 1e-6)
    dynamic = max(pool.dynamic_energy_j, 1e-9)
    members: List[Any] = [c.hello.get("profile") or {} for c in leader.gate.joined()]
    idle = float(own.idle_power_w) + sum(float(p.get("idle_power_w") or 0.0) for p in members)
    estimated = any(w.estimated for w in pool.windows())
    notes = [
        f"pool of {len(pool.outcomes)} ({', '.join(o.member_id for o in pool.outcomes)}), "
        f"calibrated as {pool.plan.label}: {pool.dynamic_energy_j:.3g} J dynamic over "
        f"{pool.wall_s:.3g} s for {result.samples} samples",
        "clock: a nominal reference; the pool's planner sets each member's own clock",
    ]
    profile = CalibrationProfile(
        idle_power_w=idle,
        kappa=dynamic / wall / f_ref**3,
        cycles_per_sample=f_ref * wall / max(result.samples, 1),
        uplink_bytes_per_s=own.uplink_bytes_per_s,
        energy_per_byte_j=own.energy_per_byte_j,
        f_min_hz=f_ref,
        f_max_hz=f_ref,
        f_steps_hz=[],
        source=pool.source_label(),
        scope=f"pool of {len(pool.outcomes)}: the sum of its members' own measurements",
        estimated=estimated,
        kappa_single_point=True,
        dvfs="pool: its planner sets each member's clock",
        workload=(
            f"pool calibration: {result.steps} steps of pi-small on the pool's data, "
            f"batch {batch}, {pool.plan.label}"
        ),
        uplink_target=own.uplink_target,
        notes=notes,
        clock="nominal",
    )
    log.info("pool calibrated: %s", "; ".join(notes))
    return profile
