"""Shared CLI options of the sensing subcommands, turned into a SensingConfig here only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from greenfed.config import ConfigError, from_mapping, read_toml

from .config import SensingConfig


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
    data: Dict[str, Any] = {}
    if args.config is not None:
        raw = read_toml(args.config)
        data = dict(raw.get("sensing", raw))
    for key, value in (
        ("source", args.source),
        ("board_class", args.board_class),
        ("rate_hz", args.rate_hz),
    ):
        if value is not None:
            data[key] = value
    try:
        return from_mapping(SensingConfig, data, prefix="sensing.")
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"sensing: {e}") from e
