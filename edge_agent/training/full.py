"""Full-model training: every weight of the DDPM trains; the update is trained − global."""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np

from greenfed.updates import update_of

from .base import LocalPlan, LocalResult, LocalTraining


class FullModelTraining(LocalTraining):
    """Today's local round: ``greenfed.ddpm.train_local`` on the whole UNet."""

    name = "full"

    def __init__(
        self, model_config: Mapping[str, Any], images: np.ndarray, device: str = "cpu"
    ) -> None:
        from greenfed import ddpm

        self._ddpm = ddpm
        self.images = images
        self.device = device
        model = ddpm.build_model(ddpm.UNetConfig.from_dict(model_config["unet"]))
        self.model = model.to(device)
        self.schedule = ddpm.NoiseSchedule.from_config(
            ddpm.ScheduleConfig.from_dict(model_config["schedule"])
        )
        self._start: Dict[str, np.ndarray] = {}

    @property
    def num_values(self) -> int:
        return sum(int(v.numel()) for v in self.model.parameters())

    def load_global(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._ddpm.set_state_arrays(self.model, arrays)  # host arrays, copied to the device
        self._start = dict(arrays)

    def _current(self) -> Dict[str, np.ndarray]:
        """What the device holds of the global model now (the update is this − start)."""
        return self._ddpm.get_state_arrays(self.model)

    def train(self, plan: LocalPlan) -> LocalResult:
        ddpm = self._ddpm
        result = ddpm.train_local(
            self.model,
            self.schedule,
            self.images,
            ddpm.TrainConfig(
                steps=plan.steps,
                batch_size=plan.batch_size,
                lr=plan.learning_rate,
                seed=plan.seed,
                num_threads=plan.num_threads,
                max_seconds=plan.max_seconds,
            ),
        )
        losses = [float(x) for x in result.losses if np.isfinite(x)]
        return LocalResult(  # get_state_arrays copies back to host memory for the codec
            update=update_of(self._current(), self._start),
            samples=int(result.samples),
            steps=int(result.steps),
            losses=losses,
            stopped_early=bool(result.stopped_early),
        )
