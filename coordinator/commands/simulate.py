"""``greenfed-coordinator simulate``: energy of the three schemes on simulated wireless fleets.

The work is :mod:`coordinator.simulation`; this module parses the command line and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

from coordinator.simulation import format_rows, parse_sizes, write_study

HELP = "compare the schemes' energy on simulated wireless fleets; writes a CSV and a plot"


def _sizes(text: str) -> List[int]:
    try:
        return parse_sizes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices",
        type=_sizes,
        default=[10, 100, 1000, 10000],
        help="comma-separated fleet sizes (default 10,100,1000,10000)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fleets")
    parser.add_argument(
        "--fixed-bits",
        type=int,
        default=8,
        choices=range(1, 17),
        metavar="B",
        help="bits of the fixed-B baseline (default 8)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        rows, csv_path, png_path = write_study(args.devices, args.seed, args.fixed_bits, args.out)
    except OSError as e:
        print(f"greenfed-coordinator simulate: error: {e}", file=sys.stderr)
        return 2
    print(format_rows(rows))
    print(f"wrote {csv_path} and {png_path}")
    return 0
