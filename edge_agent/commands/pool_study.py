"""``greenfed-agent pool-study``: each parallelism on the same work, predicted vs measured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = (
    "run single-board, data-parallel and pipeline training on the same work with a local "
    "pool of processes; report time, bytes and energy per member, predicted vs measured"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("pool-study"), help="output folder")
    parser.add_argument("--members", type=int, default=2, help="processes, the leader included")
    parser.add_argument("--steps", type=int, default=30, help="measured steps per structure")
    parser.add_argument("--warmup-steps", type=int, default=3, help="unmeasured steps first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--micro-batches", type=int, default=4, help="pipeline micro-batches")
    parser.add_argument("--preset", default="pi-small", help="UNet preset (greenfed.ddpm)")
    parser.add_argument("--data", default="digits:split=train", help="the pool's data set")
    parser.add_argument(
        "--kinds", default="single,data,pipeline", help="structures to run, comma-separated"
    )
    parser.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "pipelining", "p2p"],
        help="pipeline engine (auto: torch.distributed.pipelining where present)",
    )


def run(args: argparse.Namespace) -> int:
    from edge_agent.pool.errors import PoolError
    from edge_agent.pool.study import StudyConfig, run_study
    from edge_agent.pool.study_report import (
        sharing_statement,
        summarize,
        text_table,
        verdict,
        write_outputs,
    )

    try:
        cfg = StudyConfig(
            out=args.out,
            members=args.members,
            steps=args.steps,
            warmup_steps=args.warmup_steps,
            batch_size=args.batch_size,
            preset=args.preset,
            data=args.data,
            kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
            micro_batches=args.micro_batches,
            engine=args.engine,
        )
        study = run_study(cfg)
    except (ValueError, PoolError, RuntimeError) as e:
        print(f"greenfed-agent pool-study: {e}", file=sys.stderr)
        return 2
    summary = summarize(study)
    paths = write_outputs(study, args.out)
    print(sharing_statement(study))
    print(text_table(summary))
    for line in verdict(summary):
        print(line)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
