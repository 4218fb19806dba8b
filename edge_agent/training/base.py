"""The local-training interface: how a device turns the global model into its update.

A training mode is one class behind :class:`LocalTraining`, registered by name in
:data:`edge_agent.training.MODES`. The daemon hands it the round's global model and plan and
gets back the update to encode (host-memory numpy arrays, as the codec takes them), whatever
happens inside: full-model training today; adapters (LoRA) or a pool of boards later.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

import numpy as np


@dataclass(frozen=True)
class LocalPlan:
    """What the assignment asks of one local round; ``max_seconds`` is the time budget left
    for training so the upload still meets the deadline."""

    steps: int
    batch_size: int
    learning_rate: float
    seed: int
    max_seconds: float
    num_threads: int = 1


@dataclass
class LocalResult:
    """One local round: ``update`` = trained − start (float tensors float32), with the work
    done (``samples`` = images processed, ``steps``), the losses logged and whether the
    time budget cut training short."""

    update: Dict[str, np.ndarray]
    samples: int
    steps: int
    losses: List[float] = field(default_factory=list)
    stopped_early: bool = False


class LocalTraining(abc.ABC):
    """One way of training a local round. Built once per run from the coordinator's model
    configuration (``model_config``: the RegisterReply's JSON), the device's data and the
    torch device it trains on (``"cpu"`` or ``"cuda"``: the whole round runs there, the
    update comes back in host memory)."""

    name: str = "abstract"

    @abc.abstractmethod
    def __init__(
        self, model_config: Mapping[str, Any], images: np.ndarray, device: str = "cpu"
    ) -> None:
        """Build the model on ``device`` (nothing trained yet)."""

    @property
    @abc.abstractmethod
    def num_values(self) -> int:
        """Values in one update: the d the upload's size follows from."""

    @abc.abstractmethod
    def load_global(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Start the round from the global model (as the codec decoded it)."""

    @abc.abstractmethod
    def train(self, plan: LocalPlan) -> LocalResult:
        """Train from the loaded global model; returns the update to send."""

    @property
    def evaluates(self) -> bool:
        """Whether :meth:`evaluate` measures anything (the daemon opens its window then)."""
        return False

    def evaluate(self) -> Dict[str, float]:
        """Quality of the device's own models after the round, as RoundReport fields (the
        daemon runs it after the upload, in an "evaluate" window). None by default."""
        return {}
