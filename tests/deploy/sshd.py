"""A throwaway OpenSSH server on a loopback port, for testing scripts/flash for real.

With ``chroot`` it is the sshd of another root file system (scripts/pi-userland-check's arm64
Debian, run under qemu-user): the same configuration, written as that root sees its paths.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, List, Optional

SSHD = Path("/usr/sbin/sshd")


@dataclass
class SshServer:
    port: int
    identity: Path  # client private key
    known_hosts: Path
    proc: subprocess.Popen  # type: ignore[type-arg]
    log: Path
    log_file: BinaryIO

    def ssh_options(self) -> List[str]:
        """scripts/flash arguments that make ssh trust exactly this server, non-interactively."""
        return [
            "--port",
            str(self.port),
            "--identity",
            str(self.identity),
            "--ssh-option",
            f"UserKnownHostsFile={self.known_hosts}",
            "--ssh-option",
            "StrictHostKeyChecking=yes",
            "--ssh-option",
            "IdentitiesOnly=yes",
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log_file.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "greenfed-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


def start_sshd(workdir: Path, timeout_s: float = 20.0, chroot: Optional[Path] = None) -> SshServer:
    """Start ``sshd -D`` with its own host key, authorized key and config; wait for its banner.

    ``chroot``: run the sshd of that root file system inside it; ``workdir`` must lie under it.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    root = chroot if chroot is not None else Path("/")

    def seen(p: Path) -> Path:  # a path as sshd sees it (inside the root)
        return Path("/") / p.relative_to(root)

    host_key = workdir / "host_ed25519"
    client_key = workdir / "client_ed25519"
    keygen(host_key)
    keygen(client_key)
    authorized = workdir / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    port = free_port()
    known = workdir / "known_hosts"
    host_pub = host_key.with_suffix(".pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {seen(host_key)}",
                f"AuthorizedKeysFile {seen(authorized)}",
                f"PidFile {seen(workdir / 'sshd.pid')}",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "MaxStartups 50",
                "MaxSessions 50",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    # sshd refuses to start without its privilege separation directory (normally made by the
    # service unit that the package's postinst could not start in a container).
    (root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    log = workdir / "sshd.log"
    chroot_cmd = ["chroot", str(root)] if chroot is not None else []
    log_file = open(log, "wb")  # noqa: SIM115 - closed by SshServer.stop
    proc = subprocess.Popen(
        [*chroot_cmd, str(SSHD), "-D", "-e", "-f", str(seen(config))],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    server = SshServer(port, client_key, known, proc, log, log_file)
    deadline = time.monotonic() + timeout_s
    while True:  # ready when it answers with its SSH banner
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.settimeout(2.0)
                if s.recv(64).startswith(b"SSH-"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"sshd did not answer on port {port}: {log.read_text()}")
        time.sleep(0.05)  # poll interval of a bounded readiness wait, not synchronisation
