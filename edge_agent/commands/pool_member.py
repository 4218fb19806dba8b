"""``greenfed-agent pool-member``: lend this board to a leader's pool (docs/pools.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

HELP = "join a pool leader's gate and train its rounds with it (torch.distributed)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="member TOML file (flags override it)")
    parser.add_argument("--leader", help="HOST:PORT of the leader's pool gate")
    parser.add_argument("--member-id", help="this member's id (under TLS: its certificate's CN)")
    parser.add_argument("--data", help="the pool's data set (the same images as the leader's)")
    parser.add_argument("--state-dir", type=Path, help="calibration profile")
    parser.add_argument("--profile", type=Path, help="calibration profile JSON")
    parser.add_argument("--threads", type=int, help="torch threads for training")
    parser.add_argument(
        "--shared-host",
        action="store_true",
        default=None,
        help="members share this machine: measure this process's CPU time (estimated)",
    )


def run(args: argparse.Namespace) -> int:
    from edge_agent.pool.config import MemberConfig
    from edge_agent.pool.errors import PoolError
    from edge_agent.sensing import SensingError
    from greenfed.config import ConfigError, load_dataclass

    try:
        cfg = load_dataclass(
            MemberConfig,
            args.config,
            {
                "leader": args.leader,
                "member_id": args.member_id,
                "data": args.data,
                "state_dir": str(args.state_dir) if args.state_dir else None,
                "profile": str(args.profile) if args.profile else None,
                "num_threads": args.threads,
                "shared_host": args.shared_host,
            },
        )
    except ConfigError as e:
        print(f"greenfed-agent pool-member: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: leaving the pool", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from edge_agent.pool.member import PoolMember

    try:
        return PoolMember(cfg, stop).run()
    except (PoolError, SensingError, FileNotFoundError, ValueError) as e:
        print(f"greenfed-agent pool-member: {e}", file=sys.stderr)
        return 1
