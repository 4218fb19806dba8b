"""Kernel-shaped links: every agent in its own network namespace, its uplink shaped by tc.

Topology of one run (prefix ``gfXXXXXX``, see kernel.py)::

    namespace gfXXXXXX-hub                          namespace gfXXXXXX-d1 (agent board-1)
      coordinator on 0.0.0.0:PORT                     agent dials 10.88.1.1:PORT
      gfXXXXXXh1  10.88.1.1  <------ pair ------>     gfXXXXXXu1  10.88.1.2
                                                        egress: tc htb (the uplink rate)
                                                        [+ netem: delay, jitter, loss]

The pair is a **veth** pair when the profile asks only for a rate, or for delay/loss and the
kernel has ``sch_netem`` (netem on the device side's egress: half the RTT, the jitter and the
loss; netem on the hub side: the other half of the RTT). On kernels without netem a profile with
delay or loss gets a **TUN** pair joined by the user-space delay line (delayline.py); the rate
is still tc htb on the device side. Records say ``shaped link (netns/tc)`` either way; the
detail (``veth``, ``veth+netem``, ``tun+delay-line``) is in ``<run>/links/links.json``.

The hub namespace has no interface but these pairs and its loopback: nothing outside the run
can reach the coordinator there, which is why it may listen without TLS
(``tls.insecure = true``, docs/security.md).

Traces: :meth:`ShapedLinks.start_traces` starts a :class:`~coordinator.links.replay.TraceReplayer`
that runs ``tc class change`` at each step and appends ``time_unix,mbps`` to
``<run>/links/<device>.rates.csv``; the agent reads that log to report the rate it had.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from coordinator.links import kernel
from coordinator.links.base import SHAPED, AgentLink, LinkSet
from coordinator.links.delayline import DelayLineSpec
from coordinator.links.errors import DelayLineError, LinkError, ShapingUnavailable
from coordinator.links.profile import LinkProfile
from coordinator.links.registry import RunRecord, remove_namespaces
from coordinator.links.replay import TraceReplayer
from greenfed.linktrace import RateSchedule, Trace, format_steps

log = logging.getLogger(__name__)

IMPAIR_CHOICES = ("auto", "netem", "delay-line")
MAX_LINKS = 1000
HTB_QUANTUM = 1514  # bytes: one full Ethernet frame (silences htb's quantum warning)
NETEM_LIMIT = 10_000  # packets netem may hold (its default 1000 is short for delay x rate)
DELAY_LINE_READY_S = 15.0
TCP_KEYS = ("ActiveOpens", "InSegs", "OutSegs", "RetransSegs", "EstabResets", "OutRsts")


def addresses(index: int) -> tuple:
    """(hub address, device address) of link ``index`` (1-based): 10.88.1.1 / 10.88.1.2."""
    if not 1 <= index <= MAX_LINKS:
        raise LinkError(f"a run can hold at most {MAX_LINKS} shaped links")
    a, b = 88 + (index - 1) // 250, (index - 1) % 250 + 1
    return f"10.{a}.{b}.1", f"10.{a}.{b}.2"


def kbit(mbps: float) -> str:
    return f"{max(1, round(mbps * 1000))}kbit"


def netem_args(half_rtt_ms: float, jitter_ms: float, loss_pct: float) -> List[str]:
    args = ["netem", "limit", str(NETEM_LIMIT)]
    if half_rtt_ms or jitter_ms:
        args += ["delay", f"{half_rtt_ms:g}ms"] + ([f"{jitter_ms:g}ms"] if jitter_ms else [])
    if loss_pct:
        args += ["loss", f"{loss_pct:g}%"]
    return args


@dataclass
class _Link:
    index: int
    device_id: str
    profile: LinkProfile
    ns: str
    dev: str  # device-side interface (its egress is the uplink)
    hub_dev: str
    hub_ip: str
    dev_ip: str
    topology: str  # "veth", "veth+netem" or "tun+delay-line"
    trace: Optional[Trace] = None
    rate_log: Optional[Path] = None
    delay_line: Optional[subprocess.Popen] = None
    stats_path: Optional[Path] = None
    rate_mbps: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)


class ShapedLinks(LinkSet):
    """The netns/tc backend. Raises ShapingUnavailable where the kernel or rights are missing."""

    kind = SHAPED

    def __init__(self, run_dir: Path, impair: str = "auto", seed: int = 0) -> None:
        super().__init__()
        if impair not in IMPAIR_CHOICES:
            raise LinkError(f"impair must be one of {', '.join(IMPAIR_CHOICES)}")
        caps = kernel.probe()
        if not caps.shaped:
            raise ShapingUnavailable("; ".join(caps.reasons))
        if impair == "netem" and not caps.netem:
            raise ShapingUnavailable("netem was asked for but " + "; ".join(caps.reasons))
        self.use_netem = caps.netem and impair != "delay-line"
        self.seed = seed
        self.prefix = kernel.new_prefix()
        self.dir = Path(run_dir) / "links"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hub = f"{self.prefix}-hub"
        self._links: Dict[str, _Link] = {}
        self._started = False
        self._closed = False
        self.replayer = TraceReplayer(self._apply_step)
        self.record = RunRecord.create(self.prefix, str(run_dir))
        try:
            self._add_namespace(self.hub)
        except BaseException:
            self.close()
            raise
        log.info("shaped links: run %s, coordinator namespace %s", self.prefix, self.hub)

    # ------------------------------------------------------------------ coordinator side
    def coordinator_argv_prefix(self) -> List[str]:
        return kernel.exec_prefix(self.hub)

    def coordinator_values(self) -> Dict[str, Any]:
        # The hub namespace is private to this run (module docstring): listen on all of its
        # addresses, which are the hub ends of the device pairs and its loopback, without TLS.
        return {"listen": "0.0.0.0:0", "tls": {"insecure": True}}

    def namespace_of(self, device_id: str) -> str:
        return self._links[device_id].ns

    def hub_address(self, device_id: str) -> str:
        return self._links[device_id].hub_ip

    # ------------------------------------------------------------------ building links
    def _add_namespace(self, name: str) -> None:
        self.record.namespaces.append(name)
        self.record.save()  # recorded before it exists: a kill in between leaves no orphan
        kernel.netns_add(name)

    def attach(self, device_id: str, profile: LinkProfile) -> AgentLink:
        if self._closed:
            raise LinkError("these links are closed")
        if device_id in self._links:
            raise LinkError(f"{device_id} already has a link in this run")
        index = len(self._links) + 1
        hub_ip, dev_ip = addresses(index)
        if not profile.impaired:
            topology = "veth"
        else:
            topology = "veth+netem" if self.use_netem else "tun+delay-line"
        link = _Link(
            index, device_id, profile, f"{self.prefix}-d{index}", f"{self.prefix}u{index}",
            f"{self.prefix}h{index}", hub_ip, dev_ip, topology, trace=profile.load_trace(),
        )  # fmt: skip
        self._links[device_id] = link
        self._add_namespace(link.ns)
        if topology.startswith("veth"):
            self._veth(link)
        else:
            self._tun(link)
        link.rate_mbps = self._initial_rate(link)
        self._shape(link)
        if link.trace is not None:
            link.rate_log = self.dir / f"{device_id}.rates.csv"
            link.rate_log.write_text(format_steps([(time.time(), link.rate_mbps)], "time_unix"))
            if self._started:
                self.replayer.add(device_id, self._schedule(link))
        if topology == "tun+delay-line":
            self._start_delay_line(link)
        agent = AgentLink(
            device_id,
            SHAPED,
            profile,
            hub_ip,
            argv_prefix=kernel.exec_prefix(link.ns),
            detail=f"{topology}, namespace {link.ns}",
        )
        extra: Dict[str, Any] = {"rate_mbps": link.rate_mbps}
        if link.rate_log is not None:
            extra["rate_log"] = str(link.rate_log)
        agent.agent_values = {"link": self.agent_link_table(agent, extra)}
        self.links[device_id] = agent
        log.info("%s: %s, %s (%s)", device_id, agent.label, profile.describe(), topology)
        return agent

    def _veth(self, link: _Link) -> None:
        kernel.ip("link", "add", link.dev, "netns", link.ns, "type", "veth",
                  "peer", "name", link.hub_dev, "netns", self.hub)  # fmt: skip
        kernel.ip("addr", "add", f"{link.dev_ip}/30", "dev", link.dev, ns=link.ns)
        kernel.ip("addr", "add", f"{link.hub_ip}/30", "dev", link.hub_dev, ns=self.hub)
        kernel.ip("link", "set", link.dev, "up", ns=link.ns)
        kernel.ip("link", "set", link.hub_dev, "up", ns=self.hub)

    def _tun(self, link: _Link) -> None:
        for ns, dev, mine, peer in (
            (link.ns, link.dev, link.dev_ip, link.hub_ip),
            (self.hub, link.hub_dev, link.hub_ip, link.dev_ip),
        ):
            kernel.ip("tuntap", "add", "dev", dev, "mode", "tun", ns=ns)
            kernel.ip("addr", "add", mine, "peer", peer, "dev", dev, ns=ns)
            kernel.ip("link", "set", dev, "up", ns=ns)

    def _shape(self, link: _Link) -> None:
        p = link.profile
        # A GSO super-packet (up to 64 KB) passes htb whole, on credit, so a short upload
        # crossed a 20 Mbit/s link at up to 25.6 Mbit/s (122 kB; bulk transfers average it
        # out). One segment per packet makes the shaper meter every packet as the wire sees it.
        kernel.ip("link", "set", "dev", link.dev, "gso_max_segs", "1", ns=link.ns)
        kernel.tc("qdisc", "add", "dev", link.dev, "root", "handle", "1:", "htb", "default", "1",
                  ns=link.ns)  # fmt: skip
        kernel.tc("class", "add", "dev", link.dev, *self._class_args(link.rate_mbps), ns=link.ns)
        if link.topology == "veth+netem":
            half = p.rtt_ms / 2.0
            kernel.tc("qdisc", "add", "dev", link.dev, "parent", "1:1", "handle", "10:",
                      *netem_args(half, p.jitter_ms, p.loss_pct), ns=link.ns)  # fmt: skip
            if half or p.jitter_ms:
                kernel.tc("qdisc", "add", "dev", link.hub_dev, "root", "handle", "1:",
                          *netem_args(half, p.jitter_ms, 0.0), ns=self.hub)  # fmt: skip

    @staticmethod
    def _class_args(mbps: float) -> List[str]:
        rate = kbit(mbps)
        return ["parent", "1:", "classid", "1:1", "htb", "rate", rate, "ceil", rate,
                "quantum", str(HTB_QUANTUM)]  # fmt: skip

    def _start_delay_line(self, link: _Link) -> None:
        p = link.profile
        ready = self.dir / f"delayline-{link.index}.ready"
        link.stats_path = self.dir / f"delayline-{link.index}.stats.json"
        spec = DelayLineSpec(
            agent_ns=link.ns, agent_dev=link.dev, hub_ns=self.hub, hub_dev=link.hub_dev,
            one_way_ms=p.rtt_ms / 2.0, jitter_ms=p.jitter_ms, loss_pct=p.loss_pct,
            seed=random.Random(f"{self.seed}:{link.device_id}").randrange(2**31),
            ready_path=str(ready), stats_path=str(link.stats_path),
        )  # fmt: skip
        spec_path = self.dir / f"delayline-{link.index}.json"
        spec.save(spec_path)
        log_path = self.dir / f"delayline-{link.index}.log"
        with open(log_path, "ab") as out:
            link.delay_line = subprocess.Popen(
                [*kernel.exec_prefix(self.hub), sys.executable, "-m",
                 "coordinator.links.delayline", str(spec_path)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        end = time.monotonic() + DELAY_LINE_READY_S
        while not ready.exists():
            if link.delay_line.poll() is not None or time.monotonic() > end:
                tail = log_path.read_text(errors="replace")[-800:]
                raise DelayLineError(f"the delay line of {link.device_id} did not start: {tail}")
            time.sleep(0.05)

    # ------------------------------------------------------------------ rates and traces
    def _schedule(self, link: _Link) -> RateSchedule:
        assert link.trace is not None
        return link.trace.schedule(self.t0_unix, link.profile.trace_offset_s)

    def _initial_rate(self, link: _Link) -> float:
        if link.trace is None:
            assert link.profile.rate_mbps is not None
            return link.profile.rate_mbps
        if self._started:
            return self._schedule(link).rate_at(time.time())
        return link.trace.schedule(0.0, link.profile.trace_offset_s).mbps[0]

    def set_rate(self, device_id: str, mbps: float) -> None:
        """Change a link's uplink rate now (``tc class change``), and log it if traced."""
        link = self._links[device_id]
        kernel.tc("class", "change", "dev", link.dev, *self._class_args(mbps), ns=link.ns)
        link.rate_mbps = mbps
        if link.rate_log is not None:
            with open(link.rate_log, "a", encoding="utf-8") as f:
                f.write(f"{time.time():.3f},{mbps:.4g}\n")

    def _apply_step(self, device_id: str, mbps: float) -> None:
        if not self._closed:
            self.set_rate(device_id, mbps)

    def start_traces(self) -> None:
        """Time 0 of every trace is now; links attached later join at their trace's position."""
        if self._started:
            return
        self._started = True
        self.t0_unix = time.time()
        for link in self._links.values():
            if link.trace is not None:
                schedule = self._schedule(link)
                if schedule.mbps[0] != link.rate_mbps:
                    self.set_rate(link.device_id, schedule.mbps[0])
                self.replayer.add(link.device_id, schedule)
        self.replayer.start()

    # ------------------------------------------------------------------ tear-down
    def close(self) -> None:
        """Stop the replay and the delay lines, delete the namespaces and the run's record."""
        if self._closed:
            return
        self._closed = True
        self.replayer.stop()
        summary = self._summary()
        for link in self._links.values():
            if link.delay_line is not None and link.delay_line.poll() is None:
                link.delay_line.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    link.delay_line.wait(timeout=5.0)
                if link.delay_line.poll() is None:
                    link.delay_line.kill()
                    link.delay_line.wait()
            if link.stats_path is not None and link.stats_path.is_file():
                with contextlib.suppress(OSError, ValueError):
                    summary[link.device_id]["delay_line"] = json.loads(link.stats_path.read_text())
        with contextlib.suppress(OSError):
            (self.dir / "links.json").write_text(json.dumps(summary, indent=1) + "\n")
        remove_namespaces(self.record.namespaces)
        self.record.remove()
        log.info("shaped links of run %s removed", self.prefix)

    def _summary(self) -> Dict[str, Any]:
        """Per device: profile, topology, the kernel's TCP counters in its namespace."""
        out: Dict[str, Any] = {}
        for link in self._links.values():
            out[link.device_id] = {
                "profile": link.profile.to_json(),
                "topology": link.topology,
                "namespace": link.ns,
                "tcp": {k: v for k, v in tcp_counters(link.ns).items() if k in TCP_KEYS},
                "rate_log": str(link.rate_log) if link.rate_log else None,
            }
        return out


def tcp_counters(ns: str) -> Dict[str, int]:
    """The kernel's TCP counters (``Tcp:`` of /proc/net/snmp) inside namespace ``ns``."""
    proc = kernel.run([*kernel.exec_prefix(ns), "cat", "/proc/net/snmp"], check=False)
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith("Tcp:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:]) if v.lstrip("-").isdigit()}


def shaped_or_emulated(run_dir: Path, backend: str = "auto", impair: str = "auto") -> LinkSet:
    """The link set for a local run: ``shaped`` (or fail), ``emulated``, or ``auto``.

    ``auto`` gives shaped links where the machine allows them and emulated ones otherwise,
    logging why (the records say which they got).
    """
    from coordinator.links.emulated import EmulatedLinks

    if backend == "emulated":
        return EmulatedLinks()
    if backend not in ("auto", "shaped"):
        raise LinkError(f"link backend must be auto, shaped or emulated, not {backend!r}")
    try:
        return ShapedLinks(run_dir, impair=impair)
    except ShapingUnavailable as e:
        if backend == "shaped":
            raise
        log.warning("%s; falling back to emulated links (in-process token bucket)", e)
        return EmulatedLinks(e.reason)
