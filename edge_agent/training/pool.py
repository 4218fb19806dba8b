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
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from greenfed.pool import KINDS, PIPELINE, SINGLE, LayerProfile, PoolPlan, PoolWork, plan_pool
from greenfed.updates import update_of

from .base import LocalPlan, LocalResult
from .full import FullModelTraining

log = logging.getLogger(__name__)


@dataclass
class PoolResult(LocalResult):
    """A local result with the pool's round (plan, members' figures)."""

    pool: Optional[Any] = None  # edge_agent.pool.report.PoolRound


class PoolTraining(FullModelTraining):
    """The leader's round across its pool (see the module docstring): the full model, as
    :class:`FullModelTraining`, trained by one board or several."""

    name = "pool"

    def __init__(
        self,
        model_config: Mapping[str, Any],
        images: np.ndarray,
        leader: Any = None,  # edge_agent.pool.leader.PoolLeader
        layers: Optional[List[LayerProfile]] = None,
    ) -> None:
        if leader is None:
            raise ValueError("pool training needs the pool's leader")
        mode = str(model_config.get("training_mode", "full"))
        if mode != "full":
            raise ValueError(
                f"the coordinator asks for training mode {mode!r}; a pool trains the full "
                "model only: run this board without [pool] for that mode"
            )
        super().__init__(model_config, images)
        self.leader = leader
        self.model_config = {"unet": model_config["unet"], "schedule": model_config["schedule"]}
        self.layers = layers if layers is not None else leader.layer_profiles(self.model.config)
        self._rounds = 0

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
            alone_train = super().train  # the full model on the leader alone
            outcome, alone = self.leader.train_alone(
                chosen.members[0].freq_hz, lambda: alone_train(plan)
            )
            outcomes, engine, update = [outcome], "local", alone.update
        else:
            outcomes, engine, trained = self._across(plan, chosen, conns)
            update = update_of(trained, self._start)
        wall = time.monotonic() - t0
        lead = outcomes[0]
        return PoolResult(
            update=update,
            samples=int(lead.samples),
            steps=int(lead.steps),
            losses=[float(x) for x in lead.losses if np.isfinite(x)],
            stopped_early=bool(lead.stopped_early),
            pool=PoolRound(chosen, outcomes, wall, engine, int(lead.steps)),
        )

    def _across(
        self, plan: LocalPlan, chosen: PoolPlan, conns: List[Any]
    ) -> Tuple[List[Any], str, Dict[str, np.ndarray]]:
        """A data-parallel or pipeline round across the chosen members."""
        from edge_agent.pool.worker import RoundSpec

        by_id = {c.id: c for c in conns}
        ranks = [m.id for m in chosen.members]
        pipeline = chosen.kind == PIPELINE
        engine = self.leader.engine_for(chosen, plan.batch_size) if pipeline else "p2p"
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
            bounds=[m.units[0] for m in chosen.members] + [len(self.layers)] if pipeline else [],
            micro_batches=chosen.micro_batches,
            engine=engine,
            freq_hz=[m.freq_hz for m in chosen.members],
            num_threads=plan.num_threads,
        )
        outcomes, trained = self.leader.run_round(spec, [by_id[i] for i in ranks[1:]], self._start)
        self._ddpm.set_state_arrays(self.model, trained)
        return outcomes, engine if pipeline else "all-reduce", trained
