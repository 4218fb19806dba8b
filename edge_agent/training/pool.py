"""Pool training: a leader trains its round across the boards of its pool (docs/pools.md).

Not a mode the coordinator chooses (it names ``full`` and sees one participant): the daemon
uses this class instead of :class:`~edge_agent.training.full.FullModelTraining` when the agent
leads a pool (``[pool]`` in agent.toml). The round trains the whole model, as ``full`` does;
each round the pool planner (:func:`greenfed.pool.plan_pool`) picks single board, data
parallel or a pipeline and a clock per member for the round's time budget, from the layer
profile measured here once per model and the members that answer now.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from greenfed.pool import DATA, KINDS, PIPELINE, SINGLE, LayerProfile, PoolPlan, PoolWork, plan_pool
from greenfed.updates import update_of

from .base import LocalPlan, LocalResult, LocalTraining

log = logging.getLogger(__name__)


@dataclass
class PoolResult(LocalResult):
    """A local result with the pool's round (plan, members' figures)."""

    pool: Optional[Any] = None  # edge_agent.pool.report.PoolRound


class PoolTraining(LocalTraining):
    """The leader's round across its pool (see the module docstring)."""

    name = "pool"

    def __init__(
        self,
        model_config: Mapping[str, Any],
        images: np.ndarray,
        leader: Any = None,  # edge_agent.pool.leader.PoolLeader
        layers: Optional[List[LayerProfile]] = None,
    ) -> None:
        from greenfed import ddpm

        if leader is None:
            raise ValueError("pool training needs the pool's leader")
        mode = str(model_config.get("training_mode", "full"))
        if mode != "full":
            raise ValueError(
                f"the coordinator asks for training mode {mode!r}; a pool trains the full "
                "model only: run this board without [pool] for that mode"
            )
        self._ddpm = ddpm
        self.leader = leader
        self.images = images
        self.model_config = {"unet": model_config["unet"], "schedule": model_config["schedule"]}
        unet_cfg = ddpm.UNetConfig.from_dict(model_config["unet"])
        self.model = ddpm.build_model(unet_cfg)
        self.schedule = ddpm.NoiseSchedule.from_config(
            ddpm.ScheduleConfig.from_dict(model_config["schedule"])
        )
        self.layers = layers if layers is not None else leader.layer_profiles(unet_cfg)
        self._start: Dict[str, np.ndarray] = {}
        self._rounds = 0

    @property
    def num_values(self) -> int:
        return sum(int(v.numel()) for v in self.model.parameters())

    def load_global(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._ddpm.set_state_arrays(self.model, arrays)
        self._start = dict(arrays)

    def plan(self, plan: LocalPlan, members: List[Any]) -> PoolPlan:
        cfg = self.leader.cfg
        kinds = KINDS if cfg.parallelism == "auto" else (cfg.parallelism,)
        work = PoolWork(
            batch_size=min(plan.batch_size, len(self.images)),
            steps=max(plan.steps, 1),
            deadline_s=max(plan.max_seconds, 1e-3),
        )
        return plan_pool(self.layers, members, work, kinds, cfg.micro_batches, cfg.width)

    def train(self, plan: LocalPlan) -> PoolResult:
        from edge_agent.pool.report import PoolRound
        from edge_agent.pool.worker import RoundSpec

        conns = self.leader.live()
        chosen = self.plan(plan, self.leader.specs(conns))
        self._rounds += 1
        log.info(
            "pool round %d: %s, predicted %.3g J dynamic, step %.3g s%s",
            self._rounds,
            chosen.label,
            chosen.energy_j,
            chosen.step_time_s,
            "" if chosen.feasible else f" (infeasible: {chosen.reason})",
        )
        t0 = time.monotonic()
        if chosen.kind == SINGLE:
            outcome, trained = self.leader.train_alone(self.model, self.schedule, plan, chosen)
            outcomes, engine = [outcome], "local"
        else:
            by_id = {c.id: c for c in conns}
            ranks = [m.id for m in chosen.members]
            engine = self.leader.engine_for(chosen, plan.batch_size)
            spec = RoundSpec(
                round_id=f"{plan.seed}-{self._rounds}",
                kind=chosen.kind,
                members=ranks,
                model_config=self.model_config,
                steps=plan.steps,
                batch_size=plan.batch_size,
                lr=plan.learning_rate,
                seed=plan.seed,
                max_seconds=plan.max_seconds,
                bounds=[m.units[0] for m in chosen.members] + [len(self.layers)]
                if chosen.kind == PIPELINE
                else [],
                micro_batches=chosen.micro_batches,
                engine=engine if chosen.kind == PIPELINE else "p2p",
                freq_hz=[m.freq_hz for m in chosen.members],
                num_threads=plan.num_threads,
            )
            outcomes, trained = self.leader.run_round(
                spec, [by_id[i] for i in ranks[1:]], self._start
            )
            engine = engine if chosen.kind == PIPELINE else "all-reduce"
            self._ddpm.set_state_arrays(self.model, trained)
        wall = time.monotonic() - t0
        lead = outcomes[0]
        losses = [float(x) for x in lead.losses if np.isfinite(x)]
        assert chosen.kind in (SINGLE, DATA, PIPELINE)
        return PoolResult(
            update=update_of(trained, self._start),
            samples=int(lead.samples),
            steps=int(lead.steps),
            losses=losses,
            stopped_early=bool(lead.stopped_early),
            pool=PoolRound(chosen, outcomes, wall, engine, int(lead.steps)),
        )
