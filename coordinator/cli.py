"""``greenfed-coordinator``: the command line of the coordinator (subcommands in
coordinator/commands)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from greenfed import cli

# Order shown in --help.
SUBCOMMANDS: List[str] = [
    "serve",
    "demo",
    "plan",
    "simulate",
    "experiment",
    "report",
    "revoke",
    "links",
    "boards",
]
DESCRIPTION = (
    "greenfed coordinator: allocates bits and frequencies, aggregates updates, records energy."
)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser("greenfed-coordinator", DESCRIPTION, "coordinator", SUBCOMMANDS)


def main(argv: Optional[List[str]] = None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
