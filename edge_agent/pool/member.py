"""``greenfed-agent pool-member``: a board that lends itself to a leader's pool.

It measures its own power (its own sensor; on a shared host the per-process estimated model,
:mod:`.shared_host`), dials the leader's gate, proves its membership (mutual TLS with its
device certificate; docs/pools.md) and then does what the leader asks: answer pings, probe
its link, take its rank in a round. After a failed round it leaves the process group and
waits for the next; when the channel breaks it dials again with jittered backoff; when the
leader says ``bye`` it exits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional

import numpy as np

from edge_agent.calibration import load_or_calibrate
from edge_agent.client import Backoff
from edge_agent.sensing import CpuFreq, PowerMonitor, PowerSource, detect_power_source
from greenfed import __version__

from .capability import detect
from .comm import GroupSpec, close_group, open_group
from .config import MemberConfig
from .errors import MembershipRefused, PoolRoundFailed
from .gate import ChannelClosed, GateTls, dial, recv_msg, send_msg
from .leader import data_digest
from .links import probe_links, probe_outcome
from .meter import PhaseMeter
from .shared_host import ProcessShareSource
from .worker import RoundSpec, run_member_round

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0
POLL_S = 1.0  # how often a member waiting for the leader checks whether it was asked to stop


def member_source(cfg: MemberConfig) -> PowerSource:
    if cfg.shared_host:
        return ProcessShareSource.for_host(cfg.sensing, cfg.host_cores, cfg.sysfs_root)
    return detect_power_source(cfg.sensing, cfg.sysfs_root)


def available_memory_bytes(configured: float) -> float:
    if configured > 0:
        return configured
    import psutil

    return float(psutil.virtual_memory().available)


def gate_tls(cert: Any, key: Any, ca: Any) -> Optional[GateTls]:
    if cert is None and key is None and ca is None:
        return None
    if cert is None or key is None or ca is None:
        raise MembershipRefused("pool TLS needs all of cert, key and ca (PEM files)")
    return GateTls(cert, key, ca)


class PoolMember:
    """The member's loop (``run()`` returns its exit code)."""

    def __init__(self, cfg: MemberConfig, stop: Optional[threading.Event] = None) -> None:
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.capability = detect()
        self.source = member_source(cfg)
        self.cpu = CpuFreq(cfg.sysfs_root)
        self.tls = gate_tls(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)

    def _hello(self, images: np.ndarray) -> Dict[str, Any]:
        return {
            "type": "hello",
            "member_id": self.cfg.member_id,
            "version": __version__,
            "distributed_ok": self.capability.usable,
            "distributed_reason": self.capability.reason,
            "torch": self.capability.torch_version,
            "samples": len(images),
            "data_sha256": data_digest(images),
            "profile": self.profile.to_dict(),
            "memory_bytes": available_memory_bytes(self.cfg.memory_bytes),
            "power": {
                "source": self.source.name,
                "scope": self.source.scope,
                "estimated": self.source.estimated,
            },
        }

    def run(self) -> int:
        import torch

        from greenfed import ddpm

        if not self.capability.usable:
            log.error("this board cannot join a pool: %s", self.capability.reason)
            return 2
        torch.set_num_threads(self.cfg.num_threads)
        images = ddpm.load_data(self.cfg.data).images
        self.profile = load_or_calibrate(
            self.cfg.profile_path,
            "the member's profile",
            self.cfg.quick_calibration,
            self.source,
            self.cpu,
            self.cfg.sensing,
        )
        self.monitor = PowerMonitor(
            self.source, self.cpu, self.cfg.sensing, idle_power_w=self.profile.idle_power_w
        )
        self.monitor.start()
        backoff = Backoff(self.cfg.backoff_initial_s, self.cfg.backoff_max_s)
        try:
            while not self.stop.is_set():
                try:
                    sock = dial(
                        self.cfg.leader,
                        self.tls,
                        self.cfg.leader_id,
                        self._hello(images),
                        CONNECT_TIMEOUT_S,
                    )
                except (OSError, ChannelClosed, TimeoutError) as e:
                    delay = backoff.next_delay()
                    log.info(
                        "leader %s unreachable (%s); retrying in %.1f s", self.cfg.leader, e, delay
                    )
                    self.stop.wait(delay)
                    continue
                backoff.reset()
                log.info("joined the pool of %s as %s", self.cfg.leader, self.cfg.member_id)
                try:
                    if self._serve(sock, images) and self.cfg.exit_when_finished:
                        return 0
                finally:
                    sock.close()
            return 0
        except MembershipRefused as e:
            log.error("%s", e)
            return 2
        finally:
            self.monitor.stop()
            self.cpu.restore()

    def _serve(self, sock: Any, images: np.ndarray) -> bool:
        """Answer the leader until ``bye`` (True) or the channel breaks (False)."""
        while not self.stop.is_set():
            try:
                msg = recv_msg(sock, POLL_S)
            except TimeoutError:
                continue
            except ChannelClosed as e:
                log.warning("lost the leader (%s); dialling again", e)
                return False
            kind = msg["type"]
            try:
                if kind == "ping":
                    send_msg(sock, {"type": "pong"})
                elif kind == "bye":
                    log.info("the leader closed the pool")
                    return True
                elif kind in ("round", "probe"):
                    send_msg(sock, self._work(msg, images))
                else:
                    log.warning("unknown message %r from the leader: ignored", kind)
            except ChannelClosed as e:
                log.warning("lost the leader (%s); dialling again", e)
                return False
        return False

    def _work(self, msg: Dict[str, Any], images: np.ndarray) -> Dict[str, Any]:
        g = msg["group"]
        group = GroupSpec(
            str(g["host"]),
            int(g["port"]),
            int(g["rank"]),
            int(g["world_size"]),
            float(g["timeout_s"]),
            self.cfg.interface,
        )
        meter = PhaseMeter(self.monitor)
        try:
            open_group(group)
            if msg["type"] == "probe":
                count = int(msg.get("count", 1))
                probe_links(group.rank, group.world_size, meter, int(msg["bytes"]), count)
                outcome = probe_outcome(self.cfg.member_id, group.rank, meter)
                return {"type": "result", "outcome": outcome.to_dict()}
            spec = RoundSpec.from_dict(msg["spec"])
            log.info(
                "round %s: %s as rank %d of %d",
                spec.round_id,
                spec.kind,
                group.rank,
                group.world_size,
            )
            outcome, _ = run_member_round(spec, group.rank, images, meter, None, self.cpu)
            log.info(
                "round %s: %s, rank %d, %d steps, %d B sent",
                spec.round_id,
                spec.kind,
                group.rank,
                outcome.steps,
                outcome.bytes_sent,
            )
            return {"type": "result", "outcome": outcome.to_dict()}
        except PoolRoundFailed as e:
            log.warning("%s", e)
            return {"type": "failed", "reason": str(e)[:2000]}
        finally:
            close_group()
