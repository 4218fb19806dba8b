"""The global model on the coordinator: architecture, initialisation, evaluation, checkpoints.

The engine works on numpy parameter dicts (what the codec carries); this module is the only
place on the coordinator that touches torch and the DDPM package.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from greenfed.config import ConfigError

log = logging.getLogger(__name__)


class ModelHost:
    """Builds the federated model and scores it with the quality metric."""

    def __init__(
        self,
        preset: str,
        eval_data: str,
        eval_samples: int,
        eval_ddim_steps: int,
        eval_threads: int = 1,
        schedule_steps: int = 200,
        feature_weights: Optional[str] = None,
        train_data: Optional[str] = None,
    ) -> None:
        from greenfed import ddpm
        from greenfed.ddpm.quality import shipped_source

        self._ddpm = ddpm
        try:
            data = ddpm.load_data(eval_data)
        except (ddpm.DataSpecError, FileNotFoundError) as e:
            raise ConfigError(f"eval_data: {e}") from e
        c, h, _ = data.shape
        self.unet_config = ddpm.preset(preset, in_channels=c, image_size=h)
        self.schedule = ddpm.NoiseSchedule(num_steps=schedule_steps)
        self.eval_data = eval_data
        self.eval_samples = eval_samples
        self.eval_ddim_steps = eval_ddim_steps
        self.eval_threads = eval_threads
        self.feature_weights = feature_weights
        self.train_data = train_data
        self.shipped_eval = shipped_source(eval_data)  # digits, mnist8: their own classifier
        shipped = self.shipped_eval is not None
        if eval_samples > 0 and not shipped and (train_data is None or feature_weights is None):
            # Fail at start-up, not after the first round's training.
            raise ConfigError(
                f"evaluating {eval_data!r} needs eval_train_data and eval_feature_weights "
                "(the shipped classifiers are for digits and mnist8; see docs/ddpm.md), or "
                "eval_samples = 0"
            )
        self._model = ddpm.build_model(self.unet_config, seed=0)
        self._metric: Optional[Any] = None

    def config_json(self) -> str:
        """What every device builds: the model, its schedule, and how it trains its round
        (``training_mode``: a name of edge_agent.training.MODES; today always "full")."""
        return json.dumps(
            {
                "unet": self.unet_config.to_dict(),
                "schedule": self.schedule.config.to_dict(),
                "training_mode": "full",
            }
        )

    def init_params(self, seed: int) -> Dict[str, np.ndarray]:
        model = self._ddpm.build_model(self.unet_config, seed=seed)
        return self._ddpm.get_state_arrays(model)

    def evaluate(self, params: Mapping[str, np.ndarray], seed: int) -> Dict[str, float]:
        """Sample with DDIM and score against held-out images; empty when eval is off."""
        if self.eval_samples <= 0:
            return {}
        ddpm = self._ddpm
        if self._metric is None:
            if self.shipped_eval is not None:
                self._metric = ddpm.QualityMetric.for_shipped(self.eval_data)
            else:  # other data: its own training split and feature weights (docs/ddpm.md)
                self._metric = ddpm.QualityMetric(
                    train=ddpm.load_data(self.train_data),
                    heldout=ddpm.load_data(self.eval_data),
                    feature_weights=self.feature_weights,
                )
        self._load(params)
        t0 = time.monotonic()
        images = ddpm.sample(
            self._model,
            self.schedule,
            self.eval_samples,
            steps=self.eval_ddim_steps,
            seed=seed,
            num_threads=self.eval_threads,
        )
        score = self._metric.score(images)
        out = {
            "fd": float(score.fd),
            "floor": float(score.floor),
            "noise": float(score.noise),
            "eval_s": time.monotonic() - t0,
        }
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def _load(self, params: Mapping[str, np.ndarray]) -> None:
        """Put the global parameters (as the engine holds them) into the evaluation model."""
        self._ddpm.set_state_arrays(self._model, params)

    def model_with(self, params: Mapping[str, np.ndarray]) -> Any:
        """The evaluation model (torch) holding ``params``; shared: do not keep it."""
        self._load(params)
        return self._model

    def save_checkpoint(
        self, params: Mapping[str, np.ndarray], directory: Path, round_no: int
    ) -> Path:
        """Atomic write (temp file + rename) of ``round-NNNN.pt``; returns its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"round-{round_no:04d}.pt"
        model = self._ddpm.build_model(self.unet_config, seed=0)
        self._ddpm.set_state_arrays(model, params)
        self._ddpm.save_checkpoint(path, model, self.schedule, meta={"round": round_no})
        return path

    def load_checkpoint(self, path: str) -> Dict[str, np.ndarray]:
        ckpt = self._ddpm.load_checkpoint(path)
        return self._ddpm.get_state_arrays(ckpt.model)
