"""The shape both command lines share: one module per subcommand, loaded when listed.

Each subcommand lives in ``<package>.commands.<name>`` (``-`` in a name is ``_`` in the
module's) and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports (torch) happen inside
``run`` so that ``--help`` stays fast on a Raspberry Pi. Entry points only: library code
never sees an argparse namespace.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import List, Optional, Sequence


def build_parser(
    prog: str, description: str, package: str, subcommands: Sequence[str]
) -> argparse.ArgumentParser:
    """A parser with ``-v`` and one subparser per module of ``<package>.commands``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in subcommands:
        mod = importlib.import_module(f"{package}.commands.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def run(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> int:
    """Parse ``argv``, set up logging, run the chosen subcommand; its exit status."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args._run(args) or 0)
