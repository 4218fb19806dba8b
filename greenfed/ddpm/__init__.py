"""Local DDPM for boards: schedule, UNet, trainer, data shards, quality metric, ONNX.

Names are imported lazily (PEP 562), so that ``greenfed.ddpm.schedule``, ``.data`` and
``.onnx_sampling`` stay usable on a board without torch, and the metric's torchmetrics
(a coordinator extra) is imported only when the metric is used.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

_EXPORTS: Dict[str, str] = {
    # schedule (numpy only)
    "NoiseSchedule": "schedule",
    "ScheduleConfig": "schedule",
    "ScheduleError": "errors",
    "denoise": "schedule",
    # model
    "UNet": "unet",
    "UNetConfig": "unet",
    "PRESETS": "unet",
    "DEFAULT_PRESET": "unet",
    "ModelConfigError": "errors",
    "build_model": "unet",
    "preset": "unet",
    "num_parameters": "unet",
    # training and sampling
    "TrainConfig": "train",
    "TrainResult": "train",
    "TrainError": "errors",
    "train_local": "train",
    "sample": "sampling",
    # data (numpy only)
    "ImageData": "data",
    "DataSpecError": "errors",
    "load_data": "data",
    "shard_indices": "data",
    # checkpoints and the codec's numpy view
    "Checkpoint": "checkpoint",
    "CheckpointError": "errors",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "get_state_arrays": "checkpoint",
    "set_state_arrays": "checkpoint",
    "tensor_names": "checkpoint",
    "state_nbytes": "checkpoint",
    # metric (coordinator: torchmetrics)
    "QualityMetric": "quality",
    "QualityScore": "quality",
    "QualityError": "errors",
    # errors (one tree: greenfed/ddpm/errors.py)
    "DdpmError": "errors",
    "ExportError": "errors",
    "OnnxSamplerError": "errors",
    # ONNX
    "export_onnx": "onnx_export",
    "OnnxSampler": "onnx_sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
