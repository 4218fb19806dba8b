"""The kernel boundary of the link testbed: ``ip`` and ``tc`` commands, namespaces, setns.

Everything the testbed asks of the kernel goes through :func:`run`, which raises
:class:`~coordinator.links.errors.KernelCommandError` with the command and its stderr. Names:
every run picks a random prefix ``gf`` + 6 hex digits; its namespaces are ``<prefix>-hub``
(the coordinator) and ``<prefix>-d<i>`` (device i), and interfaces inside them start with the
prefix too, so a leftover is always recognisable (:data:`NS_PATTERN`) and never clashes with
another run's.

:func:`probe` says what this machine can do: root, iproute2, TUN devices, and whether the
kernel has ``sch_netem`` (delay and loss in the kernel; without it the testbed adds delay and
loss with its own user-space delay line, see delayline.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import secrets
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Iterator, List, Sequence

from coordinator.links.errors import KernelCommandError, LinkError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
NS_PATTERN = re.compile(r"^(gf[0-9a-f]{6})-(hub|d\d+|probe)$")
COMMAND_TIMEOUT_S = 30.0

_setns_lock = threading.Lock()


def new_prefix() -> str:
    """A fresh run prefix: ``gf`` + 6 random hex digits (8 characters)."""
    return "gf" + secrets.token_hex(3)


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run one command; a failure raises KernelCommandError naming the command and stderr."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KernelCommandError(list(argv), -1, str(e)) from e
    if check and proc.returncode != 0:
        raise KernelCommandError(list(argv), proc.returncode, proc.stderr)
    return proc


def ip(*args: str, ns: str = "") -> subprocess.CompletedProcess:
    return run(["ip", *(("-n", ns) if ns else ()), *args])


def tc(*args: str, ns: str = "") -> subprocess.CompletedProcess:
    return run(["tc", *(("-n", ns) if ns else ()), *args])


def exec_prefix(ns: str) -> List[str]:
    """argv prefix that runs a command inside namespace ``ns``: its network namespace only.

    ``nsenter --net`` where util-linux has it: ``ip netns exec`` also remounts ``/sys`` for the
    namespace, which hides the cgroup hierarchies under ``/sys/fs/cgroup`` that an emulated
    board's agent reads and writes (coordinator/boards); ``ip netns exec`` otherwise.
    """
    if shutil.which("nsenter") is not None:
        return ["nsenter", f"--net={NETNS_DIR}/{ns}", "--"]
    return ["ip", "netns", "exec", ns]


def netns_list() -> List[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    if shutil.which("ip") is None:
        return []
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_add(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def netns_pids(name: str) -> List[int]:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def netns_delete(name: str) -> None:
    """Delete a namespace (its interfaces and qdiscs go with it); missing is fine."""
    proc = run(["ip", "netns", "delete", name], check=False)
    if proc.returncode != 0 and name in netns_list():
        raise KernelCommandError(["ip", "netns", "delete", name], proc.returncode, proc.stderr)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block with this thread in namespace ``name``; sockets made inside stay there.

    Only the calling thread moves (setns(2)); a lock keeps two threads from interleaving.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    with _setns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
            try:
                if libc.setns(target, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise LinkError(f"setns into {name}: {os.strerror(err)}")
            finally:
                os.close(target)
            try:
                yield
            finally:
                if libc.setns(home, CLONE_NEWNET) != 0:  # pragma: no cover - cannot fail as root
                    raise LinkError("setns back to the original namespace failed")
        finally:
            os.close(home)


@dataclass(frozen=True)
class Capabilities:
    """What this machine offers the testbed; ``reasons`` explain every missing piece."""

    root: bool
    iproute2: bool
    netns: bool
    tun: bool
    netem: bool
    reasons: List[str] = field(default_factory=list)

    @property
    def shaped(self) -> bool:
        """Kernel-shaped links are possible (rate by tc; delay/loss by netem or the delay line)."""
        return self.root and self.iproute2 and self.netns and self.tun

    def summary(self) -> str:
        if not self.shaped:
            return "shaped links unavailable: " + "; ".join(self.reasons)
        how = "netem" if self.netem else "the user-space delay line (no sch_netem)"
        return f"shaped links available: rate by tc htb, delay and loss by {how}"


@functools.lru_cache(maxsize=1)
def probe() -> Capabilities:
    """Probe once per process (a scratch namespace tells whether netem exists)."""
    reasons: List[str] = []
    root = os.geteuid() == 0
    if not root:
        reasons.append("not running as root (network namespaces and tc need it)")
    have_ip = shutil.which("ip") is not None and shutil.which("tc") is not None
    if not have_ip:
        reasons.append("iproute2 (ip, tc) is not installed: apt-get install iproute2")
    tun = os.path.exists("/dev/net/tun")
    if not tun:
        reasons.append("/dev/net/tun is missing (no TUN devices)")
    netns, netem = False, False
    if root and have_ip:
        netns, netem = _probe_netns(reasons)
    return Capabilities(root, have_ip, netns, tun, netem, reasons)


def _probe_netns(reasons: List[str]) -> tuple:
    """(namespaces and veths work, netem works), tried in a scratch namespace."""
    ns = new_prefix() + "-probe"
    try:
        netns_add(ns)
        ip("link", "add", "p0", "type", "veth", "peer", "name", "p1", ns=ns)
    except LinkError as e:
        reasons.append(f"cannot create a network namespace with a veth pair: {e}")
        with contextlib.suppress(LinkError):
            netns_delete(ns)
        return False, False
    try:
        ok = run(["tc", "-n", ns, "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms"],
                 check=False)  # fmt: skip
        if ok.returncode != 0:
            reasons.append(f"the kernel has no sch_netem ({ok.stderr.strip()})")
        return True, ok.returncode == 0
    finally:
        with contextlib.suppress(LinkError):
            netns_delete(ns)
