"""Errors of :mod:`greenfed.pool` (the pool planner; pure, numpy only)::

    GreenfedError
    └── PoolPlanError (ValueError)   the planner's inputs are malformed (no layers, no members,
                                      a negative rate, frequency steps out of order...); the
                                      message names the field

An infeasible pool (no structure meets the deadline or fits the members' memory) is not an
error: :func:`greenfed.pool.plan_pool` returns a plan with ``feasible=False`` and the reason.
"""

from __future__ import annotations

from greenfed.errors import GreenfedError


class PoolPlanError(GreenfedError, ValueError):
    """Malformed planner input; the message starts with the field."""
