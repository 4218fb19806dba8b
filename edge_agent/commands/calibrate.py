"""``greenfed-agent calibrate``: measure idle power, κ, cycles per sample and uplink cost."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from edge_agent.commands.sensing_args import add_sensing_arguments, sensing_config
from edge_agent.config import ProfileKeys
from edge_agent.sensing.config import SensingConfig

HELP = "measure this board's energy coefficients and save a calibration profile (JSON)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sensing_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="profile path (default: where `run` reads it: --config's `profile`, else its "
        "state_dir/calibration.json; ~/.local/state/greenfed-agent/calibration.json without "
        "--config)",
    )
    parser.add_argument("--rest-s", type=float, default=10.0, help="idle measurement (s)")
    parser.add_argument("--step-s", type=float, default=5.0, help="workload time per step (s)")
    parser.add_argument("--max-steps", type=int, default=4, help="frequency steps to measure")
    parser.add_argument("--upload-mib", type=float, default=8.0, help="bytes pushed uplink, MiB")
    parser.add_argument(
        "--workload",
        choices=["auto", "ddpm", "torch-conv"],
        default="auto",
        help="training workload (auto: the DDPM if greenfed.ddpm is available)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where the workload runs, as `run --device` (auto: CUDA when torch has a GPU); "
        "on CUDA the steps walked and the frequencies fitted are the Jetson GPU's",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")


def profile_keys(config: Optional[Path]) -> ProfileKeys:
    """Where ``run`` with this agent TOML reads its profile (a sensing-only file: the default)."""
    from greenfed.config import from_mapping, read_toml

    raw = read_toml(config) if config is not None else {}
    if set(raw) & {f.name for f in dataclasses.fields(SensingConfig)}:
        raw = {}  # a sensing-only file (sensing.config.sensing_table): no agent keys
    keys: Dict[str, Any] = {k: raw[k] for k in ("profile", "state_dir") if k in raw}
    return from_mapping(ProfileKeys, keys)


def run(args: argparse.Namespace) -> int:
    import torch

    from edge_agent.sensing import (
        CalibrationError,
        SensingError,
        calibrate_on_loopback,
        detect_power_source,
    )
    from edge_agent.training.device import compute_clock, resolve_device
    from edge_agent.training.workloads import default_workload
    from greenfed.config import ConfigError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        out = args.out if args.out is not None else profile_keys(args.config).path
        cfg = sensing_config(args)
        device = resolve_device(args.device)
        source = detect_power_source(cfg, args.sysfs_root)
        clock = compute_clock(device, args.sysfs_root, emulated=cfg.emulated)
        workload, name = default_workload(args.workload, args.batch_size, device=device)
        profile = calibrate_on_loopback(
            source,
            clock,
            cfg,
            workload,
            workload_name=name,
            device=device,
            rest_s=args.rest_s,
            step_s=args.step_s,
            max_steps=args.max_steps,
            upload_bytes=int(args.upload_mib * (1 << 20)),
        )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CalibrationError(f"cannot create {out.parent} for the profile: {e}") from e
        profile.save(out)
    except (ConfigError, SensingError) as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(profile.to_dict(), indent=2))
    else:
        tag = "ESTIMATED " if profile.estimated else ""
        kappa = "n/a" if profile.kappa is None else f"{profile.kappa:.3e} W/Hz^3"
        cps = "n/a" if profile.cycles_per_sample is None else f"{profile.cycles_per_sample:.3e}"
        rate = profile.uplink_bytes_per_s or 0.0
        epb = profile.energy_per_byte_j
        print(f"{tag}profile written to {out}")
        print(f"  source       {profile.source}: {profile.scope}")
        print(f"  device       {profile.train_device}, clock {profile.clock}")
        print(f"  idle power   {profile.idle_power_w:.3f} W")
        single = " (single point)" if profile.kappa_single_point else ""
        print(f"  kappa        {kappa}{single}; {profile.dvfs}")
        print(f"  cycles/sample {cps}")
        print(f"  uplink       {rate / 1e6:.1f} MB/s, {epb if epb is not None else 'n/a'} J/B")
        print(f"  workload     {profile.workload}")
        for n in profile.notes:
            print(f"  note: {n}")
    return 0
