"""A Debian arm64 root file system on this x86 machine, run under qemu-user.

scripts/pi-userland-check builds one with ``debootstrap`` (cached between runs), mounts what a
running system needs into it and takes every mount down again, whatever ends the run. The
kernel runs the root's arm64 programs through qemu-aarch64-static, registered with binfmt_misc
(``F`` flag: the interpreter is opened once, so it need not exist inside the root).

Nothing here is greenfed-specific; everything runs as root.

Errors::

    UserlandError
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Sequence

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = BINFMT_DIR / "qemu-aarch64"
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # shipped by qemu-user-static
# Debian's package for each tool the check needs on the host.
HOST_TOOLS = {
    "debootstrap": Path("/usr/sbin/debootstrap"),
    "qemu-user-static": Path("/usr/bin/qemu-aarch64-static"),
}
MARKER = ".greenfed-root"  # the spec a cached root was built from

Say = Callable[[str], None]


class UserlandError(RuntimeError):
    """The root could not be built, mounted or cleaned up; the message says what to do."""


def run(cmd: Sequence[str], say: Say, stream: bool = False) -> str:
    """Run ``cmd`` (printed first) and return its stdout; a failure raises UserlandError.

    ``stream``: show its output as it comes (long steps), instead of only on failure.
    """
    say("$ " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not stream:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise UserlandError(f"{cmd[0]} exited with {proc.returncode}:\n{tail}")
        return proc.stdout
    lines: List[str] = []
    with subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as p:
        assert p.stdout is not None
        for line in p.stdout:
            say("| " + line.rstrip())
            lines.append(line)
    if p.returncode != 0:
        raise UserlandError(f"{cmd[0]} exited with {p.returncode}:\n{''.join(lines[-30:])}")
    return "".join(lines)


def ensure_host_tools(say: Say) -> List[str]:
    """apt-get install whichever of debootstrap and qemu-user-static is missing; their names."""
    missing = [pkg for pkg, path in HOST_TOOLS.items() if not path.exists()]
    if missing:
        run(["apt-get", "update", "-q"], say)
        run(["apt-get", "install", "-y", "-q", *missing], say)
    return missing


@contextlib.contextmanager
def binfmt_aarch64(say: Say) -> Iterator[None]:
    """The kernel runs arm64 ELF files with qemu-aarch64-static; only its own changes undone."""
    mounted = registered = False
    try:
        if not (BINFMT_DIR / "register").exists():
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], say)
            mounted = True
        if not BINFMT_ENTRY.exists():
            say(f"registering {BINFMT_CONF} with binfmt_misc")
            (BINFMT_DIR / "register").write_text(BINFMT_CONF.read_text().strip())
            registered = True
        flags = [ln for ln in BINFMT_ENTRY.read_text().splitlines() if ln.startswith("flags:")]
        if not flags or "F" not in flags[0]:
            raise UserlandError(
                f"{BINFMT_ENTRY} lacks the F flag, so programs inside a chroot cannot find "
                f"qemu; remove it (echo -1 > {BINFMT_ENTRY}) and run again"
            )
        yield
    finally:
        if registered and BINFMT_ENTRY.exists():
            BINFMT_ENTRY.write_text("-1")
        if mounted:
            subprocess.run(["umount", str(BINFMT_DIR)], check=False)


def _unescape(field_: str) -> str:
    """Mount points in /proc/self/mountinfo escape space, tab, newline and backslash in octal."""
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_ = field_.replace(code, ch)
    return field_


def mounts_below(path: Path) -> List[Path]:
    """Mount points at or under ``path``, deepest first."""
    top = Path(os.path.realpath(path))
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(_unescape(line.split()[4]))
        if point == top or top in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_below(path: Path, say: Say) -> None:
    """Unmount everything at or under ``path`` (lazily when busy); fail if any mount remains."""
    for _ in range(3):  # a stacked mount point shows up once per layer
        points = mounts_below(path)
        if not points:
            return
        for point in points:
            proc = subprocess.run(["umount", str(point)], capture_output=True, text=True)
            if proc.returncode != 0:
                say(f"umount {point}: {proc.stderr.strip()}; detaching it lazily")
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    left = mounts_below(path)
    if left:
        raise UserlandError(f"still mounted under {path}: {', '.join(map(str, left))}")


def remove_tree(path: Path, say: Say) -> None:
    """``rm -r`` that first takes down every mount under ``path`` (never deletes through one)."""
    if not path.exists():
        return
    unmount_below(path, say)
    shutil.rmtree(path)


@dataclass
class RootSpec:
    """What ``debootstrap`` builds; a cached root is reused only when its spec is identical."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    arch: str = "arm64"
    packages: List[str] = field(
        default_factory=lambda: ["python3", "python3-venv", "openssh-server", "ca-certificates"]
    )

    def marker(self) -> str:
        return f"{self.suite} {self.arch} {self.mirror} {','.join(self.packages)}\n"


def build_root(root: Path, spec: RootSpec, say: Say) -> bool:
    """Build ``root`` with debootstrap unless a root of the same spec is cached; True if built.

    The build happens in ``ROOT.partial`` and is renamed at the end, so an interrupted build is
    never mistaken for a cached root.
    """
    marker = root / MARKER
    if marker.is_file() and marker.read_text() == spec.marker():
        say(f"root {root}: cached ({spec.marker().strip()})")
        return False
    partial = root.with_name(root.name + ".partial")
    remove_tree(partial, say)
    remove_tree(root, say)
    partial.parent.mkdir(parents=True, exist_ok=True)
    say(f"root {root}: debootstrap {spec.suite} {spec.arch} (several minutes under emulation)")
    try:
        run(
            [
                str(HOST_TOOLS["debootstrap"]),
                f"--arch={spec.arch}",
                "--variant=minbase",
                f"--include={','.join(spec.packages)}",
                spec.suite,
                str(partial),
                spec.mirror,
            ],
            say,
            stream=True,
        )
    finally:  # debootstrap mounts proc and sys inside its target while it works
        if partial.exists():
            unmount_below(partial, say)
    (partial / MARKER).write_text(spec.marker())
    partial.rename(root)
    return True


@contextlib.contextmanager
def mounted(root: Path, cpuinfo: Path, say: Say) -> Iterator[None]:
    """/proc, a read-only /sys, /dev and an arm64 /proc/cpuinfo in ``root``, taken down on exit.

    qemu-user shows guests the host's /proc/cpuinfo; torch and onnxruntime read it to pick
    their arm64 kernels and crash on an x86 one, so ``cpuinfo`` (a real board's) covers it.
    """
    unmount_below(root, say)  # left over by a run that was killed outright
    try:
        run(["mount", "-t", "proc", "proc", str(root / "proc")], say)
        run(["mount", "-t", "sysfs", "-o", "ro", "sysfs", str(root / "sys")], say)
        # /dev alone (not its submounts), made a slave at once: nothing mounted or unmounted
        # under the root's /dev can then reach the host's.
        run(["mount", "--bind", "/dev", str(root / "dev")], say)
        run(["mount", "--make-rslave", str(root / "dev")], say)
        run(["mount", "-t", "tmpfs", "-o", "mode=1777", "shm", str(root / "dev" / "shm")], say)
        run(["mount", "--bind", str(cpuinfo), str(root / "proc" / "cpuinfo")], say)
        yield
    finally:
        unmount_below(root, say)
