"""Command-line options shared by ``probe`` and ``calibrate``, turned into a SensingConfig here."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_agent.sensing.config import SensingConfig, load_sensing_config


def add_sensing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sysfs-root",
        type=Path,
        default=Path("/"),
        help="read /sys and /proc under this directory (a copied tree, a host mount)",
    )
    parser.add_argument("--config", type=Path, help="TOML file; its [sensing] table is used")
    parser.add_argument("--source", help="force one power source (default: auto)")
    parser.add_argument("--board-class", help="estimated model's board class (default: auto)")
    parser.add_argument("--rate-hz", type=float, help="sampler rate (default 10)")


def sensing_config(args: argparse.Namespace) -> SensingConfig:
    return load_sensing_config(
        args.config,
        {"source": args.source, "board_class": args.board_class, "rate_hz": args.rate_hz},
    )
