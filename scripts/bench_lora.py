#!/usr/bin/env python3
"""Benchmark LoRA adapters against the full model: uplink bytes per round and step time.

Uplink: for each preset, the values one device uploads per round (d) and the codec's frame
size S(q) = d·q/8 + h (``greenfed.codec.frame_size``, headers included) at fp32 and at 8 and
4 bits, for the full model (FedAvg), A+B (fedit) and B only (ffa), each beside the full
model's. The same ratios hold at any equal bit width up to the per-tensor headers, which the
adapters, with more and smaller tensors, pay relatively more of.

Compute: training steps of the full model and of the adapters (fedit: A and B train, ffa: B
only) on the shipped backbone at batch 64 with the same data and seed, timed in alternating
chunks after a warm-up (medians): the adapter step still runs the backward pass through the
frozen convolutions, so it is not cheaper; this prints the measured ratio and claims nothing.

    .venv/bin/python scripts/bench_lora.py [--rank 4] [--threads 1] [--chunks 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib import cpu_name  # noqa: E402

Shapes = Dict[str, Tuple[int, ...]]


def shapes_of(preset_name: str, rank: int, alpha: float) -> Dict[str, Shapes]:
    from greenfed.ddpm import build_model, lora, preset

    model = build_model(preset(preset_name))
    full = {k: tuple(v.shape) for k, v in model.state_dict().items() if v.is_floating_point()}
    lora.apply_lora(model, lora.LoraConfig(rank=rank, alpha=alpha))
    return {
        "full (fedavg)": full,
        "A+B (fedit)": lora.adapter_shapes(model, lora.GLOBAL, ("A", "B")),
        "B (ffa)": lora.adapter_shapes(model, lora.GLOBAL, ("B",)),
    }


def uplink_table(rank: int, alpha: float) -> List[str]:
    from greenfed import codec
    from greenfed.ddpm.lora import num_values

    lines = []
    head = f"{'preset':<9} {'what':<14} {'values d':>9} {'fp32 B':>9} {'8-bit B':>9} {'4-bit B':>9}"
    for preset_name in ("pi-small", "pi-base"):
        table = shapes_of(preset_name, rank, alpha)
        ref = {
            "d": num_values(table["full (fedavg)"]),
            **{
                str(b): codec.frame_size(table["full (fedavg)"], bits=b if b < 32 else 8,
                                         mode="fp32" if b == 32 else "stochastic")
                for b in (32, 8, 4)
            },
        }  # fmt: skip
        lines.append(head)
        for what, shapes in table.items():
            d = num_values(shapes)
            sizes = {
                b: codec.frame_size(shapes, bits=b if b < 32 else 8,
                                    mode="fp32" if b == 32 else "stochastic")
                for b in (32, 8, 4)
            }  # fmt: skip
            lines.append(
                f"{preset_name:<9} {what:<14} {d:>9,} {sizes[32]:>9,} {sizes[8]:>9,} {sizes[4]:>9,}"
            )
            if what != "full (fedavg)":
                lines.append(
                    f"{'':<9} {'  vs full':<14} {d / ref['d']:>9.2%} {sizes[32] / ref['32']:>9.2%} "
                    f"{sizes[8] / ref['8']:>9.2%} {sizes[4] / ref['4']:>9.2%}"
                )
        lines.append("")
    return lines


def step_times(rank: int, alpha: float, threads: int, chunks: int, steps: int) -> Dict[str, float]:
    """Median seconds per step of each mode, chunks alternating between the modes."""
    import torch

    from greenfed import ddpm
    from greenfed.ddpm import lora
    from greenfed.ddpm.backbone import DEFAULT_BACKBONE, load_backbone

    torch.set_num_threads(threads)
    bb = load_backbone(DEFAULT_BACKBONE)
    images = ddpm.load_data("mnist8:split=train").images
    schedule = ddpm.NoiseSchedule.from_config(bb.schedule)
    models = {}
    for name, parts in (("full", None), ("fedit A+B", ("A", "B")), ("ffa B", ("B",))):
        model = ddpm.build_model(bb.unet)
        ddpm.set_state_arrays(model, bb.arrays)
        if parts is not None:
            lora.apply_lora(model, lora.LoraConfig(rank=rank, alpha=alpha))
            lora.set_trainable(model, lora.GLOBAL, parts)
        models[name] = model
    times: Dict[str, List[float]] = {name: [] for name in models}
    for chunk in range(chunks + 1):
        for name, model in models.items():
            cfg = ddpm.TrainConfig(steps=steps, batch_size=64, seed=chunk, num_threads=threads)
            t0 = time.perf_counter()
            ddpm.train_local(model, schedule, images, cfg)
            if chunk:  # chunk 0 is the warm-up
                times[name].append((time.perf_counter() - t0) / steps)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunks", type=int, default=7, help="timed chunks per mode (median)")
    ap.add_argument("--steps", type=int, default=20, help="training steps per chunk")
    args = ap.parse_args()
    import torch

    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}, "
          f"torch {torch.__version__}, {args.threads} thread(s)")  # fmt: skip
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n== uplink per device and round, LoRA rank {args.rank} on the default targets ==")
    print("\n".join(uplink_table(args.rank, args.alpha)))
    print(f"== training step on the shipped backbone (batch 64, median of {args.chunks} "
          f"chunks of {args.steps} steps) ==")  # fmt: skip
    med = step_times(args.rank, args.alpha, args.threads, args.chunks, args.steps)
    for name, s in med.items():
        print(f"{name:<10} {s * 1e3:8.2f} ms/step   {s / med['full']:.2f}x the full step")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
