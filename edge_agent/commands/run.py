"""``greenfed-agent run``: the daemon that takes part in federated rounds."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

HELP = "join a coordinator and train in its rounds until the run is finished"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="agent TOML file (flags override it)")
    parser.add_argument("--coordinator", help="HOST:PORT of the coordinator")
    parser.add_argument("--device-id", help="this device's id")
    parser.add_argument("--data", help="data spec: digits:shard=1/4, a folder, or a .npz file")
    parser.add_argument("--state-dir", type=Path, help="profile and pending uploads")
    parser.add_argument("--profile", type=Path, help="calibration profile JSON")
    parser.add_argument("--uplink-mbps", type=float, help="emulate an uplink of this rate (Mbit/s)")
    parser.add_argument("--threads", type=int, help="torch threads for training")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="where rounds train (default auto: CUDA when torch has a GPU, else the CPU); "
        "on CUDA the Jetson GPU's clock is the frequency registered and assigned",
    )
    parser.add_argument("--sysfs-root", type=Path, help="read sensors under this root")


def run(args: argparse.Namespace) -> int:
    from edge_agent.config import AgentConfig
    from edge_agent.daemon import Agent
    from edge_agent.errors import AgentError
    from edge_agent.sensing import SensingError
    from greenfed.config import ConfigError, load_dataclass

    try:
        cfg = load_dataclass(
            AgentConfig,
            args.config,
            {
                "coordinator": args.coordinator,
                "device_id": args.device_id,
                "data": args.data,
                "state_dir": str(args.state_dir) if args.state_dir else None,
                "profile": str(args.profile) if args.profile else None,
                "uplink_mbps": args.uplink_mbps,
                "num_threads": args.threads,
                "device": args.device,
                "sysfs_root": str(args.sysfs_root) if args.sysfs_root else None,
            },
        )
    except ConfigError as e:
        print(f"greenfed-agent run: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: finishing (DVFS limits are restored on the way out)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent = Agent(cfg, stop)
        return agent.run()
    except (AgentError, SensingError, FileNotFoundError, ValueError) as e:
        print(f"greenfed-agent run: {e}", file=sys.stderr)
        return 1
