"""``greenfed-coordinator experiment``: the schemes one after another on the same local agents.

Runs each scheme as its own coordinator run (``<out>/<scheme>/``) with the same devices, data
shards, links, seed, fixed deadline and absolute error budget; then the large-fleet study
(``simulate``, into ``<out>/fleet-study/``) and the report (``<out>/report/``). With
``--links both`` it runs that twice, over steady links and over bandwidth traces
(``<out>/steady/``, ``<out>/traces/``, coordinator/link_study.py), and compares them in
``<out>/report/``. With ``--aggregations fedavg,ffa`` every rule runs every scheme
(``<out>/ffa-on-demand/`` ...): full-model against LoRA adapter federation (docs/lora.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

from coordinator.commands.boards import add_board_arguments
from coordinator.commands.links import add_backend_argument

HELP = (
    "compare schemes (e.g. fp32,fixed-8,on-demand) on the same local agents, devices, data, "
    "deadline and error budget, then write the report"
)


def _schemes(text: str) -> List[str]:
    out = [s.strip() for s in text.split(",") if s.strip()]
    if not out:
        raise argparse.ArgumentTypeError("give at least one scheme")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="experiment folder (an earlier experiment there is replaced)",
    )
    parser.add_argument(
        "--schemes",
        type=_schemes,
        default=["fp32", "fixed-8", "on-demand"],
        help="comma-separated schemes in run order (default fp32,fixed-8,on-demand)",
    )
    parser.add_argument(
        "--aggregations",
        type=_schemes,
        default=["fedavg"],
        help="comma-separated aggregation rules, each run with every scheme: fedavg (full "
        "model), fedit, ffa (LoRA adapters; need --task mnist8). Default fedavg",
    )
    parser.add_argument("--task", choices=["digits", "mnist8"], default="digits",
                        help="digits: train from scratch on IID digits shards (default); "
                        "mnist8: fine-tune the shipped digits backbone on Dirichlet(0.5) "
                        "MNIST shards, evaluated on mnist8's held-out split")  # fmt: skip
    parser.add_argument(
        "--personal",
        action="store_true",
        help="adapter runs: each device keeps a personal adapter and scores it against the "
        "global one on images it held out",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scheme (default 5)")
    parser.add_argument("--devices", type=int, default=4, help="local agents (default 4)")
    parser.add_argument("--preset", choices=["local"], default="local",
                        help="local: agents on this machine with 2/5/10/20 Mbit/s uplinks "
                        "(see --links) and shard sizes growing with the device number")  # fmt: skip
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=None,
        help="fixed round deadline for every scheme (default: the preset's, 120; over "
        "emulated boards 1.3 x the slowest board's fastest fp32 round, measured here)",
    )
    parser.add_argument(
        "--error-budget",
        type=float,
        default=None,
        help="absolute quantization-error budget for every round and scheme "
        "(default: 0.01 x d x (0.05/4)^2, the coordinator's first-round rule, with d the "
        "values each aggregation rule uploads)",
    )
    parser.add_argument(
        "--local-steps",
        type=int,
        default=None,
        help="local training steps per round (default: the preset's, 60)",
    )
    parser.add_argument(
        "--eval-samples",
        type=int,
        default=None,
        help="images sampled to score each round (default: the preset's, 256)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per agent")
    parser.add_argument(
        "--quality-margin",
        type=float,
        default=0.20,
        metavar="REL",
        help="on-demand's final FD may exceed fp32's by this share (default 0.20)",
    )
    parser.add_argument(
        "--links",
        choices=["steady", "traces", "both"],
        default="steady",
        help="steady: fixed links (2/5/10/20 Mbit/s, or the --link profiles at "
        "their mean rate); traces: every device replays a bandwidth trace; "
        "both: the two as one study with a comparison report (default steady)",
    )
    parser.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="SPEC",
        help="a device's link, e.g. rate=5,rtt=40,loss=1 or trace=lte-walk@60,"
        "rtt=50 (repeat; cycled over the devices; default for traces: "
        "congested, lte-walk, wifi-steady, lte-walk@300 with RTTs 60/50/10/50 ms)",
    )
    add_backend_argument(parser)
    add_board_arguments(parser)
    parser.add_argument("--fleet-sizes", default="10,100,1000,10000",
                        help="fleet sizes of the simulated study ('' to skip; default "
                        "10,100,1000,10000)")  # fmt: skip


def emulated_fleet(args: argparse.Namespace, agents: List[Any]) -> List[Any]:
    """``agents`` as the emulated boards asked for (``--boards``), or [] for plain agents:
    ``auto`` says why it falls back, ``emulated`` raises BoardsUnavailable."""
    from dataclasses import replace

    from coordinator.boards import BoardsUnavailable, fleet_boards, groups

    if args.boards == "none":
        return []
    hierarchy, why = groups.probe()
    if hierarchy is None:
        if args.boards == "emulated":
            raise BoardsUnavailable(why)
        print(f"boards: plain agents: emulated boards unavailable ({why})", flush=True)
        return []
    boards = fleet_boards(len(agents), args.board)
    return [replace(a, board=b.name) for a, b in zip(agents, boards)]


def boards_deadline(
    args: argparse.Namespace, agents: List[Any], local_steps: int, params: int
) -> Tuple[float, str]:
    """The fixed deadline over emulated boards and where it came from (boards/sizing.py)."""
    from coordinator.boards import fleet_scale
    from coordinator.boards.sizing import (
        DEADLINE_FACTOR,
        describe,
        fastest_rounds,
        fleet_deadline,
        host_steps_per_cpu_s,
    )
    from coordinator.config import CoordinatorConfig
    from greenfed.boards import get_profile

    profiles = [get_profile(a.board) for a in agents]
    scale = fleet_scale(profiles, budget_cpus=args.board_cpus)
    speed = host_steps_per_cpu_s(CoordinatorConfig().batch_size)
    devices = []
    for a, p in zip(agents, profiles):
        link = a.link_profile()
        if link is None:
            raise ValueError(f"{a.device_id} has no link: the deadline needs its rate")
        devices.append((a.device_id, p, link.initial_mbps()))
    rounds = fastest_rounds(devices, scale, local_steps, speed, 4.0 * params)
    return fleet_deadline(rounds), describe(rounds, speed, DEADLINE_FACTOR)


def run(args: argparse.Namespace) -> int:
    from coordinator import simulation
    from coordinator.allocator.schemes import Scheme
    from coordinator.boards import BoardsUnavailable
    from coordinator.errors import ReportError
    from coordinator.experiment import (
        TASKS,
        ExperimentError,
        ExperimentSetup,
        LocalPreset,
        default_error_budget,
        local_agents,
        model_params,
        run_experiment,
    )
    from coordinator.link_study import condition_links, preset_links, run_link_study
    from coordinator.links import parse_link_spec
    from coordinator.report import build_report
    from coordinator.report.links import build_link_report

    def fail(msg: str) -> int:
        print(f"greenfed-coordinator experiment: error: {msg}", file=sys.stderr)
        return 2

    # SIGTERM (kill, nohup'd runs) ends the run like Ctrl-C: the agents and coordinator of the
    # scheme in progress are stopped by the launcher's close() instead of being orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    preset = LocalPreset()
    t0 = time.monotonic()
    try:
        for scheme in args.schemes:  # cheap checks first, before torch is imported
            Scheme.parse(scheme)
        if args.devices < 1 or args.rounds < 1:
            raise ExperimentError("--devices and --rounds must be >= 1")
        given = [parse_link_spec(spec) for spec in args.link]
        traced = given or preset_links()
        if args.links == "steady":
            profiles = condition_links("steady", given) if given else None
        else:
            profiles = traced
        eval_data = TASKS[args.task].eval_data
        values = {rule: model_params("pi-small", eval_data, rule) for rule in args.aggregations}
        params = values.get("fedavg", model_params("pi-small", eval_data))
        agents = local_agents(args.devices, args.threads, profiles, args.task, args.seed)
        boards = emulated_fleet(args, agents)
        local_steps = args.local_steps or preset.local_steps
        deadline, deadline_note = args.deadline_s, "--deadline-s"
        if deadline is None and boards:
            deadline, deadline_note = boards_deadline(args, boards, local_steps, params)
        notes = {
            "deadline": deadline_note if deadline else "the local preset's fixed value",
            "error_budget": "--error-budget" if args.error_budget else (
                "0.01 x d x (0.05/4)^2 with d the values a device uploads ("
                + ", ".join(f"{rule} {d}" for rule, d in values.items())
                + "; the coordinator's first-round rule, held fixed)"),
        }  # fmt: skip
        setup = ExperimentSetup(
            schemes=args.schemes,
            rounds=args.rounds,
            agents=boards or agents,
            deadline_s=deadline or preset.deadline_s,
            error_budget=args.error_budget or default_error_budget(params),
            local_steps=local_steps,
            eval_samples=args.eval_samples if args.eval_samples is not None
            else preset.eval_samples,
            seed=args.seed,
            preset=preset.name,
            quality_margin_rel=args.quality_margin,
            poll_interval_s=preset.poll_interval_s,
            notes=notes,
            link_backend=args.link_backend,
            condition="" if args.links == "both" else args.links,
            boards="emulated" if boards else "none",
            board_cpus=args.board_cpus,
            aggregations=args.aggregations,
            task=args.task,
            personal=args.personal,
            error_budgets={} if args.error_budget else {
                rule: default_error_budget(d) for rule, d in values.items()},
        )  # fmt: skip
        sizes = simulation.parse_sizes(args.fleet_sizes) if args.fleet_sizes.strip() else []
    except (ValueError, BoardsUnavailable) as e:
        return fail(str(e))
    out = args.out.resolve()
    print(
        f"experiment: {', '.join(r['label'] for r in setup.runs())} x {setup.rounds} rounds on "
        f"{len(setup.agents)} local agents; deadline {setup.deadline_s:g} s, error budget "
        f"{setup.error_budget:.4g}, {setup.local_steps} local steps; out {out}",
        flush=True,
    )
    if setup.boards == "emulated":
        print(f"boards: {', '.join(f'{a.device_id} {a.board}' for a in setup.agents)} "
              f"(emulated); deadline: {setup.notes['deadline']}", flush=True)  # fmt: skip

    def say(message: str) -> None:
        print(message, flush=True)

    by_condition: Dict[str, List[Dict[str, Any]]] = {}
    try:
        if args.links == "both":
            by_condition = run_link_study(setup, traced, out, say=say)
            results = [r for rs in by_condition.values() for r in rs]
        else:
            results = run_experiment(setup, out, say=say)
    except (ExperimentError, OSError) as e:
        return fail(str(e))
    if sizes:
        fixed = [b for b in (Scheme.parse(s).fixed_bits for s in setup.schemes) if b]
        print("\nlarge-fleet study (allocator's simulation model, not measured):", flush=True)
        try:
            rows, csv_path, png_path = simulation.write_study(
                sizes, args.seed, fixed[0] if fixed else 8, out / "fleet-study"
            )
        except OSError as e:
            return fail(str(e))
        print(simulation.format_rows(rows), flush=True)
        print(f"wrote {csv_path} and {png_path}", flush=True)
    try:
        for condition in by_condition:
            build_report(out / condition, out / condition / "report", setup.quality_margin_rel)
        if by_condition:
            report: Any = build_link_report(out, out / "report")
        else:
            report = build_report(out, out / "report", setup.quality_margin_rel)
    except ReportError as e:
        return fail(str(e))
    print("\n" + report.text)
    print(f"\nreport: {report.html_path}\nexperiment finished in "
          f"{time.monotonic() - t0:.0f} s")  # fmt: skip
    failed = [r["scheme"] for r in results if r["rounds_completed"] < setup.rounds]
    if failed:
        print(f"incomplete schemes: {', '.join(failed)} (see their coordinator.log)")
        return 1
    return 0
