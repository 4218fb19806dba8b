"""The user-space delay line's forwarding logic, on socket pairs instead of TUN devices."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Dict, List, Tuple

from coordinator.links.delayline import DelayLine, DelayLineSpec


def _pair() -> Tuple[socket.socket, socket.socket]:
    """(the kernel's side, the delay line's side) of one emulated TUN device."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def _read(sock: socket.socket, n: int) -> List[Tuple[int, float]]:
    """``n`` packets' sequence numbers with their arrival times (10 s hang guard)."""
    sock.settimeout(10.0)
    out = []
    while len(out) < n:
        data = sock.recv(2048)
        out.append((struct.unpack("!I", data[:4])[0], time.monotonic()))
    return out


def test_delay_without_reordering_and_loss_on_the_uplink_only() -> None:
    agent_kernel, agent_tun = _pair()
    hub_kernel, hub_tun = _pair()
    agent_tun.setblocking(False)
    hub_tun.setblocking(False)
    spec = DelayLineSpec("a", "ta", "h", "th", one_way_ms=30.0, jitter_ms=10.0, loss_pct=50.0,
                         seed=7, ready_path="", stats_path="")  # fmt: skip
    line = DelayLine(spec, agent_tun.fileno(), hub_tun.fileno())
    thread = threading.Thread(target=line.run, daemon=True)
    thread.start()
    sent: Dict[int, float] = {}
    try:
        for i in range(200):  # uplink: agent -> hub
            sent[i] = time.monotonic()
            agent_kernel.send(struct.pack("!I", i) + b"x" * 100)
        for i in range(1000, 1050):  # downlink: hub -> agent
            sent[i] = time.monotonic()
            hub_kernel.send(struct.pack("!I", i) + b"y" * 100)
        downlink = _read(agent_kernel, 50)
        end = time.monotonic() + 10.0
        while line.up.counts["forwarded"] + line.up.counts["dropped_loss"] < 200:
            assert time.monotonic() < end, line.stats()  # hang guard
            time.sleep(0.01)
        uplink = _read(hub_kernel, line.up.counts["forwarded"])
    finally:
        line.stopping = True
        thread.join(5.0)
        for s in (agent_kernel, agent_tun, hub_kernel, hub_tun):
            s.close()
    stats = line.stats()
    assert 60 <= stats["uplink"]["dropped_loss"] <= 140  # 50 % of 200 packets, seeded
    assert stats["downlink"] == {
        "forwarded": 50, "dropped_loss": 0, "dropped_queue": 0, "write_errors": 0
    }  # fmt: skip
    assert [n for n, _ in downlink] == list(range(1000, 1050))
    numbers = [n for n, _ in uplink]
    assert numbers == sorted(set(numbers))  # no reordering, no duplicates
    for n, at in uplink + downlink:  # every packet waited at least the delay minus the jitter
        assert at - sent[n] >= 0.020 - 1e-3


def test_a_closed_device_ends_the_loop() -> None:
    agent_kernel, agent_tun = _pair()
    hub_kernel, hub_tun = _pair()
    spec = DelayLineSpec("a", "ta", "h", "th", one_way_ms=1.0, jitter_ms=0.0, loss_pct=0.0,
                         seed=1, ready_path="", stats_path="")  # fmt: skip
    line = DelayLine(spec, agent_tun.fileno(), hub_tun.fileno())
    agent_kernel.close()  # the agent's side is gone: reads return end of file
    thread = threading.Thread(target=line.run, daemon=True)
    thread.start()
    thread.join(10.0)
    assert not thread.is_alive() and line.stopping
    for s in (agent_tun, hub_kernel, hub_tun):
        s.close()
