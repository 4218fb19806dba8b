"""``greenfed-agent probe``: what this board can measure, and why not."""

from __future__ import annotations

import argparse
import json
import sys

from edge_agent.commands.sensing_args import add_sensing_arguments, sensing_config

HELP = (
    "show the power source, rails, CPU and GPU clocks, DVFS support, and what this torch "
    "can train on (CUDA; torch.distributed, which a pool of boards needs)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sensing_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from edge_agent.pool.capability import detect
    from edge_agent.sensing import SensingError, make_context
    from edge_agent.sensing.probe import build_report, format_report
    from edge_agent.training.device import format_torch_report, torch_report
    from greenfed.config import ConfigError

    try:
        cfg = sensing_config(args)
        report = build_report(make_context(cfg, args.sysfs_root))
    except (ConfigError, SensingError) as e:
        print(f"probe: {e}", file=sys.stderr)
        return 2
    report["torch"] = torch_report()
    pool = detect()
    report["pool"] = pool.to_dict()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_report(report, format_torch_report(report["torch"]).splitlines()))
        print(pool.summary())
    return 0
