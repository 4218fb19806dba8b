"""``greenfed-agent``: the command line of the edge agent.

Each subcommand lives in ``edge_agent.commands.<name>`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports (torch) happen inside
``run`` so that ``--help`` stays fast on a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

# Order shown in --help.
SUBCOMMANDS: List[str] = ["run", "probe", "calibrate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenfed-agent",
        description=(
            "greenfed edge agent: measures energy, trains locally, uploads quantized updates."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"edge_agent.commands.{name}")
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
