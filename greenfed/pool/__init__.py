"""Pools of trusted boards (DESIGN.md §8): the planner and its cost model, numpy only.

Board-valid (Python >= 3.8, no torch): the pool's leader plans on a board, the coordinator
and ``greenfed-agent pool-study`` reuse the same model to predict. The training itself
(torch.distributed) lives in :mod:`edge_agent.pool`.
"""

from __future__ import annotations

from .errors import PoolPlanError
from .model import (
    DATA,
    KINDS,
    PIPELINE,
    SINGLE,
    LayerProfile,
    LayerSums,
    MemberPlan,
    MemberSpec,
    PoolPlan,
    PoolWork,
    evaluate_data,
    evaluate_pipeline,
    evaluate_single,
)
from .planner import best_cuts, plan_pool

__all__ = [
    "DATA",
    "KINDS",
    "PIPELINE",
    "SINGLE",
    "LayerProfile",
    "LayerSums",
    "MemberPlan",
    "MemberSpec",
    "PoolPlan",
    "PoolPlanError",
    "PoolWork",
    "best_cuts",
    "evaluate_data",
    "evaluate_pipeline",
    "evaluate_single",
    "plan_pool",
]
