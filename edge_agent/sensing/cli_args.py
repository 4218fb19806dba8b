"""Shared CLI options of the sensing subcommands, turned into a SensingConfig here only."""

from __future__ import annotations

import argparse
import dataclasses
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


def sensing_table(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The sensing keys of a TOML file: a sensing-only file, or an agent config's [sensing].

    A file with sensing keys at its top level is a sensing-only file (unknown keys in it are
    then reported). Any other file is an agent config: its other keys are the agent's, not ours.
    """
    own = {f.name for f in dataclasses.fields(SensingConfig)}
    top = set(raw) & own
    if not top:
        table = raw.get("sensing", {})
        if not isinstance(table, dict):
            raise ConfigError(f"sensing: expected a table, got {type(table).__name__}")
        return dict(table)
    if "sensing" in raw:
        raise ConfigError(
            f"sensing keys both at the top level ({', '.join(sorted(top))}) and in [sensing]"
        )
    return dict(raw)


def sensing_config(args: argparse.Namespace) -> SensingConfig:
    data: Dict[str, Any] = {}
    if args.config is not None:
        data = sensing_table(read_toml(args.config))
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
