#!/usr/bin/env python3
"""Upload throughput on loopback: the agent's real gRPC client into the coordinator's real
servicer, against a raw TCP socket copy of the same bytes, interleaved in one run.

    .venv/bin/python scripts/bench_transport.py            # 64 MB, 5 rounds (docs/codec.md)
    .venv/bin/python scripts/bench_transport.py --mb 16 --repeats 3
    sudo .venv/bin/python scripts/bench_transport.py --shaped-mbps 20 --repeats 2  # real link

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
With ``--shaped-mbps R`` (root, iproute2) the receiver runs in the hub namespace of a real
shaped link (coordinator/links: a veth pair, tc htb at R Mbit/s on the uplink) and the sender in
the device's namespace, each its own process; the old-spool path is left out there (the link,
not the disk, sets the pace) and the warm-up sends 1 MB instead of the whole frame.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
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
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, cast

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
from benchlib import cpu_name

DEVICE = "bench-device"
GRPC = "gRPC (agent client -> servicer -> spool)"
RAW_MEMORY = "raw TCP -> memory"
RAW_SPOOL = "raw TCP -> spool (file, sha256)"
RAW_OLD_SPOOL = "raw TCP -> old spool (+fsync, re-read)"
MODE = {RAW_MEMORY: b"m", RAW_SPOOL: b"s", RAW_OLD_SPOOL: b"f"}


class _Events:
    """The servicer counts refusals and flushes them on its watchdog tick; none to keep here."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass


class SpoolOnlyEngine:
    """What FleetServicer needs of an engine, for uploads only: check, spool, verify, drop."""

    def __init__(self, cfg: CoordinatorConfig) -> None:
        self.cfg = cfg
        self.events = _Events()
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


def serve(chunk_bytes: Optional[int], max_bytes: int, host: str) -> int:
    """The receiving side, in its own process: the coordinator's server and a raw TCP port."""
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        root = Path(tmp)
        cfg = CoordinatorConfig(
            listen=f"{host}:0", state_dir=root / "coordinator", max_update_bytes=max_bytes
        )
        if chunk_bytes:
            cfg.chunk_bytes = chunk_bytes
        # The shaped link's hub namespace is private to this run (coordinator/links), as in
        # ShapedLinks.coordinator_values: plain gRPC there, as over loopback.
        cfg.tls.insecure = host != "127.0.0.1"
        running = start_server(cfg, cast(Engine, SpoolOnlyEngine(cfg)))  # uploads only
        raw = socket.create_server((host, 0))
        (root / "raw").mkdir()
        threading.Thread(target=serve_raw, args=(raw, root / "raw"), daemon=True).start()
        print(running.port, raw.getsockname()[1], cfg.chunk_bytes, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin
        running.stop(1.0)
    return 0


def raw_upload(host: str, port: int, frame: bytes, mode: bytes) -> None:
    with socket.create_connection((host, port)) as s:
        s.sendall(mode + len(frame).to_bytes(8, "little"))
        s.sendall(frame)
        if s.recv(1) != b"k":
            raise RuntimeError("raw TCP receiver failed")


def send(
    host: str,
    ports: Tuple[int, int, int],
    size: int,
    repeats: int,
    names: List[str],
    warm_bytes: int,
) -> Dict[str, List[float]]:
    """The sending side: each path once to warm up (``warm_bytes``), then ``repeats``
    interleaved timed rounds of ``size`` bytes; seconds per path."""
    grpc_port, raw_port, chunk_bytes = ports
    frame = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        target = f"{host}:{grpc_port}"
        agent = AgentConfig(coordinator=target, device_id=DEVICE, state_dir=Path(tmp))
        client = FleetClient(agent, threading.Event(), make_channel(agent))
        client.chunk_bytes = chunk_bytes  # what Register hands the agent

        def grpc_upload(data: bytes) -> None:
            manifest = pb.UploadManifest(
                round=0, total_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                samples=1, bits=32, mode="fp32",
            )  # fmt: skip
            reply = client.upload(manifest, data, None)
            if not reply.accepted or reply.received_bytes != len(data):
                raise RuntimeError(f"upload not accepted: {reply}")

        def path(name: str) -> Callable[[bytes], None]:
            if name == GRPC:
                return grpc_upload
            return lambda data: raw_upload(host, raw_port, data, MODE[name])

        paths = {name: path(name) for name in names}
        times: Dict[str, List[float]] = {k: [] for k in paths}
        warm = frame if warm_bytes >= size else frame[:warm_bytes]
        for fn in paths.values():  # warm-up: connections, page cache, thread pools
            fn(warm)
        for _ in range(repeats):
            for name, fn in paths.items():
                t0 = time.perf_counter()
                fn(frame)
                times[name].append(time.perf_counter() - t0)
        client.close()
    return times


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=64.0, help="update size in MB (1e6 bytes)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    ap.add_argument(
        "--chunk-bytes", type=int, default=None, help="upload chunk size (default: the config's)"
    )
    ap.add_argument(
        "--shaped-mbps",
        type=float,
        default=None,
        help="send over a real shaped link of this uplink rate, Mbit/s (root, iproute2)",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # receiving side
    ap.add_argument("--send", action="store_true", help=argparse.SUPPRESS)  # sending side
    ap.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    ap.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    size = int(args.mb * 1e6)
    shaped = args.shaped_mbps is not None
    names = [GRPC, RAW_MEMORY, RAW_SPOOL] + ([] if shaped else [RAW_OLD_SPOOL])
    warm_bytes = 1_000_000 if shaped else size
    if args.serve:
        return serve(args.chunk_bytes, size + 1, args.host)
    if args.send:
        ports = cast(Tuple[int, int, int], tuple(int(x) for x in args.ports.split(",")))
        print(json.dumps(send(args.host, ports, size, args.repeats, names, warm_bytes)))
        return 0
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} "
          f"{platform.release()}; grpcio {grpc.__version__}")  # fmt: skip
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with contextlib.ExitStack() as stack:
        host, serve_prefix, send_prefix, link = "127.0.0.1", [], [], "loopback, not shaped"
        if shaped:
            from coordinator.links import LinkProfile, ShapedLinks

            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-links-"))
            links = stack.enter_context(ShapedLinks(Path(tmp)))
            agent_link = links.attach(DEVICE, LinkProfile(rate_mbps=args.shaped_mbps))
            host, serve_prefix = agent_link.coordinator_host, links.coordinator_argv_prefix()
            send_prefix = agent_link.argv_prefix
            link = f"shaped link, {args.shaped_mbps:g} Mbit/s uplink ({agent_link.detail})"
        extra = ["--mb", str(args.mb), "--host", host]
        if args.chunk_bytes:
            extra += ["--chunk-bytes", str(args.chunk_bytes)]
        receiver = subprocess.Popen(
            [*serve_prefix, sys.executable, __file__, "--serve", *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.stdout is not None and receiver.stdin is not None
            grpc_port, raw_port, chunk_bytes = (int(x) for x in receiver.stdout.readline().split())
            ports = (grpc_port, raw_port, chunk_bytes)
            if shaped:  # the sender in the device's namespace, its own process
                out = subprocess.run(
                    [*send_prefix, sys.executable, __file__, "--send", *extra,
                                   "--shaped-mbps", str(args.shaped_mbps),
                                   "--repeats", str(args.repeats),
                                   "--ports", ",".join(map(str, ports))],
                    stdout=subprocess.PIPE, text=True, check=True,
                )  # fmt: skip
                times: Dict[str, List[float]] = json.loads(out.stdout.splitlines()[-1])
            else:
                times = send(host, ports, size, args.repeats, names, warm_bytes)
        finally:
            if receiver.stdin is not None:
                receiver.stdin.close()
            receiver.wait(30)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.mb:g} MB, {link}, chunks of {chunk_bytes} B, {args.repeats} interleaved "
          "rounds (median; min-max); sender and receiver in two processes")  # fmt: skip
    for name, t in med.items():
        print(f"  {name:42s} {size / t / 1e6:7.2f} MB/s  ({size / max(times[name]) / 1e6:.2f}-"
              f"{size / min(times[name]) / 1e6:.2f})  gRPC/this {t / med[GRPC]:.3f}")  # fmt: skip
    if shaped:
        rate = args.shaped_mbps * 1e6 / 8
        print(f"  link rate {rate / 1e6:.2f} MB/s; gRPC goodput/link rate "
              f"{size / med[GRPC] / rate:.3f}")  # fmt: skip
    print("(gRPC/this: the gRPC path's throughput as a fraction of this path's)")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
