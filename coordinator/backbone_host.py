"""Model hosts that start from a shipped pretrained backbone (docs/lora.md).

- :class:`FineTuneHost` (aggregation ``fedavg`` with ``backbone`` set): the global model starts
  at the backbone's weights and every weight is federated: full-model fine-tuning, the
  baseline adapters are compared with.
- :class:`AdapterHost` (``fedit``, ``ffa``): the backbone stays frozen on every side; the global
  "model" the engine holds, sends and aggregates is the global LoRA adapter's factors (A and B
  for fedit, B only for ffa), so d, the codec and the allocator follow the adapter's size.
  Evaluation samples backbone + adapter; a checkpoint is the merged model (a plain checkpoint:
  sample or export it as any other) beside ``round-NNNN.adapter.npz``, the adapter itself, from
  which a restarted coordinator resumes.

:func:`make_host` builds the host a configuration asks for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from coordinator.aggregation import adapter_parts
from coordinator.config import CoordinatorConfig
from coordinator.model_host import ModelHost
from greenfed.config import ConfigError


class FineTuneHost(ModelHost):
    """Full-model federation that starts from the backbone's weights."""

    def __init__(self, cfg: CoordinatorConfig, **host_args: Any) -> None:
        from greenfed.ddpm.backbone import load_backbone

        super().__init__(**host_args)
        try:
            self.backbone = load_backbone(str(cfg.backbone))
        except self._ddpm.CheckpointError as e:
            raise ConfigError(f"backbone: {e}") from e
        if self.backbone.unet != self.unet_config:
            raise ConfigError(
                f"backbone {self.backbone.name} is a {self.backbone.meta.get('preset', '?')} "
                f"UNet for {self.backbone.unet.image_size}×{self.backbone.unet.image_size} "
                f"images; model_preset {host_args['preset']!r} and eval_data "
                f"{host_args['eval_data']!r} give another model"
            )
        self.schedule = self._ddpm.NoiseSchedule.from_config(self.backbone.schedule)

    def init_params(self, seed: int) -> Dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.backbone.arrays.items()}


class AdapterHost(FineTuneHost):
    """The global LoRA adapter on the frozen backbone (see the module docstring)."""

    def __init__(self, cfg: CoordinatorConfig, **host_args: Any) -> None:
        from greenfed.ddpm import lora

        super().__init__(cfg, **host_args)
        self._lora = lora
        self.parts = adapter_parts(cfg.aggregation)
        self.settings = cfg.lora
        try:
            self.lora_config = lora.LoraConfig(
                rank=cfg.lora.rank,
                alpha=cfg.lora.alpha,
                targets=tuple(cfg.lora.targets),
                seed=cfg.lora.seed,
            )
            self._model = self._adapted_model()
        except self._ddpm.ModelConfigError as e:
            raise ConfigError(f"lora: {e}") from e
        self.personal: Optional[Dict[str, Any]] = None
        if cfg.lora.personal:
            if self.shipped_eval is None:
                raise ConfigError(
                    "lora.personal: devices score their personal adapters with the classifier "
                    "of a shipped data set, and eval_data is none (evaluate on mnist8 or "
                    "digits, or leave personal off)"
                )
            self.personal = {
                "holdout": cfg.lora.personal_holdout,
                "eval_samples": cfg.lora.personal_eval_samples,
                "metric": self.shipped_eval or "",
            }

    def _adapted_model(self) -> Any:
        ddpm, lora = self._ddpm, self._lora
        model = ddpm.build_model(self.unet_config)
        ddpm.set_state_arrays(model, self.backbone.arrays)
        lora.apply_lora(model, self.lora_config, lora.GLOBAL)
        return model

    def config_json(self) -> str:
        """The backbone (name and sha256), the adapter and which factors devices train."""
        return json.dumps(
            {
                "unet": self.unet_config.to_dict(),
                "schedule": self.schedule.config.to_dict(),
                "training_mode": "lora",
                "backbone": {"name": self.backbone.name, "sha256": self.backbone.sha256},
                "lora": self.lora_config.to_dict(),
                "adapter_parts": list(self.parts),
                "personal": self.personal,
            }
        )

    def init_params(self, seed: int) -> Dict[str, np.ndarray]:
        """The untrained global adapter: A from the LoRA seed, B = 0 (the backbone itself)."""
        return self._lora.adapter_arrays(self._adapted_model(), self._lora.GLOBAL, self.parts)

    def _load(self, params: Mapping[str, np.ndarray]) -> None:
        self._lora.set_adapter_arrays(self._model, params, self._lora.GLOBAL)

    def merged(self, params: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Backbone + adapter ``params`` as the plain UNet's state."""
        self._load(params)
        return self._lora.merged_state_arrays(self._model)

    @staticmethod
    def adapter_path(checkpoint: Path) -> Path:
        return checkpoint.with_name(checkpoint.name.replace(".pt", ".adapter.npz"))

    def save_checkpoint(
        self, params: Mapping[str, np.ndarray], directory: Path, round_no: int
    ) -> Path:
        """The adapter (``.adapter.npz``, atomic) first, then the merged model (``.pt``)."""
        from greenfed.ddpm.data import npz_bytes

        directory.mkdir(parents=True, exist_ok=True)
        side = self.adapter_path(directory / f"round-{round_no:04d}.pt")
        tmp = side.with_name(side.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(npz_bytes(dict(params)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, side)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return super().save_checkpoint(self.merged(params), directory, round_no)

    def load_checkpoint(self, path: str) -> Dict[str, np.ndarray]:
        side = self.adapter_path(Path(path))
        try:
            with np.load(side, allow_pickle=False) as f:
                params = {k: f[k].copy() for k in f.files}
        except (OSError, ValueError) as e:
            raise ConfigError(f"{side}: the round's adapter cannot be read: {e}") from e
        expected = {k: v.shape for k, v in self.init_params(0).items()}
        if {k: v.shape for k, v in params.items()} != expected:
            raise ConfigError(
                f"{side}: its adapter does not fit this configuration (lora.rank, lora.targets "
                "or aggregation changed since the run began?)"
            )
        return params


def make_host(cfg: CoordinatorConfig) -> ModelHost:
    """The model host ``cfg`` asks for: plain, fine-tuning from a backbone, or adapters."""
    host_args: Dict[str, Any] = {
        "preset": cfg.model_preset,
        "eval_data": cfg.eval_data,
        "eval_samples": cfg.eval_samples,
        "eval_ddim_steps": cfg.eval_ddim_steps,
        "eval_threads": cfg.eval_threads,
        "feature_weights": str(cfg.eval_feature_weights) if cfg.eval_feature_weights else None,
        "train_data": cfg.eval_train_data,
    }
    if adapter_parts(cfg.aggregation):
        return AdapterHost(cfg, **host_args)
    if cfg.backbone:
        return FineTuneHost(cfg, **host_args)
    return ModelHost(**host_args)
