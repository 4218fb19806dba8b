"""Errors raised by :mod:`coordinator.allocator`.

Hierarchy::

    AllocatorError            base of everything this package raises
    ├── FleetError            a FLEET description is malformed or physically impossible;
    │                         the message starts with the field path, e.g.
    │                         ``devices[2].f_min_hz: must be <= f_max_hz``
    └── SchemeError           an unknown scheme name (also a greenfed.errors.ConfigError, so
                              a ValueError): from Scheme.parse, the one parser

An *infeasible* plan is not an error: :func:`coordinator.allocator.allocate` returns a
:class:`~coordinator.allocator.plan.Plan` with ``feasible=False`` and a list of
:class:`~coordinator.allocator.plan.Infeasibility` entries saying which constraint fails and by
how much.
"""

from __future__ import annotations

from greenfed.errors import ConfigError


class AllocatorError(Exception):
    """Base class of the allocator's errors."""


class FleetError(AllocatorError, ValueError):
    """A fleet description is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SchemeError(AllocatorError, ConfigError):
    """An unknown scheme name; the message lists the known ones."""
