"""Run several schemes one after another on the same local agents, for a fair comparison.

Each scheme is its own coordinator run with its own state under ``<out>/<scheme>/state``, and
every run gets the same agents (device ids, data shards, link profiles, threads), the same
seed, the same **fixed** deadline and the same **absolute** error budget. Links are
kernel-shaped where the machine allows it (root, iproute2) and emulated in-process otherwise
(``link_backend``, coordinator/links); each scheme's traces start when its coordinator does.
With ``boards = "emulated"`` every agent is the emulated board its spec names (its own
cgroup, fresh for each scheme; coordinator/boards), so the clocks the allocator assigns
change the agents' real timing.
The agents' quick calibration runs once, in the first scheme, and its profile
(``<out>/profiles/<id>.json``) is reused by the others, so the allocator starts every scheme
from the same coefficients.

With several aggregation rules (``fedavg`` and LoRA adapters ``fedit``/``ffa``, docs/lora.md)
every rule runs with every scheme; a run's folder is its scheme for fedavg and
``<rule>-<scheme>`` otherwise (``ffa-on-demand``). Adapters need a task with a pretrained
backbone: ``mnist8`` fine-tunes the shipped digits backbone on label-skewed MNIST shards.

Only local agents (processes on loopback, started by :mod:`coordinator.launcher`) are
supported; docs/experiments.md explains how to run the same comparison with agents on boards.

Errors: :class:`ExperimentError` for an unusable setup or output folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from coordinator.aggregation import adapter_parts, check_rule
from coordinator.allocator.errors import SchemeError
from coordinator.allocator.schemes import Scheme
from coordinator.boards import BoardError, BoardSet, boards_for_run, fleet_scale
from coordinator.config import CoordinatorConfig
from coordinator.errors import ExperimentError, LaunchError
from coordinator.launcher import AgentSpec, LocalRun, start_coordinator
from coordinator.links import LinkError, LinkProfile, shaped_or_emulated
from greenfed.boards import get_profile

DIGITS_TRAIN_IMAGES = 1347  # greenfed.ddpm.data: the digits train split
UPLINKS_MBPS = (2.0, 5.0, 10.0, 20.0)
POLL_S = 2.0  # how often progress is read from the store while a scheme runs


@dataclass(frozen=True)
class Task:
    """What the devices learn: their data, the held-out data, and where the model starts."""

    name: str
    eval_data: str
    backbone: Optional[str] = None  # a shipped pretrained model to start from
    dirichlet_alpha: Optional[float] = None  # label-skewed shards (None: IID, growing sizes)
    adapter_learning_rate: float = 1e-2  # LoRA factors train at a higher rate (docs/lora.md)
    learning_rate: Optional[float] = None  # full-model runs (None: the coordinator's default)


TASKS: Dict[str, Task] = {
    # Train from scratch on IID digits shards (the default).
    "digits": Task("digits", "digits:split=test"),
    # Fine-tune the shipped digits backbone on MNIST digits, Dirichlet(0.5) label-skewed.
    "mnist8": Task("mnist8", "mnist8:split=test", "pi-small-digits", 0.5),
}


@dataclass
class LocalPreset:
    """The newcomer's laptop preset: measured to finish 3 schemes x 5 rounds in < 15 min."""

    name: str = "local"
    local_steps: int = 60
    eval_samples: int = 256
    deadline_s: float = 120.0  # generous: fp32 at 2 Mbit/s must fit on a busy 2-core laptop
    poll_interval_s: float = 2.0


def local_agents(
    n: int,
    threads: int = 1,
    links: Optional[List[LinkProfile]] = None,
    task: str = "digits",
    seed: int = 0,
) -> List[AgentSpec]:
    """``n`` agents with uplinks of 2/5/10/20 Mbit/s.

    digits: IID shards of different sizes (agent i, 1-based, gets shard i of n capped at i/n
    of the shard's size, so sizes grow with i); a task with ``dirichlet_alpha``: shard i of n
    of its train split, label-skewed by Dirichlet(α) with ``seed``. With ``links``, agent i
    gets ``links[(i - 1) % len(links)]`` instead of the fixed rates.
    """
    if n < 1:
        raise ExperimentError("at least one device is needed")
    spec = TASKS[task]
    shard = DIGITS_TRAIN_IMAGES // n
    specs = []
    for i in range(1, n + 1):
        if spec.dirichlet_alpha is None:
            data = f"{task}:shard={i}/{n},limit={max(8, round(shard * i / n))}"
        else:
            data = f"{task}:shard={i}/{n},alpha={spec.dirichlet_alpha:g},seed={seed}"
        link = links[(i - 1) % len(links)] if links else None
        specs.append(
            AgentSpec(
                f"board-{i}",
                data,
                None if link else UPLINKS_MBPS[(i - 1) % len(UPLINKS_MBPS)],
                threads,
                link,
            )
        )
    return specs


def model_params(preset: str, eval_data: str, aggregation: str = "fedavg") -> int:
    """Values one device uploads per round (the ``d`` of the error model): the whole model, or
    the adapter factors an adapter rule sends (default LoRA settings); imports torch."""
    from coordinator.config import LoraSettings
    from greenfed import ddpm
    from greenfed.ddpm import lora

    c, h, _ = ddpm.load_data(eval_data).shape
    model = ddpm.build_model(ddpm.preset(preset, in_channels=c, image_size=h), seed=0)
    parts = adapter_parts(aggregation)
    if not parts:
        return int(sum(v.size for v in ddpm.get_state_arrays(model).values()))
    s = LoraSettings()
    lora.apply_lora(model, lora.LoraConfig(rank=s.rank, alpha=s.alpha, targets=tuple(s.targets)))
    return lora.num_values(lora.adapter_shapes(model, lora.GLOBAL, parts))


def default_error_budget(params: int) -> float:
    """The coordinator's own first-round rule, held fixed: rel x d x (prior range / 4)^2."""
    cfg = CoordinatorConfig()
    return cfg.error_budget_rel * params * (cfg.prior_update_range / 4.0) ** 2


@dataclass
class ExperimentSetup:
    schemes: List[str]
    rounds: int
    agents: List[AgentSpec]
    deadline_s: float
    error_budget: float
    local_steps: int
    eval_samples: int
    seed: int = 0
    preset: str = "local"
    quality_margin_rel: float = 0.20
    poll_interval_s: float = 2.0
    notes: Dict[str, str] = field(default_factory=dict)  # where deadline and budget came from
    link_backend: str = "auto"  # "auto" (shaped where possible), "shaped" or "emulated"
    condition: str = ""  # the link condition of a link study ("steady", "traces")
    boards: str = "none"  # "emulated": every agent the emulated board its spec names
    board_cpus: Optional[float] = None  # host CPUs of the whole fleet (None: the default)
    aggregations: List[str] = field(default_factory=lambda: ["fedavg"])
    task: str = "digits"
    personal: bool = False  # adapter runs: personal adapters, scored on each device
    error_budgets: Dict[str, float] = field(default_factory=dict)  # per rule (default: above)

    def __post_init__(self) -> None:
        if not self.schemes or len(set(self.schemes)) != len(self.schemes):
            raise ExperimentError("give each scheme once, e.g. fp32,fixed-8,on-demand")
        for s in self.schemes:
            try:
                Scheme.parse(s)
            except SchemeError as e:
                raise ExperimentError(str(e)) from e
        if self.task not in TASKS:
            raise ExperimentError(f"unknown task {self.task!r}; known: {', '.join(TASKS)}")
        if not self.aggregations or len(set(self.aggregations)) != len(self.aggregations):
            raise ExperimentError("give each aggregation rule once, e.g. fedavg,ffa")
        for rule in self.aggregations:
            try:
                check_rule(rule)
            except ValueError as e:
                raise ExperimentError(str(e)) from e
            if adapter_parts(rule) and TASKS[self.task].backbone is None:
                raise ExperimentError(
                    f"{rule} adapts a pretrained backbone: use --task mnist8 (docs/lora.md)"
                )
        if self.rounds < 1 or not self.agents:
            raise ExperimentError("rounds and devices must be >= 1")
        if self.deadline_s <= 0 or self.error_budget <= 0:
            raise ExperimentError("deadline and error budget must be > 0")
        if self.boards not in ("none", "emulated"):
            raise ExperimentError("boards must be 'none' or 'emulated'")
        if self.boards == "emulated" and not all(a.board for a in self.agents):
            raise ExperimentError("emulated boards: every agent needs a board profile")

    def runs(self) -> List[Dict[str, str]]:
        """Every (rule, scheme) pair in run order, with its folder name (``label``)."""
        return [
            {"label": s if rule == "fedavg" else f"{rule}-{s}", "scheme": s, "aggregation": rule}
            for rule in self.aggregations
            for s in self.schemes
        ]

    def coordinator_values(self, scheme: str, aggregation: str = "fedavg") -> Dict[str, Any]:
        task = TASKS[self.task]
        values: Dict[str, Any] = {
            "rounds": self.rounds,
            "min_devices": len(self.agents),
            "scheme": scheme,
            "seed": self.seed,
            "local_steps": self.local_steps,
            "deadline_s": float(self.deadline_s),
            "error_budget": float(self.error_budgets.get(aggregation, self.error_budget)),
            "eval_samples": self.eval_samples,
            "poll_interval_s": self.poll_interval_s,
        }
        if self.task != "digits":
            values["eval_data"] = task.eval_data
        if task.backbone is not None:
            values["backbone"] = task.backbone
        if adapter_parts(aggregation):
            values["aggregation"] = aggregation
            values["learning_rate"] = task.adapter_learning_rate
            if self.personal:
                # Devices score their models after the upload: give their reports time.
                values["grace_s"] = 30.0
                values["lora"] = {"personal": True, "seed": self.seed}
        elif task.learning_rate is not None:
            values["learning_rate"] = task.learning_rate
        return values

    def to_json(self) -> Dict[str, Any]:
        d = asdict(self)
        d["agents"] = [asdict(a) for a in self.agents]
        for a, spec in zip(d["agents"], self.agents):
            profile = spec.link_profile()
            a["link"] = profile.to_json() if profile is not None else None
        d["runs"] = self.runs()
        d["coordinator_values"] = {
            r["label"]: self.coordinator_values(r["scheme"], r["aggregation"]) for r in self.runs()
        }
        return d


def prepare_out(out: Path) -> None:
    """Create ``out``; replace an earlier experiment there, refuse any other non-empty folder."""
    if out.exists():
        if not out.is_dir():
            raise ExperimentError(f"{out} exists and is not a directory")
        if any(out.iterdir()):
            if not (out / "experiment.json").is_file():
                raise ExperimentError(
                    f"{out} is not empty and holds no experiment.json: choose another --out"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _completed_rounds(store: Path) -> List[Dict[str, Any]]:
    from coordinator.errors import ReportError
    from coordinator.report.records import load_store

    if not store.is_file():
        return []
    try:
        return load_store(store).completed()
    except (ReportError, OSError):  # tables not created yet
        return []


def failed_agents(run: LocalRun) -> List[str]:
    """One line per agent that failed: its device, exit code and last log line."""
    out = []
    for device, proc in run.agents.items():
        code = proc.poll()
        if code not in (None, 0):
            log = run.run_dir / "logs" / f"{device}.log"
            lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
            out.append(f"{device} exited with code {code}: {lines[-1] if lines else 'no log'}")
    return out


def _drive(
    run: LocalRun,
    setup: ExperimentSetup,
    scheme: str,
    out: Path,
    say: Callable[[str], None],
    timeout_s: float,
    t0: float,
) -> Optional[int]:
    """Start the agents, report rounds as they complete; the coordinator's exit code or None.
    ``scheme``: the run's label (its folder)."""
    store = out / scheme / "state" / "greenfed.sqlite"
    for spec in setup.agents:
        profile = out / "profiles" / f"{spec.device_id}.json"
        profile.parent.mkdir(parents=True, exist_ok=True)
        run.start_agent(spec, extra={"profile": str(profile)})
    seen = 0
    code: Optional[int] = None
    while code is None:
        try:
            code = run.wait(timeout_s=POLL_S)
        except subprocess.TimeoutExpired:
            if time.monotonic() - t0 > timeout_s:
                say(f"[{scheme}] stopped: over the time limit of {timeout_s:.0f} s")
                return None
            failed = failed_agents(run)
            if failed:  # the comparison needs every device: say why instead of waiting it out
                say(f"[{scheme}] stopped: " + "; ".join(failed))
                return None
        for r in _completed_rounds(store)[seen:]:
            fd = r["quality_fd"]
            say(
                f"[{scheme}] round {seen + 1}/{setup.rounds} completed after "
                f"{time.monotonic() - t0:.0f} s: {r['arrived']}/{r['participants']} "
                f"updates, FD {'-' if fd is None else format(fd, '.3f')}"
            )
            seen += 1
    return code


def scheme_boards(setup: ExperimentSetup, run_dir: Path) -> Optional[BoardSet]:
    """The scheme's emulated boards (fresh cgroups per scheme), or None for plain agents."""
    if setup.boards != "emulated":
        return None
    scale = fleet_scale([get_profile(a.board) for a in setup.agents], budget_cpus=setup.board_cpus)
    boards, _ = boards_for_run(run_dir, "emulated", scale)
    return boards


def run_scheme(
    setup: ExperimentSetup,
    scheme: str,
    out: Path,
    say: Callable[[str], None],
    timeout_s: float,
    aggregation: str = "fedavg",
) -> Dict[str, Any]:
    """One coordinator run with the shared agents; returns its result for experiment.json."""
    label = scheme if aggregation == "fedavg" else f"{aggregation}-{scheme}"
    run_dir = out / label
    run_dir.mkdir(parents=True, exist_ok=True)
    store = run_dir / "state" / "greenfed.sqlite"
    t0 = time.monotonic()
    values = setup.coordinator_values(scheme, aggregation)
    with open(run_dir / "coordinator.log", "ab") as log:
        try:
            boards = scheme_boards(setup, run_dir)
            try:
                links = shaped_or_emulated(run_dir, setup.link_backend)
            except BaseException:
                if boards is not None:
                    boards.close()
                raise
            run = start_coordinator(run_dir, values, stdout=log, links=links, boards=boards)
            links.start_traces()
        except (LaunchError, LinkError, BoardError) as e:
            return {"scheme": label, "exit_code": None, "error": str(e), "rounds_completed": 0}
        say(f"[{label}] links: {links.label}" + (f" ({links.note})" if links.note else ""))
        if boards is not None:
            say(f"[{label}] boards: {boards.label}" + (f" ({boards.note})" if boards.note else ""))
        try:
            code = _drive(run, setup, label, out, say, timeout_s, t0)
        finally:
            run.close()
    return {
        "scheme": label,
        "aggregation": aggregation,
        "exit_code": code,
        "wall_s": round(time.monotonic() - t0, 1),
        "rounds_completed": len(_completed_rounds(store)),
        "links": links.label,
        "store": str(store.relative_to(out)),
        "coordinator_log": str((run_dir / "coordinator.log").relative_to(out)),
    }


def write_json(out: Path, setup: ExperimentSetup, results: List[Dict[str, Any]]) -> Path:
    path = out / "experiment.json"
    doc = {"format": "greenfed-experiment/1", **setup.to_json(), "results": results}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def run_experiment(
    setup: ExperimentSetup, out: Path, say: Callable[[str], None] = print
) -> List[Dict[str, Any]]:
    """Run every scheme in order; experiment.json is rewritten after each one."""
    prepare_out(out)
    results: List[Dict[str, Any]] = []
    write_json(out, setup, results)
    limit = 300.0 + setup.rounds * (setup.deadline_s + 120.0)
    runs = setup.runs()
    for i, r in enumerate(runs, 1):
        scheme = r["label"]
        say(f"[{scheme}] run {i}/{len(runs)}: starting a coordinator and "
            f"{len(setup.agents)} agents; log in {out / scheme / 'coordinator.log'}")  # fmt: skip
        result = run_scheme(setup, r["scheme"], out, say, limit, r["aggregation"])
        results.append(result)
        write_json(out, setup, results)
        say(f"[{scheme}] done in {result.get('wall_s', 0):.0f} s: "
            f"{result['rounds_completed']}/{setup.rounds} rounds, exit code "
            f"{result['exit_code']}")  # fmt: skip
    return results
