"""Mutual TLS: enrolment by CA, identity from the certificate, revocation, insecure binds.

Certificates come from the real ``scripts/make-certs``; the coordinator and one agent are real
processes; the other devices are raw gRPC clients holding real certificates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import grpc
import pytest

from coordinator.launcher import write_toml
from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from tests.e2e.conftest import FAST, Cluster, free_port, rows, wait_for
from tests.trust import fleet as F

pytestmark = pytest.mark.slow
OK = grpc.StatusCode
REPO = Path(__file__).resolve().parents[2]


def make_certs(directory: Path, *args: str) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make-certs"), str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def tls_channel(port: int, certs: Path, device: str, ca: Path) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=(certs / "devices" / f"{device}.key").read_bytes(),
        certificate_chain=(certs / "devices" / f"{device}.pem").read_bytes(),
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", creds)


class Tls:
    def __init__(self, root: Path, profile: Path) -> None:
        self.certs = root / "certs"
        make_certs(self.certs, "--device", "alice", "--device", "bob", "--device", "carl")
        make_certs(self.certs, "--device", "dave")  # a board enrolled later, same CA
        self.rogue = root / "rogue"  # another CA issuing a certificate that claims "bob"
        make_certs(self.rogue, "--device", "bob")
        c = self.certs
        self.c = Cluster(
            root / "run",
            profile,
            {
                **FAST,
                "rounds": 2,
                "min_devices": 1,
                "deadline_s": 120.0,
                "tls": {
                    "cert": str(c / "coordinator.pem"),
                    "key": str(c / "coordinator.key"),
                    "ca": str(c / "ca.pem"),
                    "revoked": ["carl"],
                },
            },
        )
        self.c.start()

    def device(self, name: str, claim: str = "", certs: Any = None) -> F.RawDevice:
        d = certs or self.certs
        ch = tls_channel(self.c.port, d, name, self.certs / "ca.pem")
        return F.RawDevice(self.c.port, name, channel=ch, metadata_id=claim)


@pytest.fixture(scope="module")
def t(tmp_path_factory: pytest.TempPathFactory, profile_path: Path) -> Iterator[Tls]:
    fixture = Tls(tmp_path_factory.mktemp("tls"), profile_path)
    try:
        yield fixture
    finally:
        fixture.c.close()


def test_make_certs_layout(t: Tls) -> None:
    from coordinator.certs import common_name

    for f in ("ca.pem", "ca.key", "coordinator.pem", "coordinator.key"):
        assert (t.certs / f).exists()
    assert common_name((t.certs / "devices" / "dave.pem").read_bytes()) == "dave"
    assert (t.certs / "ca.key").stat().st_mode & 0o077 == 0
    out = subprocess.run(
        ["openssl", "verify", "-CAfile", str(t.certs / "ca.pem"), str(t.certs / "coordinator.pem")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "OK" in out.stdout


def test_identity_comes_from_the_certificate_not_the_metadata(t: Tls) -> None:
    bob = t.device("bob")
    assert bob.register().device_id == "bob"
    a = bob.assignment()
    assert a.round == 0
    # alice claims to be bob in the metadata: she is registered as alice, and bob's round is
    # not hers to upload to or report for.
    alice = t.device("alice", claim="bob")
    assert alice.register().device_id == "alice"
    before = F.snapshot(t.c.db, bob.download(0))
    frame = F.encode_for(a, F.small_update(codec_params(bob, 0), 3))
    F.expect(alice.upload_refused(a, frame), OK.FAILED_PRECONDITION, "alice has no part")
    F.expect(alice.refused("ReportRound", F.report_msg(0)), OK.FAILED_PRECONDITION, "alice")
    F.expect(
        alice.refused("DownloadModel", pb.DownloadRequest(round=0)),
        OK.FAILED_PRECONDITION,
        "alice has no part",
    )
    assert F.snapshot(t.c.db, bob.download(0)) == before
    assert {r["id"] for r in rows(t.c.db, "SELECT id FROM devices")} == {"alice", "bob"}


def codec_params(dev: F.RawDevice, round_no: int) -> Dict[str, Any]:
    return codec.decode(dev.download(round_no), max_frame_bytes=1 << 26, max_decoded_bytes=1 << 26)


def test_no_certificate_or_a_foreign_ca_cannot_connect(t: Tls) -> None:
    before = F.snapshot(t.c.db)
    plain = grpc.secure_channel(
        f"127.0.0.1:{t.c.port}",
        grpc.ssl_channel_credentials(root_certificates=(t.certs / "ca.pem").read_bytes()),
    )
    anonymous = F.RawDevice(t.c.port, "bob", channel=plain)
    assert anonymous.refused("WaitAssignment", pb.WaitRequest()).code() == OK.UNAVAILABLE
    rogue = t.device("bob", certs=t.rogue)
    assert rogue.refused("WaitAssignment", pb.WaitRequest()).code() == OK.UNAVAILABLE
    insecure = F.RawDevice(t.c.port, "bob")  # plaintext against a TLS port
    assert insecure.refused("WaitAssignment", pb.WaitRequest(), timeout=5).code() in (
        OK.UNAVAILABLE,
        OK.DEADLINE_EXCEEDED,
    )
    assert F.snapshot(t.c.db) == before


def test_revocation_by_config_and_by_command(t: Tls) -> None:
    carl = t.device("carl")
    with pytest.raises(grpc.RpcError) as e:
        carl.register()
    F.expect(e.value, OK.PERMISSION_DENIED, "revoked")
    alice = t.device("alice")
    alice.call("WaitAssignment", pb.WaitRequest(last_round=0), timeout=20)
    state_dir = str(t.c.db.parent)
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "revoke", "alice", "--state-dir", state_dir],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for method, req in (
        ("Register", pb.RegisterRequest(samples=10, profile=F.PROFILE)),
        ("WaitAssignment", pb.WaitRequest(last_round=0)),
        ("UploadStatus", pb.UploadStatusRequest(round=0)),
        ("ReportRound", F.report_msg(0)),
    ):
        F.expect(alice.refused(method, req), OK.PERMISSION_DENIED, "revoked")


def test_a_real_agent_trains_over_mutual_tls(t: Tls) -> None:
    c = t.certs
    t.c.agent(
        "dave",
        "shard=1/2",
        tls={
            "cert": str(c / "devices" / "dave.pem"),
            "key": str(c / "devices" / "dave.key"),
            "ca": str(c / "ca.pem"),
        },
    )
    wait_for("dave to register", lambda: rows(t.c.db, "SELECT id FROM devices WHERE id='dave'"))
    bob = t.device("bob")
    a0 = bob.assignment()
    bob.upload(a0, F.encode_for(a0, F.small_update(codec_params(bob, a0.round), 4)))
    bob.report(a0.round)
    a1 = wait_for(
        "round 1 for bob",
        lambda: (lambda x: x if x.status == x.ASSIGNED else None)(
            bob.call("WaitAssignment", pb.WaitRequest(last_round=0))
        ),
    )
    bob.upload(a1, F.encode_for(a1, F.small_update(codec_params(bob, a1.round), 5)))
    bob.report(a1.round)
    assert t.c.run is not None and t.c.run.wait(timeout_s=180) == 0, t.c.logs()
    r1 = rows(t.c.db, "SELECT * FROM rounds WHERE round = 1")[0]
    assert r1["status"] == "completed" and r1["arrived"] == 2, t.c.logs()
    assert rows(t.c.db, "SELECT device_id FROM uploads WHERE round=1 ORDER BY device_id") == [
        {"device_id": "bob"},
        {"device_id": "dave"},
    ]


def _serve(tmp: Path, listen: str, *flags: str) -> subprocess.Popen:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg: Dict[str, Any] = {"listen": listen, "state_dir": str(tmp / "state"), **FAST}
    write_toml(tmp / "c.toml", cfg)
    cmd = [sys.executable, "-m", "coordinator.cli", "serve", "--config", str(tmp / "c.toml")]
    cmd += ["--port-file", str(tmp / "port"), *flags]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_non_loopback_without_tls_is_refused_unless_insecure(tmp_path: Path) -> None:
    listen = f"0.0.0.0:{free_port()}"
    p = _serve(tmp_path / "a", listen)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert "refusing to listen" in err and "make-certs" in err and "--insecure" in err
    p = _serve(tmp_path / "b", listen, "--insecure")
    try:
        wait_for("the insecure coordinator to serve", lambda: (tmp_path / "b" / "port").exists())
    finally:
        p.terminate()
        p.communicate(timeout=60)
