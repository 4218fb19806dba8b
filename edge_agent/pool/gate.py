"""The pool's control channel: members dial the leader's gate and prove who they are.

Membership is proven the way the coordinator checks devices (docs/security.md): by mutual
TLS with certificates from the fleet's CA. A member presents its device certificate (its
common name is its member id); the leader accepts it only if the CA signed it, its id is in
the pool's ``members`` list and not in ``revoked``. The member checks in turn that the
leader's certificate is the CA's and names the expected leader id (a leader certificate also
carries serverAuth: ``scripts/make-certs --pool-leader ID --name ADDRESS``). Without TLS the
gate is for one machine only: it refuses to listen on a non-loopback address unless
``insecure`` is set, and then a member's id is what it claims.

The channel carries small JSON messages, each framed by a 4-byte big-endian length (at most
:data:`MAX_FRAME` bytes): ``hello``/``welcome``/``refused`` when a member joins, then
``ping``/``pong``, ``round`` (the round's spec and where its process group meets) and
``result``/``failed``, and ``bye``. Tensors never travel here: they go over the round's
process group, whose port the gate tells only to members that passed this check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .errors import MembershipRefused, PoolConfigError

log = logging.getLogger(__name__)

MAX_FRAME = 4 * 1024 * 1024
HELLO_TIMEOUT_S = 30.0
_LEN = struct.Struct(">I")


class ChannelClosed(Exception):
    """The other side closed the channel or it failed (not an error of the protocol)."""


def send_msg(sock: socket.socket, msg: Dict[str, Any]) -> None:
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME:
        raise ValueError(f"message of {len(data)} B exceeds the frame limit {MAX_FRAME} B")
    try:
        sock.sendall(_LEN.pack(len(data)) + data)
    except OSError as e:
        raise ChannelClosed(f"send failed: {e}") from e


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout as e:
            raise TimeoutError("no message in time") from e
        except OSError as e:
            raise ChannelClosed(f"receive failed: {e}") from e
        if not chunk:
            raise ChannelClosed("closed by the other side")
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket, timeout_s: Optional[float]) -> Dict[str, Any]:
    """The next message; ``TimeoutError`` after ``timeout_s`` (None: wait for ever)."""
    sock.settimeout(timeout_s)
    (size,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if size > MAX_FRAME:
        raise ChannelClosed(f"frame of {size} B exceeds the limit {MAX_FRAME} B")
    try:
        msg = json.loads(_recv_exact(sock, size))
    except ValueError as e:
        raise ChannelClosed(f"not a JSON message: {e}") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ChannelClosed("a message must be a JSON object with a 'type'")
    return msg


@dataclass(frozen=True)
class GateTls:
    """PEM files: this side's certificate and key, the fleet CA."""

    cert: Path
    key: Path
    ca: Path

    def context(self, server: bool) -> ssl.SSLContext:
        purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
        try:
            ctx = ssl.create_default_context(purpose, cafile=str(self.ca))
            ctx.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as e:
            raise PoolConfigError(
                f"pool TLS: cannot load {self.cert}, {self.key}, {self.ca}: {e}"
            ) from e
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = False  # the peer is checked by its certificate's common name
        return ctx


def peer_common_name(sock: socket.socket) -> str:
    if not isinstance(sock, ssl.SSLSocket):
        return ""
    cert: Dict[str, Any] = dict(sock.getpeercert() or {})
    for rdn in cert.get("subject", ()):
        for pair in rdn:
            if pair[0] == "commonName":
                return str(pair[1])
    return ""


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost")


@dataclass
class MemberConn:
    """A joined member: its id, its hello, its channel."""

    id: str
    hello: Dict[str, Any]
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, msg: Dict[str, Any], timeout_s: Optional[float]) -> Dict[str, Any]:
        with self.lock:
            send_msg(self.sock, msg)
            return recv_msg(self.sock, timeout_s)

    def send(self, msg: Dict[str, Any]) -> None:
        with self.lock:
            send_msg(self.sock, msg)

    def recv(self, timeout_s: Optional[float]) -> Dict[str, Any]:
        with self.lock:
            return recv_msg(self.sock, timeout_s)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


#: Checks a member's hello beyond its identity; returns why it is refused, or "".
HelloCheck = Callable[[str, Dict[str, Any]], str]


class Gate:
    """The leader's listener: accepts members, checks them, keeps their channels."""

    def __init__(
        self,
        host: str,
        port: int,
        members: List[str],
        revoked: List[str],
        tls: Optional[GateTls],
        check: HelloCheck,
        insecure: bool = False,
    ) -> None:
        if tls is None and not is_loopback(host) and not insecure:
            raise PoolConfigError(
                f"pool: the gate would listen on {host} without TLS; give the leader's "
                "[tls] cert/key/ca (a certificate from scripts/make-certs --pool-leader) or "
                "set pool.insecure = true for a network you trust"
            )
        self.members = list(members)
        self.revoked = set(revoked)
        self.check = check
        self._ctx = tls.context(server=True) if tls is not None else None
        self._joined: Dict[str, MemberConn] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        try:
            self._sock = socket.create_server((host, port))
        except OSError as e:
            raise PoolConfigError(f"pool: cannot listen on {host}:{port}: {e}") from e
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="pool-gate", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._admit, args=(conn, addr), name="pool-admit", daemon=True
            ).start()

    def _admit(self, conn: socket.socket, addr: Any) -> None:
        try:
            if self._ctx is not None:
                conn.settimeout(HELLO_TIMEOUT_S)
                conn = self._ctx.wrap_socket(conn, server_side=True)
            hello = recv_msg(conn, HELLO_TIMEOUT_S)
            claimed = str(hello.get("member_id", ""))
            member_id = peer_common_name(conn) if self._ctx is not None else claimed
            why = self._refusal(hello, member_id, claimed)
            if why:
                log.warning("pool: refused %s from %s: %s", member_id or claimed, addr, why)
                send_msg(conn, {"type": "refused", "reason": why})
                conn.close()
                return
            send_msg(conn, {"type": "welcome", "member_id": member_id})
        except (OSError, ssl.SSLError, ChannelClosed, TimeoutError) as e:
            log.warning("pool: a connection from %s failed before joining: %s", addr, e)
            conn.close()
            return
        with self._cond:
            old = self._joined.pop(member_id, None)
            if old is not None:
                old.close()
            self._joined[member_id] = MemberConn(member_id, hello, conn)
            self._cond.notify_all()
        log.info("pool: member %s joined from %s", member_id, addr)

    def _refusal(self, hello: Dict[str, Any], member_id: str, claimed: str) -> str:
        if hello.get("type") != "hello":
            return "the first message must be a hello"
        if self._ctx is not None and claimed and claimed != member_id:
            return f"certificate says {member_id!r}, hello says {claimed!r}"
        if member_id not in self.members:
            return f"{member_id!r} is not enrolled in this pool (pool.members)"
        if member_id in self.revoked:
            return f"{member_id!r} is revoked (pool.revoked)"
        return self.check(member_id, hello)

    def joined(self) -> List[MemberConn]:
        """Members with an open channel, in the order of ``pool.members``."""
        with self._cond:
            return [self._joined[m] for m in self.members if m in self._joined]

    def drop(self, member_id: str) -> None:
        with self._cond:
            conn = self._joined.pop(member_id, None)
        if conn is not None:
            conn.close()

    def wait_for(self, count: int, timeout_s: float) -> List[MemberConn]:
        """Wait until ``count`` members joined or ``timeout_s`` passed; returns who did."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._joined) >= count, timeout=timeout_s)
        return self.joined()

    def close(self) -> None:
        self._stop.set()
        for conn in self.joined():
            with contextlib.suppress(ChannelClosed, ValueError):
                conn.send({"type": "bye"})
            conn.close()
        with contextlib.suppress(OSError):
            self._sock.close()


def dial(
    address: str, tls: Optional[GateTls], leader_id: str, hello: Dict[str, Any], timeout_s: float
) -> socket.socket:
    """Connect to the leader's gate, check its identity, join; returns the channel.
    Raises :class:`MembershipRefused` when the leader (or its certificate) says no,
    ``OSError``/``ChannelClosed`` when it cannot be reached."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise PoolConfigError(f"pool member: leader must be HOST:PORT, got {address!r}")
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    try:
        if tls is not None:
            try:
                sock = tls.context(server=False).wrap_socket(sock, server_hostname=None)
            except ssl.SSLError as e:
                raise MembershipRefused(f"TLS with the leader at {address} failed: {e}") from e
            name = peer_common_name(sock)
            if leader_id and name != leader_id:
                raise MembershipRefused(
                    f"the leader at {address} presents {name!r}, expected {leader_id!r}"
                )
        send_msg(sock, hello)
        reply = recv_msg(sock, timeout_s)
    except BaseException:
        sock.close()
        raise
    if reply["type"] != "welcome":
        sock.close()
        raise MembershipRefused(f"the leader refused this member: {reply.get('reason', reply)}")
    return sock
