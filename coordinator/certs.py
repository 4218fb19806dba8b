"""Enrolment material for mutual TLS: a CA, the coordinator's certificate, one per device.

Layout of a certificate directory (what ``scripts/make-certs`` writes)::

    ca.pem, ca.key                  the fleet's CA (keep ca.key off the boards)
    coordinator.pem, coordinator.key
                                    server certificate, SAN: localhost, 127.0.0.1, ::1 and
                                    the names/addresses given
    devices/<id>.pem, <id>.key      one per board; CN = device id = the identity the
                                    coordinator knows it by

A device is enrolled by holding a certificate this CA signed; it is revoked by id
(``tls.revoked`` in the coordinator's config, or ``greenfed-coordinator revoke ID``). Keys are
ECDSA P-256, written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coordinator.errors import CertError

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")

GeneralName = Union[x509.DNSName, x509.IPAddress]


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(names: Sequence[str]) -> List[GeneralName]:
    out: List[GeneralName] = []
    for n in dict.fromkeys(names):  # keep order, drop duplicates
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def make_ca(directory: Path, name: str = "greenfed fleet CA", days: int = 3650) -> Issued:
    """Create ``ca.pem``/``ca.key`` (refuses to overwrite an existing CA key)."""
    directory = Path(directory)
    key_path, cert_path = directory / "ca.key", directory / "ca.pem"
    if key_path.exists():
        raise CertError(f"{key_path} exists: refusing to replace the fleet's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return Issued(cert_path, key_path)


def load_ca(directory: Path) -> Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    directory = Path(directory)
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise CertError(f"cannot read the CA in {directory}: {e} (run make-certs init)") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError("the CA key is not an EC key made by make-certs")
    return cert, key


def _issue(
    directory: Path,
    cn: str,
    usage: Sequence[x509.ObjectIdentifier],
    names: Sequence[str],
    days: int,
    out_cert: Path,
    out_key: Path,
) -> Issued:
    ca_cert, ca_key = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(out_key, key)
    _write_cert(out_cert, cert)
    return Issued(out_cert, out_key)


def make_server_cert(directory: Path, names: Sequence[str] = (), days: int = 825) -> Issued:
    """``coordinator.pem``/``.key`` for the given DNS names and IP addresses (plus loopback)."""
    directory = Path(directory)
    all_names = [*DEFAULT_NAMES, *names]
    return _issue(
        directory,
        "greenfed-coordinator",
        [ExtendedKeyUsageOID.SERVER_AUTH],
        all_names,
        days,
        directory / "coordinator.pem",
        directory / "coordinator.key",
    )


def make_device_cert(
    directory: Path, device_id: str, days: int = 825, pool_leader_names: Sequence[str] = ()
) -> Issued:
    """``devices/<id>.pem``/``.key`` with CN = ``device_id``.

    ``pool_leader_names`` (addresses on the pool's network) makes it a pool leader's
    certificate: serverAuth besides clientAuth, so the leader's members can dial it
    (docs/pools.md); members and ordinary devices get clientAuth only.
    """
    if not DEVICE_ID_RE.match(device_id):
        raise CertError(f"device id {device_id!r}: use 1-64 letters, digits, '_', '.', ':' or '-'")
    directory = Path(directory)
    safe = device_id.replace(":", "_")
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if pool_leader_names:
        usage.append(ExtendedKeyUsageOID.SERVER_AUTH)
    return _issue(
        directory,
        device_id,
        usage,
        pool_leader_names,
        days,
        directory / "devices" / f"{safe}.pem",
        directory / "devices" / f"{safe}.key",
    )


def common_name(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
