"""A user-space delay line: delay, jitter and loss on real packets where the kernel lacks netem.

Some kernels are built without ``sch_netem`` (this project's CI machine is one). There the
testbed joins a device's namespace to the coordinator's by a pair of TUN devices instead of a
veth pair, and this process moves every IP packet between them: it holds each packet for half
the round-trip time (plus a uniform jitter, without reordering), drops uplink packets with the
configured probability, and writes them out on the other side. The rate is still the kernel's:
``tc htb`` on the device's TUN paces what reaches this process. The design is Mahimahi's
(TUN devices and a user-space shell per link); TCP on both ends is the kernel's, so slow start,
retransmissions and timeouts are real.

Run by the testbed as ``python -m coordinator.links.delayline SPEC.json`` inside the run's hub
namespace (so a cleanup that empties the run's namespaces also ends it). It asks for a
real-time scheduling priority (:func:`raise_priority`: it stands in for the kernel's netem,
and a busy machine would otherwise add its scheduling delays to every packet's). It writes
``spec.ready_path`` once both TUN devices are open, and on SIGTERM or SIGINT writes its
counters to ``spec.stats_path`` and exits 0.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Tuple

from coordinator.links.kernel import in_netns

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536
IDLE_WAKE_S = 0.2  # how often an idle loop checks for a stop request
MAX_QUEUED = 20_000  # packets held per direction before new ones are dropped (counted)


@dataclass(frozen=True)
class DelayLineSpec:
    agent_ns: str
    agent_dev: str
    hub_ns: str
    hub_dev: str
    one_way_ms: float  # added each way (half the round-trip time)
    jitter_ms: float  # uniform in [-jitter, +jitter] per packet, each way
    loss_pct: float  # uplink (agent -> hub) packets dropped, percent
    seed: int
    ready_path: str
    stats_path: str

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DelayLineSpec:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


RT_PRIORITY = 10  # SCHED_FIFO priority: above every normal process, far below kernel threads


def raise_priority() -> str:
    """SCHED_FIFO at :data:`RT_PRIORITY`, else nice -10, else as is; says which it got.

    The loop sleeps in select() between packets, so it holds a CPU only while it moves them.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        return f"SCHED_FIFO {RT_PRIORITY}"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        return "nice -10"
    except OSError:
        return "normal priority"


def open_tun(ns: str, name: str) -> int:
    """Attach to the existing TUN device ``name`` in namespace ``ns`` (non-blocking fd)."""
    with in_netns(ns):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError:
            os.close(fd)
            raise
    return fd


class Direction:
    """Packets of one direction waiting for their release time (FIFO: no reordering)."""

    def __init__(self, name: str, src: int, dst: int, loss: float) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.loss = loss
        self.queue: Deque[Tuple[float, bytes]] = collections.deque()
        self.last_release = 0.0
        self.counts = {"forwarded": 0, "dropped_loss": 0, "dropped_queue": 0, "write_errors": 0}


class DelayLine:
    def __init__(self, spec: DelayLineSpec, agent_fd: int, hub_fd: int) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.up = Direction("uplink", agent_fd, hub_fd, spec.loss_pct / 100.0)
        self.down = Direction("downlink", hub_fd, agent_fd, 0.0)
        self.stopping = False

    def _delay_s(self) -> float:
        jitter = self.spec.jitter_ms
        extra = self.rng.uniform(-jitter, jitter) if jitter else 0.0
        return max(0.0, self.spec.one_way_ms + extra) / 1000.0

    def _read(self, d: Direction, now: float) -> None:
        while True:
            try:
                packet = os.read(d.src, MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:  # the device went away: the run is being torn down
                self.stopping = True
                return
            if not packet:  # end of file: no device behind the descriptor any more
                self.stopping = True
                return
            if d.loss and self.rng.random() < d.loss:
                d.counts["dropped_loss"] += 1
                continue
            if len(d.queue) >= MAX_QUEUED:
                d.counts["dropped_queue"] += 1
                continue
            release = max(now + self._delay_s(), d.last_release)
            d.last_release = release
            d.queue.append((release, packet))

    def _release(self, d: Direction, now: float) -> None:
        while d.queue and d.queue[0][0] <= now:
            _, packet = d.queue.popleft()
            try:
                os.write(d.dst, packet)
                d.counts["forwarded"] += 1
            except OSError:
                d.counts["write_errors"] += 1

    def run(self) -> None:
        by_fd = {self.up.src: self.up, self.down.src: self.down}
        while not self.stopping:
            now = time.monotonic()
            due = [d.queue[0][0] for d in (self.up, self.down) if d.queue]
            timeout = min([IDLE_WAKE_S, *(max(0.0, t - now) for t in due)])
            try:
                readable, _, _ = select.select(list(by_fd), [], [], timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            now = time.monotonic()
            for fd in readable:
                self._read(by_fd[fd], now)
            now = time.monotonic()
            self._release(self.up, now)
            self._release(self.down, now)

    def stats(self) -> Dict[str, Any]:
        return {"uplink": dict(self.up.counts), "downlink": dict(self.down.counts)}


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m coordinator.links.delayline SPEC.json", file=sys.stderr)
        return 2
    spec = DelayLineSpec.load(Path(args[0]))
    agent_fd = open_tun(spec.agent_ns, spec.agent_dev)
    hub_fd = open_tun(spec.hub_ns, spec.hub_dev)
    line = DelayLine(spec, agent_fd, hub_fd)

    def stop(signum: int, frame: Any) -> None:
        line.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"delay line {spec.agent_dev} <-> {spec.hub_dev}: {raise_priority()}", flush=True)
    Path(spec.ready_path).write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        line.run()
    finally:
        tmp = Path(spec.stats_path + ".tmp")
        tmp.write_text(json.dumps(line.stats()) + "\n", encoding="utf-8")
        tmp.replace(spec.stats_path)
        os.close(agent_fd)
        os.close(hub_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
