"""``greenfed-coordinator boards``: board profiles, whether emulated boards work here, cleanup."""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional, Tuple

HELP = (
    "emulated boards: 'list' shows the board profiles and their sources, 'probe' says whether "
    "this machine can run them (root, the CPU controller), 'cleanup' removes the cgroups a "
    "killed run left behind"
)


def add_board_arguments(parser: argparse.ArgumentParser) -> None:
    """``--boards``, ``--board`` and ``--board-cpus`` of the commands that start local agents."""
    parser.add_argument(
        "--boards",
        choices=["auto", "emulated", "none"],
        default="auto",
        help="emulated: each agent an emulated board (its own cgroup, its clock the CPU quota; "
        "root and a CPU controller); none: plain agents; auto: emulated where possible, "
        "else plain agents, saying why (default)",
    )
    parser.add_argument(
        "--board",
        action="append",
        default=[],
        metavar="PROFILE",
        help="a device's board profile (repeat; cycled over the devices; default the mixed "
        "fleet rpi4, orin-nano-cpu, rpi5, rpi4; see `greenfed-coordinator boards list`)",
    )
    parser.add_argument(
        "--board-cpus",
        type=float,
        default=None,
        metavar="CPUS",
        help="host CPUs the whole fleet may use at its top clocks (default 60%% of this "
        "machine's); a Pi 4 gets 0.2 CPU unless the fleet would exceed it",
    )


def fleet_for(args: argparse.Namespace, n: int, run_dir: Any, threads: int = 1) -> Tuple[Any, str]:
    """(the run's BoardSet or None, the line to print): boards for ``n`` devices as asked."""
    from coordinator.boards import boards_for_run, fleet_boards, fleet_scale

    boards = fleet_boards(n, args.board)
    scale = fleet_scale(boards, budget_cpus=args.board_cpus)
    board_set, why = boards_for_run(run_dir, args.boards, scale)
    if board_set is None:
        return None, why
    names = ", ".join(f"{b.name} {scale.cpus(b):.2f} CPU" for b in boards)
    note = f"; {scale.note}" if scale.note else ""
    return board_set, f"{board_set.label}: {names}{note}"


def board_names(args: argparse.Namespace, n: int) -> List[str]:
    from coordinator.boards import fleet_boards

    return [b.name for b in fleet_boards(n, args.board)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="the board profiles: steps, power, speed, and where they come from")
    sub.add_parser("probe", help="can emulated boards run here (root, cgroup v1/v2 cpu controller)")
    clean = sub.add_parser(
        "cleanup",
        help="remove the cgroups of runs whose process is gone (stops the agents left inside)",
    )
    clean.add_argument("--all", action="store_true", help="also runs whose process still lives")
    clean.add_argument("--dry-run", action="store_true", help="list, remove nothing")


def _list() -> int:
    from greenfed.boards import PROFILES

    for p in PROFILES.values():
        steps = p.steps_hz
        print(f"{p.name}: {p.title}")
        print(f"  clock      {steps[0] / 1e6:.0f}-{steps[-1] / 1e6:.0f} MHz, {len(steps)} steps")
        print(f"  power      {p.idle_w:g} W idle, {p.peak_w:g} W at full load on the top step "
              f"(kappa {p.kappa:.3e} W/Hz^3), +{p.radio_w:g} W radio")  # fmt: skip
        print(f"  speed      {p.relative_speed:g} x a Raspberry Pi 4; {p.cores} cores, "
              f"{p.memory_bytes >> 30} GB (not enforced)")  # fmt: skip
        for what, basis in p.basis.items():
            print(f"  {what + ':':<10} {basis}")
    print("sources: docs/emulated.md")
    return 0


def cleanup(everything: bool, dry_run: bool, out: Optional[Any] = None) -> int:
    """Remove dead runs' cgroups; prints what it did; 1 when something could not be removed."""
    from coordinator.boards import registry

    out = out or sys.stdout
    result = registry.cleanup(everything=everything, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    if result.runs:
        print(f"boards: {verb} {len(result.runs)} run(s): {', '.join(result.runs)}; cgroups: "
              f"{', '.join(result.groups) or 'none'}", file=out)  # fmt: skip
    else:
        print("boards: nothing to remove", file=out)
    if result.kept:
        print(f"boards: left alone (their process still runs; --all stops them): "
              f"{', '.join(result.kept)}", file=out)  # fmt: skip
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors else 0


def run(args: argparse.Namespace) -> int:
    from coordinator.boards import groups

    if args.action == "list":
        return _list()
    hierarchy, why = groups.probe()
    if args.action == "probe":
        if hierarchy is None:
            print(f"emulated boards unavailable: {why}")
            print("demo and experiment fall back to plain agents (--boards auto)")
        else:
            print(f"emulated boards available: {why}")
        return 0
    if hierarchy is None:
        print(f"greenfed-coordinator boards cleanup: {why}", file=sys.stderr)
        return 2
    return cleanup(args.all, args.dry_run)
