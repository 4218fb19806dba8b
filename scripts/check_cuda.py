#!/usr/bin/env python3
"""Check the CUDA training path on a machine with a GPU: speed, and a CUDA update on a CPU side.

Three parts, printed with the command and the machine:

1. Training steps/s of each preset (``pi-small``, ``pi-base``) on the CPU and on CUDA, side by
   side in one run: ``greenfed.ddpm.train_local`` at batch 64 on the shipped digits (8×8) and on
   the same digits upsampled to 32×32 (a Jetson-sized image, labelled so), median of timed
   chunks after a warm-up. Each step reads its loss back, so CUDA steps are timed complete.
2. One local round on CUDA (``edge_agent.training``, ``device="cuda"``), its update encoded
   with the agent's codec, then decoded and aggregated (FedAvg) by the coordinator's code on the
   CPU, compared with the same round trained on the CPU (same seed: same batches and noise).
3. End to end: a ``greenfed-coordinator serve`` process with CUDA hidden from it
   (``CUDA_VISIBLE_DEVICES=""``) and a ``greenfed-agent run --device cuda`` process, one round
   over gRPC on loopback; the stored report must say ``train_device = cuda``.

Exit status 0 when every check holds, 1 when one fails, 2 when this machine has no CUDA (pass
``--stand-in-cpu`` to run every part with the CPU standing in for CUDA: this checks the script,
not CUDA, and every line says so).

    .venv/bin/python scripts/check_cuda.py [--threads 4] [--presets pi-small,pi-base]
        [--sizes 8,32] [--chunks 5] [--skip-e2e] [--stand-in-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib import cpu_name  # noqa: E402


def median(xs: List[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def images_at(size: int) -> np.ndarray:
    """The shipped digits (8×8), nearest-upsampled to ``size`` px when larger."""
    from greenfed.ddpm import load_data

    imgs = load_data("digits").images
    k = size // imgs.shape[-1]
    return imgs if k <= 1 else np.kron(imgs, np.ones((1, 1, k, k), dtype=np.uint8))


def steps_per_s(name: str, size: int, device: str, threads: int, chunks: int) -> Tuple[float, int]:
    """Median steps/s of ``chunks`` timed 20-step chunks after a 10-step warm-up."""
    import torch

    from greenfed.ddpm import NoiseSchedule, TrainConfig, build_model, preset, train_local

    imgs = images_at(size)
    torch.manual_seed(0)
    model = build_model(preset(name, image_size=size)).to(device)
    sched = NoiseSchedule()
    train_local(model, sched, imgs, TrainConfig(steps=10, num_threads=threads))
    rates = [
        train_local(model, sched, imgs, TrainConfig(steps=20, seed=i, num_threads=threads))
        .steps_per_s
        for i in range(chunks)
    ]  # fmt: skip
    return median(rates), sum(int(p.numel()) for p in model.parameters())


def part_speed(args: argparse.Namespace, gpu: str) -> List[Dict[str, Any]]:
    tag = "cpu (stand-in)" if args.stand_in_cpu else "cuda"
    print(
        f"\n== 1. training steps/s, batch 64, median of {args.chunks} chunks of 20 steps =="
        f"\n(cpu with {args.threads} torch threads; 32 px = digits upsampled, not a new data set)"
    )
    print(f"{'preset':<9} {'px':>3} {'params':>10} {'cpu':>9} {tag:>15} {'ratio':>8}")
    rows = []
    for name in args.presets.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            cpu, params = steps_per_s(name, size, "cpu", args.threads, args.chunks)
            acc, _ = steps_per_s(name, size, gpu, args.threads, args.chunks)
            row = {"preset": name, "px": size, "params": params, "cpu": cpu, "gpu": acc}
            rows.append({**row, "ratio": acc / cpu})
            print(
                f"{name:<9} {size:>3} {params:>10,} {cpu:>9.1f} {acc:>15.1f} {acc / cpu:>7.2f}x",
                flush=True,
            )
    return rows


def part_round(gpu: str) -> Dict[str, Any]:
    """A round on the GPU, encoded; decoded and aggregated by the coordinator's code on CPU."""
    import json as _json

    from coordinator.aggregation import make_aggregator
    from coordinator.aggregation.base import template_of
    from edge_agent.training import LocalPlan, make_training
    from greenfed import codec, ddpm

    print("\n== 2. a CUDA round, decoded and aggregated on the CPU ==")
    cfg = {"unet": ddpm.preset("pi-small").to_dict(), "schedule": ddpm.ScheduleConfig().to_dict()}
    model_config = _json.loads(_json.dumps(cfg))
    images = ddpm.load_data("digits:shard=1/4").images
    start = ddpm.get_state_arrays(ddpm.build_model(ddpm.preset("pi-small")))
    plan = LocalPlan(steps=20, batch_size=32, learning_rate=2e-3, seed=11, max_seconds=600)
    updates = {}
    for device in ("cpu", gpu):
        trainer = make_training(model_config, images, device)
        trainer.load_global(start)
        res = trainer.train(plan)
        updates[device] = res.update
        print(f"{device:>4}: {res.steps} steps, loss {res.losses[0]:.4f} -> {res.losses[-1]:.4f}")
    upd = updates[gpu]
    host = all(isinstance(v, np.ndarray) for v in upd.values())
    enc = codec.encode(upd, codec.CodecConfig(mode="stochastic", bits=8))
    dec = codec.decode(enc.frame, max_frame_bytes=1 << 26, max_decoded_bytes=1 << 28)
    agg = make_aggregator("fedavg", template_of(start))
    agg.add(dec, 450)
    new, applied_sq = agg.apply(start)
    sq_err = sum(float(np.sum((dec[k] - upd[k]) ** 2)) for k in upd)
    moved = sum(float(np.sum((new[k] - start[k] - dec[k]) ** 2)) for k in dec)
    a = np.concatenate([updates["cpu"][k].ravel() for k in sorted(upd)])
    b = np.concatenate([upd[k].ravel() for k in sorted(upd)])
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    out = {
        "host_arrays": host,
        "frame_bytes": enc.frame_bytes,
        "sq_error": sq_err,
        "sq_error_bound": float(enc.total_bound),
        "aggregate_residual_sq": moved,
        "applied_sq_norm": applied_sq,
        "cosine_cpu_vs_gpu_update": cos,
    }
    out["ok"] = bool(host and sq_err <= enc.total_bound and moved < 1e-8 and cos > 0.9)
    print(
        f"update in host memory: {host}; frame {enc.frame_bytes:,} B (8 bits); decoded squared "
        f"error {sq_err:.3e} <= bound {enc.total_bound:.3e}: {sq_err <= enc.total_bound}\n"
        f"FedAvg on the CPU applied it (residual {moved:.1e}, applied norm² {applied_sq:.3e}); "
        f"cosine(cpu update, {gpu} update) = {cos:.4f}"
    )
    return out


def part_e2e(gpu: str, threads: int) -> Dict[str, Any]:
    """Coordinator with CUDA hidden + an agent on ``gpu``, one round over gRPC on loopback."""
    print(f"\n== 3. end to end: coordinator (CUDA hidden) + agent --device {gpu} ==")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        coord_cfg = run / "coordinator.toml"
        coord_cfg.write_text(
            'listen = "127.0.0.1:0"\n'
            f'state_dir = "{run / "state"}"\n'
            "rounds = 1\nmin_devices = 1\nlocal_steps = 20\nbatch_size = 32\n"
            "eval_samples = 16\neval_ddim_steps = 4\npoll_interval_s = 1.0\ndeadline_s = 120.0\n"
        )
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
        port_file = run / "port"
        t0 = time.monotonic()
        with open(run / "coordinator.log", "wb") as log:
            coord = subprocess.Popen(
                [sys.executable, "-m", "coordinator.cli", "serve", "--config", str(coord_cfg),
                 "--port-file", str(port_file)],
                stdout=log, stderr=subprocess.STDOUT, env=dict(env, CUDA_VISIBLE_DEVICES=""),
            )  # fmt: skip
        try:
            while not port_file.exists():
                if coord.poll() is not None or time.monotonic() - t0 > 120:
                    log_tail = _tail(run / "coordinator.log")
                    raise RuntimeError(f"coordinator did not start: {log_tail}")
                time.sleep(0.2)
            agent = subprocess.run(
                [sys.executable, "-m", "edge_agent.cli", "run", "--coordinator",
                 f"127.0.0.1:{port_file.read_text().strip()}", "--device-id", "gpu-board",
                 "--data", "digits:shard=1/4", "--state-dir", str(run / "agent"),
                 "--device", gpu, "--threads", str(threads)],
                capture_output=True, text=True, env=env, timeout=600,
            )  # fmt: skip
            coord.wait(timeout=120)
        finally:
            if coord.poll() is None:
                coord.kill()
        db = sqlite3.connect(run / "state" / "greenfed.sqlite")
        db.row_factory = sqlite3.Row
        rep = [dict(r) for r in db.execute("SELECT * FROM reports")]
        rnd = [dict(r) for r in db.execute("SELECT * FROM rounds")]
        dev = [dict(r) for r in db.execute("SELECT train_device, device_name FROM devices")]
        db.close()
    ok = (
        agent.returncode == 0
        and len(rep) == 1
        and rep[0]["train_device"] == gpu
        and [r["status"] for r in rnd] == ["completed"]
        and rnd[0]["arrived"] == 1
    )
    r0 = {k: v for k, v in rep[0].items() if k != "report_json"} if rep else {}
    print(
        f"agent exit {agent.returncode}; device row {dev}; round {[r['status'] for r in rnd]}, "
        f"arrived {rnd[0]['arrived'] if rnd else 0}; report train_device "
        f"{r0.get('train_device')!r}, compute {r0.get('compute_time_s') or 0:.2f} s, "
        f"mean_freq_hz {r0.get('mean_freq_hz')}; wall {time.monotonic() - t0:.0f} s"
    )
    if not ok:
        print(agent.stderr[-3000:])
    return {"ok": ok, "report": r0, "device": dev}


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="pi-small,pi-base")
    ap.add_argument("--sizes", default="8,32", help="image sizes in px (digits upsampled)")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--skip-e2e", action="store_true", help="skip part 3 (processes, gRPC)")
    ap.add_argument(
        "--stand-in-cpu",
        action="store_true",
        help="no CUDA here: run every part with the CPU in CUDA's place (checks the script)",
    )
    args = ap.parse_args()

    import torch

    from edge_agent.training.device import torch_report

    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    rep = torch_report(torch)
    gpu = "cuda"
    if not rep["cuda_available"]:
        if not args.stand_in_cpu:
            print(f"no CUDA on this machine: {rep['cuda_reason']}", file=sys.stderr)
            return 2
        gpu = "cpu"
        print("STAND-IN: no CUDA here; the CPU runs every 'cuda' part. NOT a CUDA measurement.")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs; GPU: {rep['cuda_device'] or 'none'}; "
        f"Python {platform.python_version()}, torch {rep['version']} (CUDA "
        f"{rep['cuda_built'] or 'none'}), torch.distributed: {rep['distributed']}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: Dict[str, Any] = {"speed": part_speed(args, gpu), "round": part_round(gpu)}
    ok = bool(results["round"]["ok"])
    if not args.skip_e2e:
        results["e2e"] = part_e2e(gpu, args.threads)
        ok = ok and bool(results["e2e"]["ok"])
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("json: " + json.dumps(results, default=str))
    print("RESULT " + ("PASS" if ok else "FAIL") + (" (stand-in: cpu)" if gpu == "cpu" else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
