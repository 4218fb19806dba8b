"""The lowest boundary: files under a sysfs root, and external commands.

Every reader takes a ``root`` (default ``/``) so tests and containers can point it at a
copied tree. OS errors become :mod:`edge_agent.sensing.errors` here and nowhere else.
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

from .errors import (
    CommandError,
    SensorBusy,
    SensorPermissionError,
    SensorReadError,
    SourceUnavailable,
)

#: The one place files are opened; tests replace it to simulate EACCES when running as root.
_open = open


def under(root: Path, absolute: str) -> Path:
    """``absolute`` ("/sys/...") re-rooted at ``root``."""
    return Path(root) / absolute.lstrip("/")


def read_text(path: Path) -> str:
    """Read a small sysfs/procfs file, stripped of whitespace and NUL bytes."""
    try:
        with _open(path, "rb") as fh:
            data = fh.read(65536)
    except PermissionError as e:
        raise SensorPermissionError(f"{path}: permission denied (try root)") from e
    except FileNotFoundError as e:
        raise SourceUnavailable(f"{path}: not present") from e
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise SensorBusy(f"{path}: busy (inactive: e.g. its CPUs are offline)") from e
        if e.errno in (errno.ENODATA, errno.EAGAIN, errno.EIO, errno.ENXIO):
            raise SensorReadError(f"{path}: sensor read failed ({e.strerror})") from e
        raise SensorReadError(f"{path}: {e}") from e
    return data.decode("utf-8", "replace").replace("\x00", "").strip()


def read_int(path: Path) -> int:
    text = read_text(path)
    try:
        return int(text.split()[0])
    except (ValueError, IndexError) as e:
        raise SensorReadError(f"{path}: expected an integer, got {text!r}") from e


def read_opt_text(path: Path) -> Optional[str]:
    """``read_text`` or None when the file is absent."""
    try:
        return read_text(path)
    except SourceUnavailable as e:
        if isinstance(e, SensorPermissionError):
            raise
        return None


def write_text(path: Path, value: str) -> None:
    """Write a sysfs attribute (cpufreq limits); errors become SensorPermissionError/ReadError."""
    try:
        with _open(path, "w") as fh:
            fh.write(value)
    except PermissionError as e:
        raise SensorPermissionError(f"{path}: not writable (root needed)") from e
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise SensorBusy(f"{path}: busy (inactive: e.g. its CPUs are offline)") from e
        raise SensorReadError(f"{path}: write {value!r} failed: {e}") from e


class CommandRunner:
    """Runs an external command and returns its stdout; the one seam tests replace."""

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError as e:
            raise CommandError(f"{argv[0]}: not installed") from e
        except PermissionError as e:
            raise CommandError(f"{argv[0]}: permission denied") from e
        except subprocess.TimeoutExpired as e:
            raise CommandError(f"{' '.join(argv)}: timed out after {timeout_s} s") from e
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise CommandError(
                f"{' '.join(argv)}: exit {proc.returncode}: {(err or out).strip()[:200]}"
            )
        return out + (("\n" + err) if err.strip() else "")


class TreeRunner(CommandRunner):
    """Answers commands from a copied board tree instead of running this host's programs.

    Under a sysfs root other than ``/`` (a copied board, a container image) the host's
    ``vcgencmd`` would describe the host. The output recorded on the board lies at the tree's
    top as ``<arguments joined by _>.txt`` (``vcgencmd pmic_read_adc`` → ``pmic_read_adc.txt``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        recorded = self.root / ("_".join(argv[1:]) + ".txt")
        if not recorded.is_file():
            raise CommandError(f"{argv[0]}: not installed (no {recorded.name} in {self.root})")
        return recorded.read_text(encoding="utf-8", errors="replace")


def default_runner(sysfs_root: Path) -> CommandRunner:
    """This host's programs for the real root; the tree's recorded outputs otherwise."""
    return CommandRunner() if Path(sysfs_root) == Path("/") else TreeRunner(sysfs_root)


class FakeRunner(CommandRunner):
    """Returns canned stdout per command name (tests, dry runs)."""

    def __init__(self, outputs: Optional[dict] = None, error: Optional[str] = None) -> None:
        self.outputs = dict(outputs or {})
        self.error = error
        self.calls: List[List[str]] = []

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        self.calls.append(list(argv))
        if self.error is not None:
            raise CommandError(self.error)
        key = " ".join(argv[1:])
        if key not in self.outputs:
            raise CommandError(f"{argv[0]}: not installed")
        return str(self.outputs[key])
