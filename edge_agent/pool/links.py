"""The pool's links, measured: rate, latency and energy per byte and per message.

Two probes over the round's process group, the leader trading with each member in turn:
one round trip of :data:`PROBE_BYTES` (the bytes), then :data:`PROBE_MESSAGES` round trips of
one float (the messages). With ``t_b``, ``t_s`` the round-trip times and ``E_b``, ``E_s`` a
member's dynamic energy per round trip in its "exchange" window::

    latency = t_s / 2                  rate = 2 X / (t_b - t_s)
    energy per message = E_s / 2       energy per byte = (E_b - E_s) / (2 X)

(a round trip is one send and one receive on each side). A pipeline moves many small tensors
per step, so on a CPU its exchange costs more per message than per byte; the planner charges
both. The leader's own figures come from its windows over all the members' trips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict

import torch

from .comm import Comm
from .meter import PhaseMeter
from .worker import MemberOutcome

PROBE_BYTES = 4 * 1024 * 1024
PROBE_MESSAGES = 50
#: For a member whose link was not probed: 100 Mbit/s and a radio's ~1 W (assumed).
DEFAULT_LINK_BYTES_PER_S = 12.5e6
DEFAULT_LINK_ENERGY_PER_BYTE_J = 1.0 / 12.5e6
DEFAULT_LATENCY_S = 1e-3


@dataclass
class Link:
    """A member's link: rate (bytes/s), latency per message (s) and dynamic energy per byte
    and per message moved (J); ``measured`` False: the assumed defaults above."""

    bytes_per_s: float = DEFAULT_LINK_BYTES_PER_S
    energy_per_byte_j: float = DEFAULT_LINK_ENERGY_PER_BYTE_J
    measured: bool = False
    latency_s: float = DEFAULT_LATENCY_S
    energy_per_message_j: float = 0.0


def probe_links(
    rank: int,
    world_size: int,
    meter: PhaseMeter,
    nbytes: int,
    count: int,
    clock: Callable[[], float] = time.monotonic,
) -> Dict[int, float]:
    """``count`` round trips of ``nbytes`` between the leader and each member in turn. Rank 0
    returns each member's seconds (its own clock); every rank's meter holds its exchange
    window and bytes."""
    comm = Comm(meter, rank, world_size)
    numel = max(1, nbytes // 4)
    seconds: Dict[int, float] = {}
    if rank == 0:
        buf = torch.zeros(numel)
        for r in range(1, world_size):
            t0 = clock()
            for _ in range(count):
                comm.flat_send(buf, r)
                comm.flat_recv(numel, r)
            seconds[r] = clock() - t0
    else:
        for _ in range(count):
            comm.flat_send(comm.flat_recv(numel, 0), 0)
    meter.stop()
    return seconds


def probe_outcome(member_id: str, rank: int, meter: PhaseMeter) -> MemberOutcome:
    """A member's figures of a link probe (no training)."""
    return MemberOutcome(
        member_id=member_id,
        rank=rank,
        windows=[w.to_dict() for w in meter.windows()],
        seconds=dict(meter.seconds),
        bytes_sent=meter.bytes_sent,
        bytes_received=meter.bytes_received,
        steps=0,
        samples=0,
        units=(0, 0),
        freq_hz=0.0,
        cpu_seconds=dict(meter.cpu_seconds),
    )


def fit(
    t_bulk: float, t_small: float, e_bulk: float, e_small: float, nbytes: int, count: int,
    trips: int = 1,
) -> Link:  # fmt: skip
    """A link from one bulk round trip and ``count`` small ones (each side's figures for
    ``trips`` members' worth of them)."""
    per_small_t = t_small / (count * trips)
    per_bulk_t = t_bulk / trips
    per_small_e = e_small / (count * trips)
    per_bulk_e = e_bulk / trips
    moved = 2.0 * nbytes
    return Link(
        bytes_per_s=moved / max(per_bulk_t - per_small_t, 1e-9),
        energy_per_byte_j=max(per_bulk_e - per_small_e, 0.0) / moved,
        measured=True,
        latency_s=per_small_t / 2,
        energy_per_message_j=max(per_small_e, 0.0) / 2,
    )
