#!/usr/bin/env python3
"""Upload throughput on loopback: the agent's real gRPC client into the coordinator's real
servicer, against a raw TCP socket copy of the same bytes, interleaved in one run.

    .venv/bin/python scripts/bench_transport.py            # 64 MB, 5 rounds (docs/codec.md)
    .venv/bin/python scripts/bench_transport.py --mb 16 --repeats 3

gRPC path: ``edge_agent.client.FleetClient.upload`` (its chunking and channel options) ->
``coordinator.server.start_server`` (its server options) -> ``FleetServicer.UploadUpdate`` ->
``handlers.upload_update`` -> ``uploads.Spool.receive`` (spool file, sha256 as the bytes
arrive). The engine behind the servicer is a stand-in that checks the manifest and spools, then
drops the file: decoding and aggregation are the engine's work, not the transport's.

The receiving side (coordinator server and raw TCP listener) runs in its own process, as on a
real deployment; the sender is this process. Raw TCP, two receivers: ``memory`` reads every
byte into a buffer; ``spool`` also does with each piece what the coordinator's spool does with
each chunk (append it to a file, hash it); ``old spool`` what it did before issue 18 (append,
fsync, then hash the file read back), to show what that cost on this disk in the same run. The
sender ``sendall``s the frame and waits for a one-byte acknowledgement. The spool directories
are under the system temporary directory (on this machine the same disk as the repository).
Link: loopback, not shaped (the shaped 20 Mbit/s link waits for the links issue).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, cast

import grpc

from coordinator.config import CoordinatorConfig
from coordinator.engine import Engine
from coordinator.messages import Manifest
from coordinator.server import start_server
from coordinator.uploads import Spool
from edge_agent.client import FleetClient, make_channel
from edge_agent.config import AgentConfig
from greenfed.v1 import fleet_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_codec import cpu_model

DEVICE = "bench-device"
GRPC = "gRPC (agent client -> servicer -> spool)"


class _Store:
    def event(self, *args: Any, **kwargs: Any) -> None:
        """The servicer records refusals here; the benchmark has none to keep."""


class SpoolOnlyEngine:
    """What FleetServicer needs of an engine, for uploads only: check, spool, verify, drop."""

    def __init__(self, cfg: CoordinatorConfig) -> None:
        self.cfg = cfg
        self.store = _Store()
        self.spool = Spool(cfg.state_dir / "spool")

    def check_device(self, device_id: str) -> None:
        """Every caller is the benchmark's one device."""

    def receive_upload(self, device_id: str, manifest: Manifest, chunks: Iterable[bytes]) -> int:
        path = self.spool.receive(manifest, device_id, chunks)
        path.unlink()
        return manifest.total_bytes


def serve_raw(server: socket.socket, spool_dir: Path) -> None:
    """Accept raw TCP uploads forever: a mode byte (``m`` memory, ``s`` spool, ``f`` the spool
    before issue 18: fsync, then sha256 of the file read back), the length (8 bytes,
    little-endian), the bytes; answer one byte once all are in (and spooled)."""
    while True:
        conn, _ = server.accept()
        with conn:
            head = conn.recv(9, socket.MSG_WAITALL)
            mode, size = head[:1], int.from_bytes(head[1:9], "little")
            view = memoryview(bytearray(size))
            h = hashlib.sha256()
            with open(spool_dir / "raw.part", "wb") as fh:
                got = 0
                while got < size:
                    n = conn.recv_into(view[got : got + (1 << 20)])
                    if not n:
                        raise ConnectionError("sender closed early")
                    if mode == b"s":  # as the spool does with each chunk
                        fh.write(view[got : got + n])
                        h.update(view[got : got + n])
                    elif mode == b"f":  # as the spool did before issue 18
                        fh.write(view[got : got + n])
                    got += n
                if mode == b"f":
                    fh.flush()
                    os.fsync(fh.fileno())
            if mode == b"f":
                with open(spool_dir / "raw.part", "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
            (spool_dir / "raw.part").unlink()
            conn.sendall(b"k")


def serve(chunk_bytes: Optional[int], max_bytes: int) -> int:
    """The receiving side, in its own process: the coordinator's server and a raw TCP port."""
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        root = Path(tmp)
        cfg = CoordinatorConfig(
            listen="127.0.0.1:0", state_dir=root / "coordinator", max_update_bytes=max_bytes
        )
        if chunk_bytes:
            cfg.chunk_bytes = chunk_bytes
        running = start_server(cfg, cast(Engine, SpoolOnlyEngine(cfg)))  # uploads only
        raw = socket.create_server(("127.0.0.1", 0))
        (root / "raw").mkdir()
        threading.Thread(target=serve_raw, args=(raw, root / "raw"), daemon=True).start()
        print(running.port, raw.getsockname()[1], cfg.chunk_bytes, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin
        running.stop(1.0)
    return 0


def raw_upload(port: int, frame: bytes, mode: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(mode + len(frame).to_bytes(8, "little"))
        s.sendall(frame)
        if s.recv(1) != b"k":
            raise RuntimeError("raw TCP receiver failed")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=64.0, help="update size in MB (1e6 bytes)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    ap.add_argument(
        "--chunk-bytes", type=int, default=None, help="upload chunk size (default: the config's)"
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # receiving side
    args = ap.parse_args(argv)
    size = int(args.mb * 1e6)
    if args.serve:
        return serve(args.chunk_bytes, size + 1)
    frame = os.urandom(size)
    sha = hashlib.sha256(frame).hexdigest()
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
          f"{platform.release()}; grpcio {grpc.__version__}")  # fmt: skip
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--mb", str(args.mb)]
        + (["--chunk-bytes", str(args.chunk_bytes)] if args.chunk_bytes else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None and receiver.stdin is not None
        grpc_port, raw_port, chunk_bytes = (int(x) for x in receiver.stdout.readline().split())
        with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
            agent = AgentConfig(
                coordinator=f"127.0.0.1:{grpc_port}", device_id=DEVICE, state_dir=Path(tmp)
            )
            client = FleetClient(agent, threading.Event(), make_channel(agent))
            client.chunk_bytes = chunk_bytes  # what Register hands the agent
            manifest = pb.UploadManifest(
                round=0, total_bytes=size, sha256=sha, samples=1, bits=32, mode="fp32"
            )

            def grpc_upload() -> None:
                reply = client.upload(manifest, frame, None)
                if not reply.accepted or reply.received_bytes != size:
                    raise RuntimeError(f"upload not accepted: {reply}")

            paths: Dict[str, Callable[[], None]] = {
                GRPC: grpc_upload,
                "raw TCP -> memory": lambda: raw_upload(raw_port, frame, b"m"),
                "raw TCP -> spool (file, sha256)": lambda: raw_upload(raw_port, frame, b"s"),
                "raw TCP -> old spool (+fsync, re-read)": lambda: raw_upload(raw_port, frame, b"f"),
            }
            times: Dict[str, List[float]] = {k: [] for k in paths}
            for fn in paths.values():  # warm-up: connections, page cache, thread pools
                fn()
            for _ in range(args.repeats):
                for name, fn in paths.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            client.close()
    finally:
        if receiver.stdin is not None:
            receiver.stdin.close()
        receiver.wait(30)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.mb:g} MB, loopback, chunks of {chunk_bytes} B, {args.repeats} interleaved "
          "rounds (median; min-max); sender and receiver in two processes")  # fmt: skip
    for name, t in med.items():
        print(f"  {name:42s} {size / t / 1e6:7.0f} MB/s  ({size / max(times[name]) / 1e6:.0f}-"
              f"{size / min(times[name]) / 1e6:.0f})  gRPC/this {t / med[GRPC]:.2f}")  # fmt: skip
    print("(gRPC/this: the gRPC path's throughput as a fraction of this path's)")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
