"""ONNX: export, dynamic batch, same noise -> same images as torch; sampling without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenfed.ddpm import (
    NoiseSchedule,
    TrainConfig,
    build_model,
    export_onnx,
    load_data,
    preset,
    sample,
    train_local,
)
from greenfed.ddpm.onnx_sampling import OnnxSampler, OnnxSamplerError

pytest.importorskip("onnx")

# Stated tolerance: float32 network arithmetic differs between torch and onnxruntime by ~1e-6
# per call; over a full 200-step DDPM chain the images agree within this (on [-1, 1]):
ATOL = 1e-3


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model = build_model(preset("pi-small"), seed=0)
    sched = NoiseSchedule(200, "cosine")
    train_local(model, sched, load_data("digits").images, TrainConfig(steps=30, num_threads=1))
    path = export_onnx(model, sched, tmp_path_factory.mktemp("onnx") / "m.onnx")
    return model, sched, path


def test_same_noise_same_images(exported) -> None:  # type: ignore[no-untyped-def]
    model, sched, path = exported
    ort = OnnxSampler(path, num_threads=1)
    assert ort.shape == (1, 8, 8) and ort.schedule.config == sched.config
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8), dtype=np.float32)
    t = np.array([0, 3, 50, 150, 199], dtype=np.float32)
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(ort.eps(x, t), ref, atol=1e-5)
    for steps in (None, 20):  # DDPM (noise every step) and DDIM
        a = sample(model, sched, 7, steps=steps, seed=11, num_threads=1, as_uint8=False)
        b = ort.sample(7, steps=steps, seed=11, as_uint8=False)
        assert np.abs(a - b).max() < ATOL
        ua = sample(model, sched, 7, steps=steps, seed=11, num_threads=1)
        assert np.abs(ua.astype(int) - ort.sample(7, steps=steps, seed=11).astype(int)).max() <= 1


def test_sampling_without_torch(exported) -> None:  # type: ignore[no-untyped-def]
    _, _, path = exported
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from greenfed.ddpm.onnx_sampling import OnnxSampler\n"
        f"s = OnnxSampler({str(path)!r}, num_threads=1)\n"
        "x = s.sample(3, steps=10)\n"
        "print(x.shape, x.dtype)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(3, 1, 8, 8) uint8"


def test_not_a_greenfed_model(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"junk")
    with pytest.raises(OnnxSamplerError, match="cannot load"):
        OnnxSampler(tmp_path / "x.onnx")
