"""Laptops: the system battery's discharge power.

Layout::

    /sys/class/power_supply/BATn/type      "Battery"
    /sys/class/power_supply/BATn/scope     absent or "System"; "Device" for a peripheral's
                                           battery (a HID mouse or pen): never the system's
    /sys/class/power_supply/BATn/status    "Discharging" | "Charging" | "Full" |
                                           "Not charging" | "Unknown"
    /sys/class/power_supply/BATn/power_now µW  (or current_now µA × voltage_now µV)
    /sys/class/power_supply/AC*/type       "Mains", with ``online`` 0/1

Which batteries count: **system** batteries only. Of those, the ones discharging carry the
load; an idle pack (ThinkPads with two packs report the resting one as "Unknown" or
"Not charging") is ignored, read after read, since the firmware switches packs. A charging
pack means the machine is on AC: the battery then measures charging, not the system, and the
source is unavailable (on open) or the read fails (mid-run).

Sign: the kernel's ABI documents a negative ``current_now`` for a discharging battery, and
some drivers sign ``power_now`` the same way, while most ACPI batteries report positive
values. While discharging, the magnitude is the system's power.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from .base import PowerReading, PowerSource, SourceContext
from .errors import SensorReadError, SourceUnavailable
from .sysfs import read_int, read_opt_text, under

POWER_SUPPLY = "/sys/class/power_supply"


def find_batteries(sysfs_root: Path) -> List[Path]:
    """System batteries (``scope`` absent or ``System``), peripherals left out."""
    base = under(sysfs_root, POWER_SUPPLY)
    if not base.is_dir():
        return []
    return [
        p
        for p in sorted(base.iterdir())
        if (read_opt_text(p / "type") or "") == "Battery"
        and (read_opt_text(p / "scope") or "System") == "System"
    ]


def ac_online(sysfs_root: Path) -> bool:
    """True when a mains supply says ``online`` = 1."""
    base = under(sysfs_root, POWER_SUPPLY)
    if not base.is_dir():
        return False
    return any(
        (read_opt_text(p / "type") or "") == "Mains" and (read_opt_text(p / "online") or "") == "1"
        for p in sorted(base.iterdir())
    )


def _status(bat: Path) -> str:
    return read_opt_text(bat / "status") or "Unknown"


def discharge_power_w(bat: Path) -> float:
    """Power drawn from a discharging battery (W, positive whatever the driver's sign)."""
    if (bat / "power_now").exists():
        return abs(read_int(bat / "power_now")) / 1e6
    if (bat / "current_now").exists() and (bat / "voltage_now").exists():
        return abs(read_int(bat / "current_now")) * abs(read_int(bat / "voltage_now")) / 1e12
    raise SourceUnavailable(f"{bat.name}: neither power_now nor current_now/voltage_now")


def system_discharge_w(sysfs_root: Path, batteries: List[Path]) -> Tuple[float, List[str]]:
    """Total discharge power of the system batteries now, and which packs carried it.

    Raises :class:`SourceUnavailable` when one charges (on AC) or none discharges.
    """
    states = [(b, _status(b)) for b in batteries]
    charging = [b.name for b, s in states if s == "Charging"]
    if charging:
        raise SourceUnavailable(
            f"{', '.join(charging)} status Charging: on AC the battery measures charging, "
            "not the system"
        )
    active = [b for b, s in states if s == "Discharging"]
    if not active:
        seen = ", ".join(f"{b.name} {s}" for b, s in states)
        if ac_online(sysfs_root):
            raise SourceUnavailable(f"on AC: no system battery discharging ({seen})")
        raise SourceUnavailable(f"no system battery discharging ({seen}); AC is offline")
    return sum(discharge_power_w(b) for b in active), [b.name for b in active]


class BatterySource(PowerSource):
    name = "battery"

    def __init__(self, sysfs_root: Path, batteries: List[Path], period_s: float) -> None:
        super().__init__(
            scope="whole system from the discharge of its system batteries ("
            + ",".join(b.name for b in batteries)
            + "; idle packs and peripheral batteries excluded)",
            sample_period_s=period_s,
        )
        self.sysfs_root = sysfs_root
        self.batteries = batteries

    @classmethod
    def open(cls, ctx: SourceContext) -> BatterySource:
        bats = find_batteries(ctx.sysfs_root)
        if not bats:
            raise SourceUnavailable(f"no system battery under {POWER_SUPPLY}")
        system_discharge_w(ctx.sysfs_root, bats)
        return cls(ctx.sysfs_root, bats, 1.0 / ctx.cfg.rate_hz)

    def read(self) -> PowerReading:
        try:
            power_w, _ = system_discharge_w(self.sysfs_root, self.batteries)
        except SourceUnavailable as e:
            raise SensorReadError(str(e)) from e
        return PowerReading(power_w=power_w)
