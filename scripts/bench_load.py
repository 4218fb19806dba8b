#!/usr/bin/env python3
"""Load test: N lightweight devices against one coordinator process on loopback.

    .venv/bin/python scripts/bench_load.py --devices 32 --rounds 8

The coordinator is the real ``greenfed-coordinator serve`` (pi-small model, no per-round
evaluation so the figure is the protocol's, not the quality metric's). Each device is a thread
in this process speaking raw gRPC on its own channel: it registers, long-polls, downloads the
global model, uploads a random update quantized at its assigned bits (the real codec) and
reports. No torch in the devices, so 32 of them fit on a laptop next to the coordinator.

Prints p50/p99 round time (opened -> completed, from the store) and the coordinator's peak
resident memory (VmHWM from /proc/<pid>/status).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator.launcher import start_coordinator
from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc
from scripts.benchlib import PROFILE


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Device(threading.Thread):
    def __init__(self, port: int, name: str, stats: Dict[str, int], lock: threading.Lock) -> None:
        super().__init__(name=name, daemon=True)
        self.dev = name
        self.md = (("greenfed-device-id", name),)
        # Own TCP connection per device, as separate boards have (grpc would share one).
        self.ch = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.stub = pb_grpc.FleetStub(self.ch)
        self.rng = np.random.default_rng(abs(hash(name)) % 2**32)
        self.stats = stats
        self.lock = lock
        self.error: str = ""

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # reported by main
            self.error = f"{type(e).__name__}: {e}"

    def download(self, round_no: int) -> bytes:
        while True:  # busy (RESOURCE_EXHAUSTED): back off and retry, as the agent does
            try:
                req = pb.DownloadRequest(round=round_no)
                stream = self.stub.DownloadModel(req, metadata=self.md, timeout=60)
                return b"".join(c.data for c in stream)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
                    raise
                self.count("busy_retries")
                time.sleep(0.05 + 0.2 * self.rng.random())

    def _run(self) -> None:
        grpc.channel_ready_future(self.ch).result(timeout=60)
        self.stub.Register(
            pb.RegisterRequest(samples=100, profile=PROFILE), metadata=self.md, timeout=60
        )
        last = -1
        while True:
            a = self.stub.WaitAssignment(
                pb.WaitRequest(last_round=last), metadata=self.md, timeout=30
            )
            if a.status == pb.Assignment.FINISHED:
                return
            if a.status != pb.Assignment.ASSIGNED:
                continue
            frame = self.download(a.round)
            params = codec.decode(frame, max_frame_bytes=1 << 28, max_decoded_bytes=1 << 28)
            update = {
                k: (self.rng.standard_normal(v.shape) * 1e-3).astype(v.dtype)
                if v.dtype.kind == "f"
                else np.zeros_like(v)
                for k, v in params.items()
            }
            cfg = codec.CodecConfig(mode=a.mode, bits=a.bits if a.mode == "stochastic" else 8)
            enc = codec.encode(update, cfg)
            manifest = pb.UploadManifest(
                round=a.round,
                total_bytes=len(enc.frame),
                sha256=enc.sha256,
                samples=100,
                bits=a.bits,
                mode=a.mode,
            )
            msgs = [pb.UploadMessage(manifest=manifest)] + [
                pb.UploadMessage(chunk=pb.UploadChunk(data=c))
                for c in codec.iter_chunks(enc.frame, 1 << 20)
            ]
            while True:
                try:
                    self.stub.UploadUpdate(iter(msgs), metadata=self.md, timeout=60)
                    break
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
                        raise
                    self.count("busy_retries")
                    time.sleep(0.05 + 0.2 * self.rng.random())
            w = pb.EnergyWindow(name="compute", energy_j=1.0, duration_s=0.1, source="estimated")
            self.stub.ReportRound(
                pb.RoundReport(round=a.round, windows=[w], bytes_up=len(enc.frame), samples=100),
                metadata=self.md,
                timeout=30,
            )
            self.count("uploads")
            last = a.round


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=32)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--scheme", default="fixed-8")
    p.add_argument("--preset", default="pi-small")
    p.add_argument("--timeout-s", type=float, default=500.0, help="give up after this long")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="greenfed-load-"))
    values: Dict[str, Any] = {
        "rounds": args.rounds,
        "min_devices": args.devices,
        "scheme": args.scheme,
        "model_preset": args.preset,
        "eval_samples": 0,
        "deadline_s": 300.0,
        "grace_s": 1.0,
        "poll_interval_s": 2.0,
        # Every long poll holds a server thread: leave room for downloads and uploads.
        "max_workers": 2 * args.devices + 16,
    }
    t0 = time.monotonic()
    with open(run_dir / "coordinator.log", "wb") as out:
        run = start_coordinator(run_dir, values, stdout=out)
    pid = run.coordinator.pid
    stats: Dict[str, int] = {}
    lock = threading.Lock()
    devices = [Device(run.port, f"load-{i:02d}", stats, lock) for i in range(args.devices)]
    peak = 0.0
    try:
        for d in devices:
            d.start()
        end = time.monotonic() + args.timeout_s
        while run.coordinator.poll() is None and any(d.is_alive() for d in devices):
            peak = max(peak, vm_hwm_mib(pid))
            if time.monotonic() > end:
                print(f"timed out after {args.timeout_s:.0f} s", file=sys.stderr)
                break
            time.sleep(0.5)
        try:
            code = run.wait(timeout_s=60)
        except Exception:
            code = -1
    finally:
        run.close()
    errors = [f"{d.dev}: {d.error}" for d in devices if d.error]
    con = sqlite3.connect(str(run_dir / "state" / "greenfed.sqlite"))
    rows = con.execute(
        "SELECT round, status, closed_at - started_at, arrived FROM rounds ORDER BY round"
    ).fetchall()
    durations: List[float] = [r[2] for r in rows if r[1] == "completed"]
    figures = {
        "devices": args.devices,
        "rounds_completed": len(durations),
        "round_s_p50": float(np.percentile(durations, 50)) if durations else None,
        "round_s_p99": float(np.percentile(durations, 99)) if durations else None,
        "round_s_max": max(durations) if durations else None,
        "arrived_per_round": [r[3] for r in rows],
        "coordinator_peak_rss_mib": round(peak, 1),
        "busy_retries": stats.get("busy_retries", 0),
        "uploads": stats.get("uploads", 0),
        "wall_s": round(time.monotonic() - t0, 1),
        "coordinator_exit": code,
        "errors": errors[:5],
        "run_dir": str(run_dir),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for k, v in figures.items():
            print(f"{k:26s} {v}")
    return 0 if code == 0 and not errors and len(durations) == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
