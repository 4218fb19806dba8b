"""Measuring a shaped link over real sockets: bulk goodput and TCP round-trip time.

Both ends live in one process: a socket made while the thread is inside a namespace stays in
that namespace (kernel.in_netns), so the receiver sits in the hub namespace and the sender in
the device's, and the bytes cross the link's qdiscs (and delay line) for real. Times are
``time.monotonic()`` on one clock. Used by the acceptance tests and scripts/bench_links.py.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

from coordinator.links.kernel import in_netns

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Goodput:
    bytes: int
    seconds: float  # from the connected sender's first byte to the receiver's last

    @property
    def mbps(self) -> float:
        return self.bytes * 8.0 / self.seconds / 1e6


@dataclass(frozen=True)
class RoundTrips:
    samples_s: List[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_s) * 1e3


def _listener(ns: str, ip: str) -> socket.socket:
    with in_netns(ns):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, 0))
    srv.listen(1)
    return srv


def _connect(ns: str, ip: str, port: int, timeout_s: float) -> socket.socket:
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    sock.connect((ip, port))
    return sock


def bulk_goodput(
    server_ns: str, client_ns: str, server_ip: str, nbytes: int, timeout_s: float = 120.0
) -> Goodput:
    """Send ``nbytes`` from ``client_ns`` to a receiver in ``server_ns``; the goodput seen."""
    srv = _listener(server_ns, server_ip)
    srv.settimeout(timeout_s)
    got = {"bytes": 0, "end": 0.0}
    failure: List[BaseException] = []

    def receive() -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(timeout_s)
                while True:
                    data = conn.recv(CHUNK)
                    if not data:
                        break
                    got["bytes"] += len(data)
                    got["end"] = time.monotonic()
        except OSError as e:  # surfaced below: a hang guard, not a verdict
            failure.append(e)

    thread = threading.Thread(target=receive, name="goodput-receiver", daemon=True)
    thread.start()
    try:
        sock = _connect(client_ns, server_ip, srv.getsockname()[1], timeout_s)
        with sock:
            payload = b"\0" * CHUNK
            t0 = time.monotonic()
            left = nbytes
            while left > 0:
                left -= sock.send(payload[: min(CHUNK, left)])
            sock.shutdown(socket.SHUT_WR)
            thread.join(timeout_s)
    finally:
        srv.close()
    if failure:
        raise failure[0]
    if got["bytes"] != nbytes:
        raise OSError(f"receiver got {got['bytes']} of {nbytes} bytes")
    return Goodput(nbytes, got["end"] - t0)


def tcp_round_trips(
    server_ns: str,
    client_ns: str,
    server_ip: str,
    samples: int = 20,
    warmup: int = 3,
    timeout_s: float = 30.0,
) -> RoundTrips:
    """Round trips of one byte over an established TCP connection (TCP_NODELAY both ends)."""
    srv = _listener(server_ns, server_ip)
    srv.settimeout(timeout_s)

    def echo() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(timeout_s)
            while True:
                try:
                    data = conn.recv(64)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    thread = threading.Thread(target=echo, name="rtt-echo", daemon=True)
    thread.start()
    out: List[float] = []
    sock: Optional[socket.socket] = None
    try:
        sock = _connect(client_ns, server_ip, srv.getsockname()[1], timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(warmup + samples):
            t0 = time.monotonic()
            sock.sendall(b"p")
            if not sock.recv(64):
                raise OSError("the echo side closed the connection")
            if i >= warmup:
                out.append(time.monotonic() - t0)
    finally:
        if sock is not None:
            sock.close()
        srv.close()
        thread.join(timeout_s)
    return RoundTrips(out)
