"""Local training modes of the agent, chosen by the coordinator's model configuration.

Add a mode: one file with a :class:`~edge_agent.training.base.LocalTraining` subclass, and
one line in :data:`MODES`. The coordinator names the mode in its RegisterReply's model
configuration (``"training_mode"``, default ``"full"``).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Type

import numpy as np

from edge_agent.errors import AgentError

from .base import LocalPlan, LocalResult, LocalTraining
from .full import FullModelTraining
from .lora import AdapterTraining

MODES: Dict[str, Type[LocalTraining]] = {
    FullModelTraining.name: FullModelTraining,
    AdapterTraining.name: AdapterTraining,
}

__all__ = ["MODES", "LocalPlan", "LocalResult", "LocalTraining", "make_training"]


def make_training(
    model_config: Mapping[str, Any], images: np.ndarray, device: str = "cpu"
) -> LocalTraining:
    """The training mode the coordinator asked for, built for this device's images on the
    torch ``device`` ("cpu" or "cuda", as :func:`.device.resolve_device` chose)."""
    name = str(model_config.get("training_mode", FullModelTraining.name))
    if name not in MODES:
        raise AgentError(
            f"the coordinator asks for training mode {name!r}, which this agent does not "
            f"have (it knows {', '.join(sorted(MODES))}): install the coordinator's greenfed "
            "version on the board"
        )
    return MODES[name](model_config, images, device)
