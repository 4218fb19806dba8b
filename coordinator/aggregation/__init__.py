"""Aggregation rules, chosen by the coordinator's ``aggregation`` key.

Add a rule: one file with an :class:`~coordinator.aggregation.base.Aggregator` subclass, and
one line in :data:`RULES`.
"""

from __future__ import annotations

from typing import Dict, Tuple, Type

from greenfed.errors import ConfigError

from .adapters import FFA, AdapterAggregator, FedIT
from .base import Aggregator, RuleOptions, Template, check_update, template_of
from .fedavg import FedAvg
from .trimmed import TrimmedMean

RULES: Dict[str, Type[Aggregator]] = {
    FedAvg.name: FedAvg,
    TrimmedMean.name: TrimmedMean,
    FedIT.name: FedIT,
    FFA.name: FFA,
}

__all__ = [
    "FFA",
    "RULES",
    "AdapterAggregator",
    "Aggregator",
    "FedAvg",
    "FedIT",
    "RuleOptions",
    "TrimmedMean",
    "adapter_parts",
    "check_rule",
    "check_update",
    "make_aggregator",
    "template_of",
]


def check_rule(name: str) -> None:
    if name not in RULES:
        raise ConfigError(f"aggregation: unknown rule {name!r}; known: {', '.join(sorted(RULES))}")


def adapter_parts(name: str) -> Tuple[str, ...]:
    """The adapter factors rule ``name`` aggregates ("A", "B"), or () for a full-model rule."""
    check_rule(name)
    rule = RULES[name]
    return rule.parts if issubclass(rule, AdapterAggregator) else ()


def make_aggregator(
    name: str, template: Template, options: RuleOptions = RuleOptions()
) -> Aggregator:
    """A fresh aggregator of rule ``name`` for one round."""
    check_rule(name)
    return RULES[name](template, options)
