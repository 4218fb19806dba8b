"""``greenfed-coordinator links``: what this machine can shape, and cleaning up after a kill."""

from __future__ import annotations

import argparse
import sys

HELP = (
    "the link testbed: 'probe' says whether shaped links (netns/tc) work here; 'cleanup' "
    "removes namespaces, veths, qdiscs and processes left by a killed run (and its emulated "
    "boards' cgroups)"
)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--link-backend`` of the commands that start local agents (demo, experiment)."""
    parser.add_argument(
        "--link-backend",
        choices=["auto", "shaped", "emulated"],
        default="auto",
        help="shaped: each agent in its own network namespace behind tc (root, iproute2); "
        "emulated: the agents' own token bucket on loopback; auto: shaped where possible "
        "(default)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("probe", help="root, iproute2, namespaces, TUN, netem: what works and why not")
    clean = sub.add_parser(
        "cleanup",
        help="remove what runs whose process is gone left behind (namespaces with their veths, "
        "TUN devices and qdiscs; the agents, coordinators and delay lines inside them; the "
        "cgroups of emulated boards)",
    )
    clean.add_argument(
        "--all",
        action="store_true",
        help="also tear down runs whose process still lives (stops them)",
    )
    clean.add_argument("--dry-run", action="store_true", help="list, remove nothing")


def run(args: argparse.Namespace) -> int:
    from coordinator.links import kernel, registry

    if args.action == "probe":
        caps = kernel.probe()
        print(caps.summary())
        for reason in caps.reasons:
            print(f"  - {reason}")
        return 0
    caps = kernel.probe()
    boards_code = _boards_cleanup(args) if caps.root else 0
    if not (caps.root and caps.iproute2):
        print(f"greenfed-coordinator links cleanup: {caps.summary()}", file=sys.stderr)
        return 2
    result = registry.cleanup(everything=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    if result.runs:
        print(f"{verb} {len(result.runs)} run(s): {', '.join(result.runs)}; namespaces: "
              f"{', '.join(result.namespaces) or 'none'}")  # fmt: skip
    else:
        print("nothing to remove")
    if result.kept:
        print(f"left alone (their process still runs; --all stops them): {', '.join(result.kept)}")
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors or boards_code else 0


def _boards_cleanup(args: argparse.Namespace) -> int:
    """A killed run's emulated boards (cgroups) go with its links (docs/emulated.md)."""
    from coordinator.boards import groups
    from coordinator.commands.boards import cleanup

    if groups.probe()[0] is None:
        return 0  # no CPU controller here: no run can have made cgroups
    return cleanup(args.all, args.dry_run)
