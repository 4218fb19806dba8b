"""The adapters' quality study: federated rounds simulated in one process (docs/lora.md).

SIMULATED, not the gRPC system: no agents, no sockets, no energy; what it shares with the
real system is everything that decides quality: the model hosts (:func:`make_host`, the
backbone, evaluation), the devices' training modes (:func:`make_training`: the code the agents
run), the aggregation rules (:func:`make_aggregator`) and the data shards. Uploads are not
quantized (fp32, the codec is exact there). This lets 3 seeds × 10 rounds × 4 devices × several
configurations run on a laptop; ``greenfed-coordinator experiment`` runs the real system.

Configurations (each a real :class:`CoordinatorConfig`):

- ``frozen``: the backbone as shipped (round 0 of every run; no training);
- ``full``: full-model FedAvg fine-tuning of the backbone;
- ``fedit`` / ``ffa``: LoRA adapters (A and B / B only);
- ``fedit-personal``: fedit with a personal adapter per device, each scored on its own
  held-out images against the global adapter.

Per round: the global model's held-out loss (ε-prediction MSE on the test split, the same
timesteps and noise for every model) and FD (the coordinator's evaluation); for fedit the
aggregation gap (‖(Σw b)(Σw a) − Σ w b a‖ relative to the norm of the fleet's mean ΔW).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from coordinator.aggregation import make_aggregator, template_of
from coordinator.aggregation.adapters import fedit_gap
from coordinator.backbone_host import make_host
from coordinator.config import CoordinatorConfig, LoraSettings
from coordinator.model_host import ModelHost

CONFIGS = ("full", "fedit", "ffa", "fedit-personal")


@dataclass(frozen=True)
class StudySetup:
    """What the study runs (defaults: the acceptance study of issue 19)."""

    configs: Tuple[str, ...] = CONFIGS
    seeds: Tuple[int, ...] = (0, 1, 2)
    rounds: int = 10
    devices: int = 4
    dirichlet_alpha: float = 0.5
    data: str = "mnist8"
    backbone: str = "pi-small-digits"
    local_steps: int = 50
    batch_size: int = 64
    lr_full: float = 2e-3
    lr_adapter: float = 1e-2
    rank: int = 4
    lora_alpha: float = 8.0
    targets: Tuple[str, ...] = ("*.conv1", "*.conv2")
    eval_samples: int = 500
    personal_eval_samples: int = 128
    threads: int = 1
    loss_draws: int = 4  # passes over the test split for the held-out loss

    def __post_init__(self) -> None:
        unknown = sorted(set(self.configs) - set(CONFIGS))
        if unknown:
            raise ValueError(f"unknown study configuration {unknown[0]!r}; known: {CONFIGS}")
        if self.rounds < 1 or self.devices < 1 or not self.seeds:
            raise ValueError("rounds, devices and seeds must be >= 1")

    def coordinator_config(self, name: str, seed: int) -> CoordinatorConfig:
        aggregation = {"full": "fedavg", "fedit-personal": "fedit"}.get(name, name)
        return CoordinatorConfig(
            aggregation=aggregation,
            backbone=self.backbone,
            seed=seed,
            local_steps=self.local_steps,
            batch_size=self.batch_size,
            learning_rate=self.lr_full if name == "full" else self.lr_adapter,
            eval_data=f"{self.data}:split=test",
            eval_samples=self.eval_samples,
            eval_threads=self.threads,
            lora=LoraSettings(
                rank=self.rank,
                alpha=self.lora_alpha,
                targets=list(self.targets),
                seed=seed,
                personal=name == "fedit-personal",
                personal_eval_samples=self.personal_eval_samples,
            ),
        )

    def shard(self, k: int, seed: int) -> str:
        """Device k's data spec (1-based): a Dirichlet(α) label-skewed shard of the train split."""
        return f"{self.data}:shard={k}/{self.devices},alpha={self.dirichlet_alpha:g},seed={seed}"


def heldout_loss(model: Any, schedule: Any, images: np.ndarray, seed: int, draws: int) -> float:
    """Mean ε-prediction MSE over ``draws`` passes of ``images`` with seeded t and noise."""
    import torch

    from greenfed.ddpm.train import images_to_tensor

    x0 = images_to_tensor(images)
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for _ in range(draws):
            t = torch.randint(0, schedule.num_steps, (len(x0),), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            pred = model(schedule.add_noise(x0, noise, t), t)
            total += float(torch.mean((pred - noise) ** 2))
    return total / draws


def relative_gap(
    updates: Mapping[str, Mapping[str, np.ndarray]],
    weights: Mapping[str, float],
    start: Mapping[str, np.ndarray],
    scaling: float,
) -> float:
    """‖fedit's missed ΔW‖ / ‖the fleet's mean ΔW change‖ over all adapted layers."""
    from greenfed.ddpm.lora import delta_weight

    gaps = fedit_gap(updates, weights, scaling)
    total = float(sum(weights.values()))
    gap_sq = change_sq = 0.0
    for layer, gap in gaps.items():
        a0, b0 = start[f"{layer}.A"], start[f"{layer}.B"]
        before = delta_weight(a0, b0, scaling)
        mean_after = sum(
            float(weights[d])
            / total
            * delta_weight(a0 + u[f"{layer}.A"], b0 + u[f"{layer}.B"], scaling)
            for d, u in updates.items()
        )
        gap_sq += float(np.sum(gap**2))
        change_sq += float(np.sum((mean_after - before) ** 2))
    return math.sqrt(gap_sq / change_sq) if change_sq > 0 else 0.0


@dataclass
class RunResult:
    """One configuration and seed: per-round rows (round 0 = the starting model)."""

    config: str
    seed: int
    values_up: int  # values one device uploads per round (d)
    rows: List[Dict[str, Any]] = field(default_factory=list)
    train_s: float = 0.0
    train_steps: int = 0


def run_one(
    setup: StudySetup, name: str, seed: int, say: Callable[[str], None] = print
) -> RunResult:
    """Simulate ``setup.rounds`` rounds of configuration ``name`` with ``seed``."""
    from edge_agent.training import LocalPlan, make_training
    from greenfed import ddpm
    from greenfed.ddpm import lora
    from greenfed.updates import sq_norm

    cfg = setup.coordinator_config(name, seed)
    host: ModelHost = make_host(cfg)
    model_config = json.loads(host.config_json())
    test = ddpm.load_data(cfg.eval_data).images
    devices = []
    for k in range(1, setup.devices + 1):
        images = ddpm.load_data(setup.shard(k, seed)).images
        devices.append((f"dev{k}", make_training(model_config, images), len(images)))
    params = host.init_params(seed)
    result = RunResult(name, seed, int(sum(v.size for v in params.values())))

    def evaluate(round_no: int, extra: Dict[str, Any]) -> None:
        loss = heldout_loss(host.model_with(params), host.schedule, test, 1234, setup.loss_draws)
        quality = host.evaluate(params, seed=seed + round_no)
        row = {"round": round_no, "heldout_loss": loss, **quality, **extra}
        result.rows.append(row)
        say(
            f"[{name} seed {seed}] round {round_no}: held-out loss {loss:.4f}, "
            f"FD {quality.get('fd', float('nan')):.3f}"
            + "".join(f", {k} {v}" for k, v in extra.items() if k == "personal_wins")
        )

    evaluate(0, {})
    for r in range(1, setup.rounds + 1):
        agg = make_aggregator(cfg.aggregation, template_of(params))
        updates: Dict[str, Dict[str, np.ndarray]] = {}
        weights: Dict[str, float] = {}
        personal: Dict[str, Dict[str, float]] = {}
        for i, (dev, trainer, n) in enumerate(devices):
            trainer.load_global(params)
            t0 = time.monotonic()
            out = trainer.train(
                LocalPlan(
                    steps=cfg.local_steps,
                    batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate,
                    seed=(seed * 1_000_003 + r * 1009 + i) % (2**31),
                    max_seconds=1e9,
                    num_threads=setup.threads,
                )
            )
            result.train_s += time.monotonic() - t0
            result.train_steps += out.steps
            agg.add(out.update, n)
            updates[dev], weights[dev] = out.update, float(n)
            if trainer.evaluates:
                personal[dev] = trainer.evaluate()
        extra: Dict[str, Any] = {
            "update_sq_norm_mean": float(np.mean([sq_norm(u) for u in updates.values()]))
        }
        if cfg.aggregation == "fedit":
            extra["fedit_gap_rel"] = relative_gap(
                updates,
                weights,
                params,
                lora.LoraConfig(rank=cfg.lora.rank, alpha=cfg.lora.alpha).scaling,
            )
        if personal:
            extra["personal"] = personal
            extra["personal_wins"] = sum(
                1 for p in personal.values() if p["personal_fd"] < p["global_fd_own"]
            )
        params, _ = agg.apply(params)
        evaluate(r, extra)
    return result


def run_study(setup: StudySetup, say: Callable[[str], None] = print) -> List[RunResult]:
    """Every configuration for every seed, in order (configurations outer)."""
    return [run_one(setup, name, seed, say) for name in setup.configs for seed in setup.seeds]


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def summarize(setup: StudySetup, runs: Sequence[RunResult]) -> Dict[str, Any]:
    """Means over seeds of the first and last rounds, and the acceptance ratios."""
    by: Dict[str, Dict[str, Any]] = {}
    for name in setup.configs:
        mine = [r for r in runs if r.config == name]
        if not mine:
            continue
        last = [r.rows[-1] for r in mine]
        first = [r.rows[0] for r in mine]
        by[name] = {
            "values_up": mine[0].values_up,
            "final_loss": _mean([x["heldout_loss"] for x in last]),
            "final_fd": _mean([x.get("fd") for x in last]),
            "start_loss": _mean([x["heldout_loss"] for x in first]),
            "start_fd": _mean([x.get("fd") for x in first]),
            "floor": _mean([x.get("floor") for x in last]),
            "seconds_per_step": sum(r.train_s for r in mine)
            / max(1, sum(r.train_steps for r in mine)),
            "final_per_seed": [
                {"seed": r.seed, "loss": r.rows[-1]["heldout_loss"], "fd": r.rows[-1].get("fd")}
                for r in mine
            ],
        }
        gaps = [x.get("fedit_gap_rel") for r in mine for x in r.rows[1:]]
        if any(g is not None for g in gaps):
            by[name]["fedit_gap_rel_mean"] = _mean(gaps)
        wins = [x.get("personal_wins") for x in last]
        if any(w is not None for w in wins):
            by[name]["personal_wins_final"] = wins
    out: Dict[str, Any] = {"setup": dataclasses.asdict(setup), "configs": by}
    if "full" in by:
        frozen_loss, frozen_fd = by["full"]["start_loss"], by["full"]["start_fd"]
        out["frozen"] = {"loss": frozen_loss, "fd": frozen_fd}
        for name in ("fedit", "ffa"):
            if name in by and by["full"]["final_loss"] and by["full"]["final_fd"]:
                c = by[name]
                out[f"{name}_vs_full"] = {
                    "loss_ratio": c["final_loss"] / by["full"]["final_loss"],
                    "fd_ratio": c["final_fd"] / by["full"]["final_fd"],
                    "loss_gain_vs_frozen": 1 - c["final_loss"] / frozen_loss,
                    "fd_gain_vs_frozen": 1 - c["final_fd"] / frozen_fd,
                }
    return out
