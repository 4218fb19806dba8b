"""Checkpoints (config inside) and the numpy state-dict view the federated codec works on.

A checkpoint is one ``torch.save`` file holding only plain types and tensors, so it loads with
``weights_only=True``::

    {"format": "greenfed.ddpm/1", "unet": UNetConfig dict, "schedule": ScheduleConfig dict,
     "state": state_dict, "ema": state_dict or None, "meta": dict of plain values}

``get_state_arrays``/``set_state_arrays`` convert the model's float tensors to and from
``Dict[str, np.ndarray]`` in a stable order (the order of ``model.state_dict()``, fixed by the
config; ``tensor_names(model)`` lists it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError
from .schedule import NoiseSchedule, ScheduleConfig
from .unet import UNet, UNetConfig, build_model

FORMAT = "greenfed.ddpm/1"
PathLike = Union[str, "os.PathLike[str]"]


def tensor_names(model: nn.Module) -> List[str]:
    """Names of the model's floating-point tensors, in the stable order the codec uses."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point()]


def get_state_arrays(model: nn.Module) -> Dict[str, np.ndarray]:
    """The model's float tensors as float32 numpy copies, in ``tensor_names`` order."""
    return {
        k: v.detach().cpu().numpy().astype(np.float32, copy=True)
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }


def set_state_arrays(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Load numpy arrays back into ``model`` in place; names and shapes must match exactly."""
    state = model.state_dict()
    expected = set(tensor_names(model))
    missing, extra = expected - set(arrays), set(arrays) - expected
    if missing or extra:
        raise CheckpointError(f"state mismatch: missing {sorted(missing)}, extra {sorted(extra)}")
    with torch.no_grad():
        for k in tensor_names(model):
            a = np.asarray(arrays[k])
            if tuple(a.shape) != tuple(state[k].shape):
                raise CheckpointError(f"{k}: shape {a.shape} != {tuple(state[k].shape)}")
            state[k].copy_(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))


def state_nbytes(model: nn.Module) -> int:
    """fp32 bytes of the float state dict (what an unquantized update costs)."""
    return sum(int(v.numel()) * 4 for v in model.state_dict().values() if v.is_floating_point())


@dataclass
class Checkpoint:
    model: UNet
    schedule: NoiseSchedule
    ema: Optional[Dict[str, torch.Tensor]] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> UNetConfig:
        return self.model.config


def save_checkpoint(
    path: PathLike,
    model: UNet,
    schedule: NoiseSchedule,
    *,
    ema: Optional[Mapping[str, torch.Tensor]] = None,
    meta: Optional[Dict[str, Any]] = None,
) -> None:
    """Write atomically: temp file, fsync, rename; the temp file is removed on failure."""
    blob = {
        "format": FORMAT,
        "unet": model.config.to_dict(),
        "schedule": schedule.config.to_dict(),
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema": None if ema is None else {k: v.detach().cpu() for k, v in ema.items()},
        "meta": dict(meta or {}),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(blob, fh)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the rename makes it current
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written temp file
        raise


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only (< 1.13)
        return torch.load(path, map_location="cpu")


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Rebuild the model and schedule from the configs inside the file."""
    path = Path(path)
    try:
        blob = _torch_load(path)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint: {e}") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    model = build_model(UNetConfig.from_dict(blob["unet"]))
    try:
        model.load_state_dict(blob["state"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: state does not fit its config: {e}") from e
    model.eval()
    schedule = NoiseSchedule.from_config(ScheduleConfig.from_dict(blob["schedule"]))
    return Checkpoint(model, schedule, blob.get("ema"), dict(blob.get("meta") or {}))
