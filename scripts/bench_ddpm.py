#!/usr/bin/env python3
"""Benchmark the DDPM presets on this machine: the figures quoted in docs/ddpm.md.

Per preset, each in its own process (so peak RSS is that preset's): parameters, fp32 state-dict
bytes, training steps/s at batch 64 (median of timed chunks after a warm-up), seconds per local
epoch of a 450-image shard, peak RSS while training, and sampling time for n images with torch
and with onnxruntime (DDPM over all T steps and DDIM with fewer); the onnxruntime figures come
from a process that never imports torch, with its own peak RSS. Prints the command, the machine
and the load average before and after: on a shared machine, read the numbers with the load.

    .venv/bin/python scripts/bench_ddpm.py [--threads 2] [--presets pi-small,pi-base] [--n 397]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib import cpu_name  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM (Linux) restarts at exec; ru_maxrss would carry the
    parent's peak into a child, so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(xs: List[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def run_torch(args: argparse.Namespace) -> Dict[str, Any]:
    """Child: training and torch sampling for one preset; exports the ONNX file."""
    import torch

    from greenfed.ddpm import (
        NoiseSchedule,
        TrainConfig,
        build_model,
        export_onnx,
        load_data,
        num_parameters,
        preset,
        sample,
        state_nbytes,
        train_local,
    )

    rss_import = peak_rss_mb()
    data = load_data("digits")
    shard = load_data("digits:limit=450")
    c, h, _ = data.shape
    model = build_model(preset(args.preset, in_channels=c, image_size=h))
    sched = NoiseSchedule(args.T)
    th = args.threads
    train_local(model, sched, data.images, TrainConfig(steps=10, num_threads=th))  # warm-up
    rates = []
    for i in range(args.chunks):
        r = train_local(model, sched, data.images, TrainConfig(steps=20, seed=i, num_threads=th))
        rates.append(r.steps_per_s)
    epochs = []
    for i in range(3):
        r = train_local(model, sched, shard.images, TrainConfig(epochs=1.0, seed=i, num_threads=th))
        epochs.append(r.wall_s)
    out: Dict[str, Any] = {
        "preset": args.preset,
        "params": num_parameters(model),
        "state_bytes": state_nbytes(model),
        "train_steps_per_s": median(rates),
        "train_steps_per_s_all": [round(x, 1) for x in rates],
        "epoch_450_s": median(epochs),
        "epoch_steps": r.steps,
        "rss_import_mb": rss_import,
        "rss_train_peak_mb": peak_rss_mb(),
    }
    for name, steps in (("ddpm", None), ("ddim", args.ddim_steps)):
        t0 = time.perf_counter()
        sample(model, sched, args.n, steps=steps, seed=0, num_threads=th)
        out[f"torch_{name}_s"] = time.perf_counter() - t0
    export_onnx(model, sched, args.onnx)
    out["torch_threads"] = torch.get_num_threads()
    return out


def run_ort(args: argparse.Namespace) -> Dict[str, Any]:
    """Child: onnxruntime sampling, torch never imported."""
    sys.modules["torch"] = None  # type: ignore[assignment]  # prove it is not needed
    from greenfed.ddpm.onnx_sampling import OnnxSampler

    s = OnnxSampler(args.onnx, num_threads=args.threads)
    s.sample(8, steps=5)  # warm-up
    out: Dict[str, Any] = {}
    for name, steps in (("ddpm", None), ("ddim", args.ddim_steps)):
        t0 = time.perf_counter()
        s.sample(args.n, steps=steps, seed=0)
        out[f"ort_{name}_s"] = time.perf_counter() - t0
    out["rss_ort_peak_mb"] = peak_rss_mb()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="pi-small,pi-base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=397, help="images per sampling run")
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--chunks", type=int, default=7, help="timed 20-step chunks")
    ap.add_argument("--child", choices=["torch", "ort"], help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        res = run_torch(args) if args.child == "torch" else run_ort(args)
        print(json.dumps(res))
        return 0

    import numpy
    import onnxruntime
    import torch

    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"numpy {numpy.__version__}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"threads {args.threads}; batch 64; digits 8×8; T={args.T}; sampling n={args.n}, "
        f"DDIM {args.ddim_steps} steps"
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            onnx_path = str(Path(tmp) / f"{name}.onnx")
            common = [sys.executable, __file__, "--preset", name, "--onnx", onnx_path,
                      "--threads", str(args.threads), "--n", str(args.n), "--T", str(args.T),
                      "--ddim-steps", str(args.ddim_steps),
                      "--chunks", str(args.chunks)]  # fmt: skip
            row: Dict[str, Any] = {}
            for child in ("torch", "ort"):
                p = subprocess.run(
                    [*common, "--child", child], env=env, capture_output=True, text=True
                )
                if p.returncode:
                    print(p.stderr, file=sys.stderr)
                    return p.returncode
                row.update(json.loads(p.stdout.strip().splitlines()[-1]))
            rows.append(row)
            print(
                f"\n{name}: {row['params']:,} parameters, fp32 state {row['state_bytes']:,} B\n"
                f"  train: {row['train_steps_per_s']:.1f} steps/s at batch 64, median (best "
                f"{max(row['train_steps_per_s_all']):.1f}; chunks {row['train_steps_per_s_all']}); "
                f"local epoch of 450 images "
                f"({row['epoch_steps']} steps): {row['epoch_450_s']:.2f} s\n"
                f"  peak RSS: {row['rss_train_peak_mb']:.0f} MB training with torch "
                f"(after import {row['rss_import_mb']:.0f} MB); "
                f"{row['rss_ort_peak_mb']:.0f} MB sampling with onnxruntime only\n"
                f"  sample {args.n}: torch DDPM {row['torch_ddpm_s']:.2f} s, "
                f"DDIM {row['torch_ddim_s']:.2f} s; onnxruntime DDPM {row['ort_ddpm_s']:.2f} s, "
                f"DDIM {row['ort_ddim_s']:.2f} s",
                flush=True,
            )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("json: " + json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
