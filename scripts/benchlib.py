"""What the scripts share: the machine benchmarks ran on, the profile raw clients register
with, and how the scripts that make shipped files write or check them.

Benchmarks print the command, the machine and their ratios side by side; this module says what
the machine is. Not part of the product (no package imports it).
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

from greenfed.v1 import fleet_pb2 as pb

# The calibration profile raw load-test clients register with: fixture values, labelled so.
PROFILE = pb.CalibrationProfile(
    idle_power_w=5,
    kappa=1e-27,
    cycles_per_sample=2e6,
    uplink_bytes_per_s=1e7,
    energy_per_byte_j=1e-7,
    source="estimated",
    scope="load test",
    estimated=True,
)


def write_or_check(out: Path, blob: bytes, check: bool) -> int:
    """Write a regenerated shipped file, or (``check``) compare it with ``out`` byte for byte;
    the exit status: 1 when a check finds the file differs."""
    digest = hashlib.sha256(blob).hexdigest()
    if check:
        same = out.is_file() and out.read_bytes() == blob
        print(f"{out}: {'identical' if same else 'DIFFERS from the rebuilt file'} "
              f"(rebuilt: {len(blob)} bytes, sha256 {digest})")  # fmt: skip
        return 0 if same else 1
    out.write_bytes(blob)
    print(f"wrote {out} ({len(blob)} bytes, sha256 {digest})")
    return 0


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo where it exists)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
