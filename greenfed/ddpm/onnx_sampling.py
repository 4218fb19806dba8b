"""Sampling through onnxruntime: numpy and onnxruntime only, never torch.

A board can generate images from an exported denoiser without torch installed (a process that
only runs onnxruntime peaks near 75 MB RSS, against ~220 MB for importing torch). The reverse
process is ``schedule.denoise``, the same numpy code the torch sampler runs, so for the same
seed the two differ only by the network's float arithmetic (measured: below 1e-4 on [-1, 1]).
"""

from __future__ import annotations

import json
import os
from typing import Optional, Tuple, Union

import numpy as np

try:
    import onnxruntime as ort
except ImportError as e:  # an extra since the agent never samples: say how to get it
    raise ImportError("OnnxSampler needs onnxruntime: pip install 'greenfed[onnx]'") from e

from .errors import OnnxSamplerError
from .schedule import NoiseSchedule, ScheduleConfig, denoise, to_uint8

META_UNET = "greenfed.unet"  # written by onnx_export (kept in sync; no torch import here)
META_SCHEDULE = "greenfed.schedule"


class OnnxSampler:
    """An onnxruntime session on an exported denoiser, with its schedule from the metadata."""

    def __init__(self, path: Union[str, os.PathLike[str]], num_threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads  # explicit: never "all cores" on a board
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise OnnxSamplerError(f"{path}: cannot load ONNX model: {e}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_UNET not in meta or META_SCHEDULE not in meta:
            raise OnnxSamplerError(f"{path}: no greenfed metadata (export with export_onnx)")
        unet = json.loads(meta[META_UNET])
        self.shape: Tuple[int, int, int] = (
            int(unet["in_channels"]),
            int(unet["image_size"]),
            int(unet["image_size"]),
        )
        self.schedule = NoiseSchedule.from_config(
            ScheduleConfig.from_dict(json.loads(meta[META_SCHEDULE]))
        )

    def eps(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The network: x (N, C, H, W) float32, t (N,) float32 -> predicted noise."""
        out = self.session.run(["eps"], {"x": x, "t": t.astype(np.float32, copy=False)})
        return np.asarray(out[0])

    def sample(
        self,
        n: int,
        *,
        steps: Optional[int] = None,
        eta: float = 0.0,
        seed: int = 0,
        x_T: Optional[np.ndarray] = None,
        as_uint8: bool = True,
    ) -> np.ndarray:
        """Like ``greenfed.ddpm.sample``: DDPM for steps None/T, DDIM for fewer."""
        x = denoise(
            self.eps, self.schedule, (n, *self.shape), seed=seed, steps=steps, eta=eta, x_T=x_T
        )
        return to_uint8(x) if as_uint8 else x
