"""Laptops: the battery's ``power_now`` while discharging.

Layout::

    /sys/class/power_supply/BATn/type      "Battery"
    /sys/class/power_supply/BATn/status    "Discharging" | "Charging" | "Full" | ...
    /sys/class/power_supply/BATn/power_now µW  (or current_now µA × voltage_now µV)

On AC the battery reading measures charging, not the system: unavailable then.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from .base import PowerReading, PowerSource, SourceContext
from .errors import SensorReadError, SourceUnavailable
from .sysfs import read_int, read_opt_text, under


def find_batteries(sysfs_root: Path) -> List[Path]:
    base = under(sysfs_root, "/sys/class/power_supply")
    if not base.is_dir():
        return []
    return [p for p in sorted(base.iterdir()) if (read_opt_text(p / "type") or "") == "Battery"]


def battery_power_w(bat: Path) -> float:
    status = read_opt_text(bat / "status") or "Unknown"
    if status != "Discharging":
        raise SourceUnavailable(
            f"{bat.name}: status {status} (on AC the battery does not measure the system)"
        )
    if (bat / "power_now").exists():
        return read_int(bat / "power_now") / 1e6
    if (bat / "current_now").exists() and (bat / "voltage_now").exists():
        return read_int(bat / "current_now") * read_int(bat / "voltage_now") / 1e12
    raise SourceUnavailable(f"{bat.name}: neither power_now nor current_now/voltage_now")


class BatterySource(PowerSource):
    name = "battery"

    def __init__(self, batteries: List[Path], period_s: float) -> None:
        super().__init__(
            scope="whole system from battery discharge ("
            + ",".join(b.name for b in batteries)
            + ")",
            sample_period_s=period_s,
        )
        self.batteries = batteries

    @classmethod
    def open(cls, ctx: SourceContext) -> BatterySource:
        bats = find_batteries(ctx.sysfs_root)
        if not bats:
            raise SourceUnavailable("no battery under /sys/class/power_supply")
        for b in bats:
            battery_power_w(b)
        return cls(bats, 1.0 / ctx.cfg.rate_hz)

    def read(self) -> PowerReading:
        try:
            return PowerReading(power_w=sum(battery_power_w(b) for b in self.batteries))
        except SourceUnavailable as e:
            raise SensorReadError(str(e)) from e
