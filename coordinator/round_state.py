"""In-memory state of the open round, shared by the engine and the round driver.

Everything a device's part in the round depends on is fixed when the round opens: its codec
mode and bits, its deadline, and its FedAvg weight (``weight``: the data size D_k it had
registered then). Re-registering mid-round changes the next round, never the open one.
"""

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
    weight: int = 1  # FedAvg weight: the device's registered data size when the round opened


@dataclass
class OpenRound:
    number: int
    scheme: str
    deadline_unix: float
    assignments: Dict[str, DeviceAssignment]
    aggregator: Aggregator
    accepted: Set[str] = field(default_factory=set)
    reported: Set[str] = field(default_factory=set)
    closed: bool = False  # no more uploads (every update arrived, the deadline, or a stop)
    close_reason: str = ""
    final: bool = False  # the round's record is being written: no more reports either
    norms: List[float] = field(default_factory=list)


FINISHED = "finished"
