"""The pool's process group: rendezvous on the pool's own interface, and counted transfers.

gloo has no authentication and no encryption: anyone who reaches its ports can join or
disturb a rendezvous. So the leader's store listens on the pool interface's address only (a
socket bound there, handed to ``TCPStore`` by file descriptor), gloo's own sockets bind to
that interface (``GLOO_SOCKET_IFNAME``), the store's port is fresh for every round and told
only to members that proved their membership over TLS (:mod:`edge_agent.pool.gate`), and
every collective has a timeout. A torch without ``master_listen_fd`` (older than 2.1) binds
the store to every interface; :func:`start_store` logs that, and docs/pools.md says to
firewall the port range.

:class:`Comm` wraps the few operations the engines use; each counts the bytes it moves into
the member's :class:`~edge_agent.pool.meter.PhaseMeter`, enters the "exchange" phase, and
turns a failed or timed-out transfer into :class:`~edge_agent.pool.errors.PoolRoundFailed`.
All-reduce bytes are counted as a ring all-reduce moves them: ``2 (k-1)/k`` of the payload
sent and as much received per member.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from .errors import PoolRoundFailed, PoolUnavailable
from .meter import EXCHANGE, PhaseMeter

log = logging.getLogger(__name__)


def interface_address(interface: str) -> str:
    """The IPv4 address of network interface ``interface`` ("lo", "eth0")."""
    import psutil

    addrs = psutil.net_if_addrs().get(interface)
    if not addrs:
        known = ", ".join(sorted(psutil.net_if_addrs())) or "none"
        raise PoolUnavailable(f"no network interface {interface!r} (this board has: {known})")
    for a in addrs:
        if a.family == socket.AF_INET:
            return str(a.address)
    raise PoolUnavailable(f"interface {interface!r} has no IPv4 address")


@dataclass(frozen=True)
class GroupSpec:
    """Where and how one member joins a round's process group."""

    host: str  # the leader's address on the pool interface
    port: int  # the round's store port
    rank: int
    world_size: int
    timeout_s: float
    interface: str = ""  # GLOO_SOCKET_IFNAME; "" lets gloo pick
    backend: str = "gloo"


def start_store(host: str, world_size: int, timeout_s: float) -> Tuple[Any, int]:
    """The leader's store on ``host`` only (a fresh port); returns (store, port)."""
    timeout = datetime.timedelta(seconds=timeout_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(64)
        port = int(sock.getsockname()[1])
    except OSError as e:
        sock.close()
        raise PoolUnavailable(f"cannot listen on {host} for the pool's rendezvous: {e}") from e
    try:
        # The store takes ownership of the socket (detach: Python must not close it).
        store = dist.TCPStore(
            host, port, world_size, True, timeout,
            wait_for_workers=False, master_listen_fd=sock.detach(), use_libuv=False,
        )  # fmt: skip
        return store, port
    except TypeError:  # torch < 2.1: no master_listen_fd; binds every interface
        sock.close()
        log.warning(
            "this torch cannot bind the rendezvous store to %s only: it listens on every "
            "interface for the round's set-up (firewall the port range, docs/pools.md)",
            host,
        )
        store = dist.TCPStore(host, 0, world_size, True, timeout, wait_for_workers=False)
        return store, int(store.port)


def open_group(spec: GroupSpec, store: Optional[Any] = None) -> None:
    """Join the round's process group (the leader passes its store, members dial it)."""
    timeout = datetime.timedelta(seconds=spec.timeout_s)
    if spec.interface:
        os.environ["GLOO_SOCKET_IFNAME"] = spec.interface
    try:
        if store is None:
            store = dist.TCPStore(spec.host, spec.port, spec.world_size, False, timeout)
        dist.init_process_group(
            spec.backend,
            store=store,
            rank=spec.rank,
            world_size=spec.world_size,
            timeout=timeout,
        )
    except (RuntimeError, ValueError, OSError) as e:
        raise PoolRoundFailed(
            f"rank {spec.rank} could not join the pool's group at {spec.host}:{spec.port}: {e}"
        ) from e


def close_group() -> None:
    """Leave the process group, whatever state a failure left it in."""
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except (RuntimeError, ValueError) as e:  # a broken group still gets torn down
            log.debug("destroy_process_group: %s", e)


def nbytes(t: torch.Tensor) -> int:
    return int(t.numel() * t.element_size())


class Comm:
    """The transfers of one member in one round, counted and translated."""

    def __init__(self, meter: PhaseMeter, rank: int, world_size: int) -> None:
        self.meter = meter
        self.rank = rank
        self.world_size = world_size

    def _fail(self, what: str, e: BaseException) -> PoolRoundFailed:
        return PoolRoundFailed(f"rank {self.rank}: {what} failed: {e}")

    def send(self, tensors: Sequence[torch.Tensor], dst: int) -> None:
        self.meter.switch(EXCHANGE)
        try:
            works = [dist.isend(t.detach().contiguous(), dst) for t in tensors]
            for w in works:
                if w is not None:
                    w.wait()
        except RuntimeError as e:
            raise self._fail(f"send to rank {dst}", e) from e
        self.meter.sent(sum(nbytes(t) for t in tensors))

    def recv(self, shapes: Sequence[Sequence[int]], src: int) -> List[torch.Tensor]:
        self.meter.switch(EXCHANGE)
        out = [torch.empty(tuple(s)) for s in shapes]
        try:
            works = [dist.irecv(t, src) for t in out]
            for w in works:
                if w is not None:
                    w.wait()
        except RuntimeError as e:
            raise self._fail(f"receive from rank {src}", e) from e
        self.meter.received(sum(nbytes(t) for t in out))
        return out

    def all_reduce(self, t: torch.Tensor) -> None:
        """Sum ``t`` over the group, in place."""
        self.meter.switch(EXCHANGE)
        try:
            dist.all_reduce(t)
        except RuntimeError as e:
            raise self._fail("all-reduce", e) from e
        k = self.world_size
        moved = round(2.0 * (k - 1) / k * nbytes(t))
        self.meter.sent(moved)
        self.meter.received(moved)

    def flat_send(self, tensor: torch.Tensor, dst: int) -> None:
        self.send([tensor], dst)

    def flat_recv(self, numel: int, src: int) -> torch.Tensor:
        return self.recv([(numel,)], src)[0]

    def broadcast(self, t: torch.Tensor, src: int = 0) -> None:
        """``t`` from rank ``src`` to every rank, in place (counted as sent by the root to
        each other rank)."""
        self.meter.switch(EXCHANGE)
        try:
            dist.broadcast(t, src)
        except RuntimeError as e:
            raise self._fail("broadcast", e) from e
        if self.rank == src:
            self.meter.sent(nbytes(t) * (self.world_size - 1))
        else:
            self.meter.received(nbytes(t))
