"""``greenfed-agent``: the command line of the edge agent (subcommands in edge_agent/commands)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from greenfed import cli

# Order shown in --help.
SUBCOMMANDS: List[str] = ["run", "probe", "calibrate", "pool-member", "pool-study"]
DESCRIPTION = "greenfed edge agent: measures energy, trains locally, uploads quantized updates."


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser("greenfed-agent", DESCRIPTION, "edge_agent", SUBCOMMANDS)


def main(argv: Optional[List[str]] = None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
