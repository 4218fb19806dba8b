#!/usr/bin/env python3
"""Train the default preset centrally on the digits train split and score it honestly.

The reference point for federated runs: one process, all 1347 training images, a wall-clock
budget (default 5 minutes), EMA weights for sampling. Prints the Fréchet distance of generated
samples against the held-out split beside the real-vs-real floor and the noise ceiling, and
whether FD <= 3× floor (the acceptance bar).

    .venv/bin/python scripts/train_central.py [--minutes 5] [--threads 2] [--out central.pt]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenfed.ddpm import (  # noqa: E402
    DEFAULT_PRESET,
    NoiseSchedule,
    QualityMetric,
    TrainConfig,
    build_model,
    load_data,
    num_parameters,
    preset,
    sample,
    save_checkpoint,
    train_local,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--data", default="digits", help="training data spec (digits train split)")
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall-clock budget")
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "linear"])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--n", type=int, default=450, help="samples to score (held-out size)")
    ap.add_argument("--ddim-steps", type=int, default=50, help="0: full DDPM sampling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the checkpoint here")
    args = ap.parse_args()

    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data = load_data(args.data)
    c, h, _ = data.shape
    model = build_model(preset(args.preset, in_channels=c, image_size=h), seed=args.seed)
    sched = NoiseSchedule(args.T, args.schedule)
    print(
        f"{args.preset}: {num_parameters(model):,} parameters; {len(data)} images {data.shape}; "
        f"{sched}; threads {args.threads}; budget {args.minutes:g} min"
    )
    cfg = TrainConfig(
        steps=args.max_steps,
        batch_size=64,
        lr=args.lr,
        warmup_steps=200,
        grad_clip=1.0,
        ema_decay=args.ema,
        seed=args.seed,
        num_threads=args.threads,
        max_seconds=args.minutes * 60,
        log_every=500,
    )
    res = train_local(model, sched, data.images, cfg)
    print(
        f"trained {res.steps} steps in {res.wall_s:.0f} s ({res.steps_per_s:.1f} steps/s); "
        f"loss per 500 steps: {' '.join(f'{x:.4f}' for x in res.losses[:3])} ... "
        f"{' '.join(f'{x:.4f}' for x in res.losses[-3:])}"
    )
    if res.ema_state is not None:
        model.load_state_dict(res.ema_state)
    if args.out:
        save_checkpoint(args.out, model, sched, meta={"steps": res.steps, "data": args.data})
        print(f"wrote {args.out}")

    metric = QualityMetric()
    steps = args.ddim_steps or None
    t0 = time.monotonic()
    samples = sample(model, sched, args.n, steps=steps, seed=args.seed, num_threads=args.threads)
    took = time.monotonic() - t0
    score = metric.score(samples)
    how = f"DDIM {steps} steps" if steps else f"DDPM {args.T} steps"
    print(f"sampled {args.n} images ({how}) in {took:.1f} s")
    print(score)
    ok = score.fd <= 3 * score.floor
    print(f"acceptance FD <= 3x floor: {'PASS' if ok else 'FAIL'} ({score.fd_over_floor:.2f}x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
