"""``greenfed-coordinator demo``: a coordinator and four agents on loopback, a few rounds."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from coordinator.commands.links import add_backend_argument

HELP = (
    "run a coordinator and 4 agent processes (digits shards, uplinks of 2/5/10/20 Mbit/s: "
    "kernel-shaped in network namespaces when run as root, else emulated in-process) for a few "
    "on-demand rounds and print the results"
)

UPLINKS_MBPS = (2.0, 5.0, 10.0, 20.0)
DEADLINE_MIN_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        help="run directory (default runs/demo; replaced if it exists)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--agents", type=int, default=4, help="agent processes (default 4)")
    parser.add_argument("--scheme", default="on-demand", help="on-demand, fp32 or fixed-B")
    parser.add_argument(
        "--local-steps", type=int, default=150, help="local training steps per round (default 150)"
    )
    add_backend_argument(parser)


def run(args: argparse.Namespace) -> int:
    import shutil

    from coordinator.allocator.errors import SchemeError
    from coordinator.allocator.schemes import Scheme
    from coordinator.errors import LaunchError
    from coordinator.launcher import AgentSpec, launch
    from coordinator.links import LinkError, shaped_or_emulated
    from coordinator.store import Store
    from coordinator.tables import summary_table

    try:
        Scheme.parse(args.scheme)
    except SchemeError as e:
        print(f"greenfed-coordinator demo: {e}", file=sys.stderr)
        return 2
    if args.agents < 1 or args.rounds < 1:
        print("greenfed-coordinator demo: --agents and --rounds must be >= 1", file=sys.stderr)
        return 2
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    n = args.agents
    agents = [
        AgentSpec(
            f"board-{i + 1}",
            f"digits:shard={i + 1}/{n},alpha=1.0",
            UPLINKS_MBPS[i % len(UPLINKS_MBPS)],
        )
        for i in range(n)
    ]
    try:
        links = shaped_or_emulated(out, args.link_backend)
    except LinkError as e:
        print(f"greenfed-coordinator demo: {e}", file=sys.stderr)
        return 1
    print(
        f"demo: coordinator + {n} agents, {links.label}"
        + (f" ({links.note})" if links.note else "")
        + f", {args.rounds} {args.scheme} rounds; logs in {out / 'logs'}",
        flush=True,
    )
    t0 = time.monotonic()
    try:
        run_ = launch(
            out,
            {
                "rounds": args.rounds,
                "min_devices": n,
                "scheme": args.scheme,
                "local_steps": args.local_steps,
                "poll_interval_s": 2.0,
                # The agents share this machine's cores, so each trains several times slower
                # than its calibration (run alone) predicts: keep the derived deadline from
                # cutting rounds short until the refit catches up.
                "deadline_min_s": DEADLINE_MIN_S,
            },
            agents,
            stdout=sys.stdout,
            links=links,
        )
    except LaunchError as e:
        print(f"greenfed-coordinator demo: {e}", file=sys.stderr)
        return 1
    try:
        code = run_.wait()
    except KeyboardInterrupt:
        code = 130
    finally:
        run_.close()
    store = Store(out / "state" / "greenfed.sqlite")
    try:
        print(f"\nsummary (energy is ESTIMATED where the table says so; {links.label}):")
        print(summary_table(store))
    finally:
        store.close()
    print(
        f"demo finished in {time.monotonic() - t0:.0f} s; store: "
        f"{out / 'state' / 'greenfed.sqlite'}"
    )
    return code
