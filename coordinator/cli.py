"""``greenfed-coordinator``: the command line of the coordinator.

Each subcommand lives in ``coordinator.commands.<name>`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports (torch) happen inside
``run`` so that ``--help`` stays fast on a laptop too.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

# Order shown in --help.
SUBCOMMANDS: List[str] = [
    "serve", "demo", "plan", "simulate", "experiment", "report", "revoke", "links",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenfed-coordinator",
        description=(
            "greenfed coordinator: allocates bits and frequencies, aggregates updates, "
            "records energy."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"coordinator.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
