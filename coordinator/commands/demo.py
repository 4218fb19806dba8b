"""``greenfed-coordinator demo``: a coordinator and four agents on loopback, a few rounds."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from coordinator.commands.boards import add_board_arguments
from coordinator.commands.links import add_backend_argument

HELP = (
    "run a coordinator and 4 agent processes (digits shards, uplinks of 2/5/10/20 Mbit/s: "
    "kernel-shaped in network namespaces when run as root, else emulated in-process; as root "
    "each agent is also an emulated board of a mixed fleet, its clock the CPU quota) for a few "
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
    add_board_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import shutil
    import signal

    # SIGTERM ends the demo like Ctrl-C: the agents, their links and boards are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from coordinator.allocator.errors import SchemeError
    from coordinator.allocator.schemes import Scheme
    from coordinator.boards import BoardError
    from coordinator.commands.boards import board_names, fleet_for
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
    try:
        names = board_names(args, n)
        boards, board_line = fleet_for(args, n, out)
    except BoardError as e:
        print(f"greenfed-coordinator demo: {e}", file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    agents = [
        AgentSpec(
            f"board-{i + 1}",
            f"digits:shard={i + 1}/{n},alpha=1.0",
            UPLINKS_MBPS[i % len(UPLINKS_MBPS)],
            board=names[i] if boards is not None else "",
        )
        for i in range(n)
    ]
    try:
        links = shaped_or_emulated(out, args.link_backend)
    except LinkError as e:
        if boards is not None:
            boards.close()
        print(f"greenfed-coordinator demo: {e}", file=sys.stderr)
        return 1
    print(
        f"demo: coordinator + {n} agents, {links.label}"
        + (f" ({links.note})" if links.note else "")
        + f", {args.rounds} {args.scheme} rounds; logs in {out / 'logs'}\n"
        + f"boards: {board_line}",
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
            boards=boards,
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
