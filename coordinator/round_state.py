"""In-memory state of the open round, shared by the engine and the round driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Set

from coordinator.aggregation import Aggregator


@dataclass
class DeviceAssignment:
    round: int
    device_id: str
    mode: str
    bits: int
    freq_hz: float
    local_steps: int
    batch_size: int
    learning_rate: float
    block_size: int
    deadline_unix: float
    deadline_s: float
    model_sha256: str
    seed: int
    predicted_energy_j: float
    scheme: str


@dataclass
class OpenRound:
    number: int
    scheme: str
    deadline_unix: float
    assignments: Dict[str, DeviceAssignment]
    aggregator: Aggregator
    accepted: Set[str] = field(default_factory=set)
    reported: Set[str] = field(default_factory=set)
    closed: bool = False
    norms: List[float] = field(default_factory=list)


FINISHED = "finished"
