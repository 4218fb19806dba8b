#!/usr/bin/env python3
"""Pretrain the shipped LoRA backbone: pi-small on the digits train split, deterministically.

The frozen W₀ that federated adapters adapt (docs/lora.md). Trained from the digits data the
package ships (no download): a fixed number of steps, one thread, a fixed seed and
``torch.use_deterministic_algorithms``; the EMA weights are written with fixed zip timestamps,
so the same torch build on the same CPU writes the same bytes (``--check`` retrains and
compares; another torch version or CPU instruction set may legitimately change low bits).

It then shows the domain shift the federated task is built on: the backbone's Fréchet distance
on the held-out digits (its own domain) and on the held-out mnist8 images (the federated task,
scripts/make_mnist8.py), each beside that metric's real-vs-real floor and noise ceiling.

    .venv/bin/python scripts/pretrain_backbone.py           # write the shipped file
    .venv/bin/python scripts/pretrain_backbone.py --check   # retrain and compare bit for bit
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenfed.ddpm import (  # noqa: E402
    NoiseSchedule,
    QualityMetric,
    TrainConfig,
    build_model,
    get_state_arrays,
    load_data,
    num_parameters,
    preset,
    sample,
    train_local,
)
from greenfed.ddpm.backbone import BACKBONES, DEFAULT_BACKBONE, backbone_bytes  # noqa: E402
from scripts.benchlib import write_or_check  # noqa: E402

DATA = "digits:split=train"
PRESET = "pi-small"
STEPS = 8000
SEED = 0
EVAL_SAMPLES = 450  # the size of the digits held-out split
EVAL_DDIM_STEPS = 50


def pretrain(steps: int) -> tuple:
    """(model with EMA weights, schedule, TrainResult)."""
    torch.use_deterministic_algorithms(True)
    data = load_data(DATA)
    c, h, _ = data.shape
    model = build_model(preset(PRESET, in_channels=c, image_size=h), seed=SEED)
    schedule = NoiseSchedule(200, "cosine")
    cfg = TrainConfig(
        steps=steps,
        batch_size=64,
        lr=2e-3,
        warmup_steps=200,
        grad_clip=1.0,
        ema_decay=0.999,
        seed=SEED,
        num_threads=1,
        log_every=500,
    )
    result = train_local(model, schedule, data.images, cfg)
    assert result.ema_state is not None
    model.load_state_dict(result.ema_state)
    return model, schedule, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--out", type=Path, default=BACKBONES[DEFAULT_BACKBONE])
    ap.add_argument("--check", action="store_true", help="retrain and compare with --out")
    args = ap.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.monotonic()
    model, schedule, res = pretrain(args.steps)
    print(
        f"{PRESET}: {num_parameters(model):,} parameters on {DATA}; {res.steps} steps in "
        f"{res.wall_s:.0f} s; loss per 500 steps {' '.join(f'{x:.4f}' for x in res.losses)}"
    )
    samples = sample(model, schedule, EVAL_SAMPLES, steps=EVAL_DDIM_STEPS, seed=SEED)
    scores = {}
    for name in ("digits", "mnist8"):
        score = QualityMetric.for_shipped(f"{name}:split=test").score(samples)
        scores[name] = score
        print(f"backbone on {name} (held-out split): {score}")
    meta = {
        "data": DATA,
        "preset": PRESET,
        "steps": res.steps,
        "seed": SEED,
        "batch_size": 64,
        "lr": 2e-3,
        "ema_decay": 0.999,
        "torch": torch.__version__,
        "final_loss": res.losses[-1],
        "fd_digits_test": round(scores["digits"].fd, 4),
        "fd_mnist8_test": round(scores["mnist8"].fd, 4),
        "made_by": "scripts/pretrain_backbone.py",
    }
    blob = backbone_bytes(model.config, schedule.config, get_state_arrays(model), meta)
    print(f"{time.monotonic() - t0:.0f} s in all")
    return write_or_check(args.out, blob, args.check)


if __name__ == "__main__":
    sys.exit(main())
