"""``greenfed-coordinator serve``: run federated rounds for agents that dial in."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional

HELP = "serve agents over gRPC and run federated rounds (resumes a previous run in --state-dir)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="coordinator TOML file (flags override it)")
    parser.add_argument("--listen", help="HOST:PORT to bind (default 127.0.0.1:50051)")
    parser.add_argument("--state-dir", type=Path, help="store, checkpoints (default runs/default)")
    parser.add_argument("--rounds", type=int, help="completed rounds to run (default 5)")
    parser.add_argument("--min-devices", type=int, help="devices needed to start a round")
    parser.add_argument("--scheme", help="on-demand (default), fp32 or fixed-B, e.g. fixed-8")
    parser.add_argument("--deadline-s", type=float, help="round deadline (default: derived)")
    parser.add_argument("--local-steps", type=int, help="local training steps per round")
    parser.add_argument("--seed", type=int, help="run seed (default 0)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback address without TLS",
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        help="write the bound port here once serving (for scripts and tests)",
    )


def overrides(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "listen": args.listen,
        "state_dir": str(args.state_dir) if args.state_dir else None,
        "rounds": args.rounds,
        "min_devices": args.min_devices,
        "scheme": args.scheme,
        "deadline_s": args.deadline_s,
        "local_steps": args.local_steps,
        "seed": args.seed,
        "tls.insecure": args.insecure,
    }


def run(args: argparse.Namespace) -> int:
    import signal

    from coordinator.config import CoordinatorConfig
    from coordinator.errors import CheckpointFailed, ServerConfigError
    from coordinator.runner import Coordinator, serve
    from coordinator.tables import round_table
    from greenfed.config import ConfigError, load_dataclass

    try:
        cfg = load_dataclass(CoordinatorConfig, args.config, overrides(args))
    except ConfigError as e:
        print(f"greenfed-coordinator serve: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    holder: Dict[str, Optional[Coordinator]] = {"c": None}

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping after the current step (completed rounds are kept)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_ready(c: Coordinator) -> None:
        holder["c"] = c
        if args.port_file is not None:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(str(c.port))
            tmp.replace(args.port_file)
        done = c.store.completed_rounds()
        print(
            f"serving on port {c.port}; state in {cfg.state_dir}; {done} of {cfg.rounds} "
            f"rounds already completed",
            flush=True,
        )

    def on_round(summary: Dict[str, Any]) -> None:
        c = holder["c"]
        if c is not None:
            print(round_table(c.store, int(summary["round"])), flush=True)

    try:
        done = serve(cfg, on_round=on_round, on_ready=on_ready, stop=stop)
    except (ServerConfigError, ConfigError) as e:
        print(f"greenfed-coordinator serve: {e}", file=sys.stderr)
        return 2
    except CheckpointFailed as e:
        print(f"greenfed-coordinator serve: stopped: {e}", file=sys.stderr)
        return 1
    if stop.is_set():
        print("stopped; run `serve` again with the same --state-dir to resume", flush=True)
        return 0
    print(f"finished: {done} rounds completed", flush=True)
    return 0
