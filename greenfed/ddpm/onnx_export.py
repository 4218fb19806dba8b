"""Export the denoiser to ONNX for onnxruntime sampling on a board (coordinator side).

Legacy TorchScript-based exporter (``dynamo=False``, opset 17): it exports in well under a second
and needs no onnxscript; the timestep is a float32 input of shape (batch,), the batch dimension
is dynamic. The UNet and schedule configs are written into the model's metadata
(``greenfed.unet``, ``greenfed.schedule``, JSON), so ``OnnxSampler`` needs nothing else.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Union

import torch
from torch import nn

from .errors import ExportError
from .schedule import NoiseSchedule
from .unet import UNet

OPSET = 17
META_UNET = "greenfed.unet"
META_SCHEDULE = "greenfed.schedule"


class _FloatTimestep(nn.Module):
    def __init__(self, model: UNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x, t)


def export_onnx(
    model: UNet, schedule: NoiseSchedule, path: Union[str, os.PathLike[str]], opset: int = OPSET
) -> Path:
    """Write ``path`` (inputs ``x`` N×C×H×W float32 in [-1, 1], ``t`` (N,) float32; output
    ``eps``). Needs the ``onnx`` package (coordinator extra) for the metadata."""
    try:
        import onnx
    except ImportError as e:
        raise ExportError(
            "ONNX export needs the onnx package: pip install 'greenfed[coordinator]'"
        ) from e
    cfg = model.config
    path = Path(path)
    x = torch.zeros(2, cfg.in_channels, cfg.image_size, cfg.image_size)
    t = torch.zeros(2, dtype=torch.float32)
    kwargs = dict(
        input_names=["x", "t"],
        output_names=["eps"],
        dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "eps": {0: "batch"}},
        opset_version=opset,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:  # torch >= 2.5
        kwargs["dynamo"] = False
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(_FloatTimestep(model), (x, t), str(path), **kwargs)  # type: ignore[arg-type]
    except Exception as e:
        raise ExportError(f"ONNX export failed: {e}") from e
    finally:
        model.train(was_training)
    proto = onnx.load(str(path))
    for key, value in (
        (META_UNET, json.dumps(cfg.to_dict(), sort_keys=True)),
        (META_SCHEDULE, json.dumps(schedule.config.to_dict(), sort_keys=True)),
    ):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path
