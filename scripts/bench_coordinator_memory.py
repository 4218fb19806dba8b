#!/usr/bin/env python3
"""Peak coordinator memory while N devices upload a ~4 MB update at the same moment.

Starts a real ``greenfed-coordinator serve`` process (preset pi-base: ~966 k parameters, so
an fp32 update frame is ~3.9 MB), connects N gRPC clients from this process, lets them all
download the model, then releases every upload at once. Reads the coordinator's peak RSS
(VmHWM in /proc/<pid>/status) before and after the round, and compares the growth with the
bytes of all updates together: a coordinator that held every update in memory would grow by
at least that much.

    .venv/bin/python scripts/bench_coordinator_memory.py [--devices 16]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coordinator.launcher import start_coordinator
from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc
from scripts.benchlib import PROFILE


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=16)
    args = ap.parse_args()
    n = args.devices
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = start_coordinator(
            Path(tmp),
            {
                "rounds": 1,
                "min_devices": n,
                "scheme": "fp32",
                "model_preset": "pi-base",
                "eval_samples": 0,
                "deadline_s": 300.0,
                "poll_interval_s": 2.0,
                "max_workers": max(32, 2 * n),
                "max_concurrent_decodes": 2,
            },
            stdout=open(os.devnull, "wb"),  # noqa: SIM115
        )
        pid = run.coordinator.pid
        try:
            channel = grpc.insecure_channel(
                f"127.0.0.1:{run.port}",
                options=[("grpc.max_receive_message_length", 8 << 20)],
            )
            stub = pb_grpc.FleetStub(channel)
            md = [(("greenfed-device-id", f"mem-{i}"),) for i in range(n)]
            for i in range(n):
                stub.Register(pb.RegisterRequest(samples=100, profile=PROFILE), metadata=md[i])
            assignments: List[pb.Assignment] = []
            for i in range(n):
                while True:
                    a = stub.WaitAssignment(pb.WaitRequest(last_round=-1), metadata=md[i])
                    if a.status == pb.Assignment.ASSIGNED:
                        assignments.append(a)
                        break
            frame = b"".join(
                c.data
                for c in stub.DownloadModel(
                    pb.DownloadRequest(round=assignments[0].round), metadata=md[0]
                )
            )
            params = codec.decode(frame, max_frame_bytes=1 << 28, max_decoded_bytes=1 << 28)
            rng = np.random.default_rng(0)
            frames: Dict[int, bytes] = {}
            for i in range(n):
                delta = {
                    k: (rng.standard_normal(v.shape) * 1e-3).astype(np.float32)
                    for k, v in params.items()
                }
                frames[i] = codec.encode(delta, codec.CodecConfig(mode="fp32")).frame
            total = sum(len(f) for f in frames.values())
            base = vm(pid, "VmRSS")
            hwm_before = vm(pid, "VmHWM")
            barrier = threading.Barrier(n)
            errors: List[str] = []

            def upload(i: int) -> None:
                f = frames[i]
                manifest = pb.UploadManifest(
                    round=assignments[i].round,
                    total_bytes=len(f),
                    sha256=hashlib.sha256(f).hexdigest(),
                    samples=100,
                    bits=32,
                    mode="fp32",
                )

                def msgs():  # type: ignore[no-untyped-def]
                    yield pb.UploadMessage(manifest=manifest)
                    for off in range(0, len(f), 1 << 20):
                        yield pb.UploadMessage(chunk=pb.UploadChunk(data=f[off : off + (1 << 20)]))

                barrier.wait()
                try:
                    stub.UploadUpdate(msgs(), metadata=md[i], timeout=300)
                except grpc.RpcError as e:
                    errors.append(f"mem-{i}: {e.code().name} {e.details()}")

            t0 = time.monotonic()
            threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            hwm_after = vm(pid, "VmHWM")
            channel.close()
        finally:
            run.close()
    mib = 1 << 20
    print(
        f"devices: {n}, update frame {len(frames[0]) / mib:.2f} MiB each, "
        f"{total / mib:.1f} MiB in all; uploads took {elapsed:.1f} s; errors: {len(errors)}"
    )
    for e in errors[:5]:
        print("  ", e)
    print(
        f"coordinator RSS before uploads: {base / mib:.1f} MiB (peak so far "
        f"{hwm_before / mib:.1f} MiB)"
    )
    print(
        f"coordinator peak RSS after all uploads: {hwm_after / mib:.1f} MiB; growth "
        f"{(hwm_after - hwm_before) / mib:.1f} MiB vs {total / mib:.1f} MiB of updates "
        f"({(hwm_after - hwm_before) / total:.2f}x)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
