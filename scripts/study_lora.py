#!/usr/bin/env python3
"""The LoRA quality study: full-model fine-tuning vs adapters, SIMULATED in one process.

Runs :mod:`coordinator.adapter_study` (the real model hosts, training modes and aggregation
rules; no gRPC, no energy, fp32 uploads) for every configuration and seed, writes every round
to ``--out`` (JSON) and prints the acceptance figures of docs/lora.md: fedit against full-model
FedAvg fine-tuning (held-out loss and FD), both against the frozen backbone, ffa beside them,
and how many devices' personal adapters beat the global one on their own held-out images.
Heavy on a shared 2-core machine (about an hour): run it alone, under ``nice``.

    nice -n 10 .venv/bin/python scripts/study_lora.py --out runs/lora-study.json
    .venv/bin/python scripts/study_lora.py --seeds 0 --rounds 2 --out /tmp/quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordinator.adapter_study import CONFIGS, StudySetup, run_study, summarize  # noqa: E402
from scripts.benchlib import cpu_name  # noqa: E402


def _csv(text: str) -> tuple:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _f(v: Optional[float], spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def verdicts(summary: Dict[str, Any]) -> list:
    lines = []
    frozen = summary.get("frozen")
    if frozen:
        lines.append(
            f"frozen backbone: held-out loss {_f(frozen['loss'])}, FD {_f(frozen['fd'], '.3f')}"
        )
    for name in ("fedit", "ffa"):
        v = summary.get(f"{name}_vs_full")
        if not v:
            continue
        ok_q = v["loss_ratio"] <= 1.10 and v["fd_ratio"] <= 1.10
        ok_f = v["loss_gain_vs_frozen"] >= 0.25 and v["fd_gain_vs_frozen"] >= 0.25
        lines.append(
            f"{name} vs full FedAvg fine-tuning: loss x{v['loss_ratio']:.3f}, FD "
            f"x{v['fd_ratio']:.3f} (limit 1.10: {'MET' if ok_q else 'MISSED'}); vs frozen: "
            f"loss {v['loss_gain_vs_frozen']:.1%} better, FD {v['fd_gain_vs_frozen']:.1%} "
            f"better (limit 25 %: {'MET' if ok_f else 'MISSED'})"
        )
    personal = summary["configs"].get("fedit-personal", {}).get("personal_wins_final")
    if personal:
        ok = all(w >= 3 for w in personal)
        lines.append(
            f"personal adapter beats the global one on its own held-out images on {personal} "
            f"devices (per seed, of {summary['setup']['devices']}; limit 3: "
            f"{'MET' if ok else 'MISSED'})"
        )
    gap = summary["configs"].get("fedit", {}).get("fedit_gap_rel_mean")
    if gap is not None:
        lines.append(f"fedit aggregation gap: {gap:.2%} of the round's mean ΔW change (mean)")
    steps = {n: c["seconds_per_step"] for n, c in summary["configs"].items()}
    if "full" in steps:
        lines.append(
            "seconds per local step (in-study wall clock, load-dependent; see bench_lora.py): "
            + ", ".join(
                f"{n} {s * 1e3:.1f} ms ({s / steps['full']:.2f}x)" for n, s in steps.items()
            )
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON with every round")
    ap.add_argument("--configs", type=_csv, default=CONFIGS, help=f"default {','.join(CONFIGS)}")
    ap.add_argument("--seeds", type=lambda s: tuple(int(x) for x in _csv(s)), default=(0, 1, 2))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--local-steps", type=int, default=StudySetup.local_steps)
    ap.add_argument("--lr-full", type=float, default=StudySetup.lr_full)
    ap.add_argument("--lr-adapter", type=float, default=StudySetup.lr_adapter)
    ap.add_argument("--rank", type=int, default=StudySetup.rank)
    ap.add_argument("--alpha", type=float, default=StudySetup.lora_alpha)
    ap.add_argument("--targets", type=_csv, default=StudySetup.targets, help="LoRA layer patterns")
    ap.add_argument("--eval-samples", type=int, default=StudySetup.eval_samples)
    args = ap.parse_args()
    setup = StudySetup(
        configs=args.configs,
        seeds=args.seeds,
        rounds=args.rounds,
        devices=args.devices,
        local_steps=args.local_steps,
        lr_full=args.lr_full,
        lr_adapter=args.lr_adapter,
        rank=args.rank,
        lora_alpha=args.alpha,
        targets=args.targets,
        eval_samples=args.eval_samples,
    )
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; SIMULATED in one process (docs/lora.md)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.monotonic()
    runs = run_study(setup, say=lambda m: print(m, flush=True))
    summary = summarize(setup, runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"summary": summary, "runs": [asdict(r) for r in runs]}
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print("\n== final round, mean over seeds ==")
    print(f"{'config':<16} {'values up':>9} {'loss':>8} {'FD':>8} {'floor':>7}")
    for name, c in summary["configs"].items():
        print(f"{name:<16} {c['values_up']:>9,} {_f(c['final_loss']):>8} "
              f"{_f(c['final_fd'], '.3f'):>8} {_f(c['floor'], '.3f'):>7}")  # fmt: skip
    print("\n== acceptance ==")
    print("\n".join(verdicts(summary)))
    print(f"\nwrote {args.out}; {time.monotonic() - t0:.0f} s; load average after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
