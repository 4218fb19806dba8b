"""Membership: members prove who they are to the leader's gate with fleet certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from coordinator.certs import make_ca, make_device_cert
from edge_agent.pool.errors import MembershipRefused, PoolConfigError
from edge_agent.pool.gate import ChannelClosed, Gate, GateTls, dial, recv_msg, send_msg


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, GateTls]:
    """A fleet CA with a pool leader, two members and a stranger; plus another CA's cert."""
    d = tmp_path_factory.mktemp("certs")
    make_ca(d)
    ca = d / "ca.pem"
    out = {"leader": make_device_cert(d, "pool-a", pool_leader_names=["127.0.0.1"])}
    for name in ("m1", "m2", "stranger"):
        out[name] = make_device_cert(d, name)
    other = tmp_path_factory.mktemp("other")
    make_ca(other, name="somebody else's CA")
    foreign = make_device_cert(other, "m1")
    tls = {k: GateTls(v.cert, v.key, ca) for k, v in out.items()}
    tls["foreign-m1"] = GateTls(foreign.cert, foreign.key, ca)  # trusts the leader
    tls["m1-trusting-other-ca"] = GateTls(out["m1"].cert, out["m1"].key, other / "ca.pem")
    return tls


@pytest.fixture
def gate(fleet: Dict[str, GateTls]) -> Iterator[Gate]:
    checked: List[str] = []
    g = Gate(
        "127.0.0.1", 0, ["m1", "m2"], ["m2"], fleet["leader"],
        lambda member, hello: checked.append(member) or hello.get("refuse", ""),
    )  # fmt: skip
    yield g
    g.close()


def hello(member: str, **extra: object) -> dict:
    return {"type": "hello", "member_id": member, **extra}


def test_an_enrolled_member_joins_and_talks_to_the_leader(
    gate: Gate, fleet: Dict[str, GateTls]
) -> None:
    sock = dial(f"127.0.0.1:{gate.port}", fleet["m1"], "pool-a", hello("m1"), 10.0)
    joined = gate.wait_for(1, 10.0)
    assert [c.id for c in joined] == ["m1"]
    joined[0].send({"type": "ping"})
    assert recv_msg(sock, 10.0) == {"type": "ping"}
    send_msg(sock, {"type": "pong"})
    assert joined[0].recv(10.0) == {"type": "pong"}
    sock.close()


@pytest.mark.parametrize(
    "who, claim, why",
    [
        ("stranger", "stranger", "not enrolled"),
        ("m2", "m2", "revoked"),
        ("m1", "m2", "certificate says 'm1'"),
        ("m1", "m1", "data differs"),  # the leader's own check of the hello
    ],
)
def test_the_gate_refuses_with_the_reason(
    gate: Gate, fleet: Dict[str, GateTls], who: str, claim: str, why: str
) -> None:
    extra = {"refuse": "data differs"} if why == "data differs" else {}
    with pytest.raises(MembershipRefused, match=why):
        dial(f"127.0.0.1:{gate.port}", fleet[who], "pool-a", hello(claim, **extra), 10.0)
    assert gate.joined() == []


def test_certificates_from_another_ca_fail_the_handshake(
    gate: Gate, fleet: Dict[str, GateTls]
) -> None:
    with pytest.raises((MembershipRefused, ChannelClosed)):  # the leader refuses its cert
        dial(f"127.0.0.1:{gate.port}", fleet["foreign-m1"], "", hello("m1"), 10.0)
    with pytest.raises(MembershipRefused, match="TLS"):  # the member does not trust the leader
        dial(f"127.0.0.1:{gate.port}", fleet["m1-trusting-other-ca"], "", hello("m1"), 10.0)
    assert gate.joined() == []


def test_a_member_checks_the_leader_it_reached(gate: Gate, fleet: Dict[str, GateTls]) -> None:
    with pytest.raises(MembershipRefused, match="expected 'pool-b'"):
        dial(f"127.0.0.1:{gate.port}", fleet["m1"], "pool-b", hello("m1"), 10.0)


def test_no_tls_only_on_loopback(tmp_path: Path) -> None:
    with pytest.raises(PoolConfigError, match="without TLS"):
        Gate("0.0.0.0", 0, ["m1"], [], None, lambda m, h: "")
    g = Gate("127.0.0.1", 0, ["m1"], [], None, lambda m, h: "")
    try:
        sock = dial(f"127.0.0.1:{g.port}", None, "", hello("m1"), 10.0)
        assert [c.id for c in g.wait_for(1, 10.0)] == ["m1"]
        sock.close()
    finally:
        g.close()
