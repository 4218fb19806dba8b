"""Jetson JetPack 4 (Nano, TX2, Xavier): the NVIDIA ``ina3221x`` iio driver.

Layout::

    /sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceK/
        rail_name_N         rail name (N = 0..2), e.g. POM_5V_IN, POM_5V_GPU, POM_5V_CPU
        in_powerN_input     mW
        in_voltageN_input   mV
        in_currentN_input   mA

Total: ``POM_5V_IN`` (Nano) or ``VDD_IN`` (TX2/Xavier NX) where present, else the sum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

from .base import SourceContext
from .ina3221_hwmon import is_skipped_label
from .rails import RailSource, require
from .sysfs import read_int, read_text, under

TOTAL_LABELS = ("POM_5V_IN", "VDD_IN")


@dataclass
class IioRail:
    label: str
    chip: str
    power_path: Path

    def power_w(self) -> float:
        return read_int(self.power_path) / 1000.0


def discover_iio_rails(sysfs_root: Path) -> List[IioRail]:
    drv = under(sysfs_root, "/sys/bus/i2c/drivers/ina3221x")
    if not drv.is_dir():
        return []
    rails: List[IioRail] = []
    for dev in sorted(p for p in drv.iterdir() if re.fullmatch(r"\d+-[0-9a-f]{4}", p.name)):
        for iio in sorted(dev.glob("iio:device*")):
            for name_file in sorted(iio.glob("rail_name_*")):
                n = name_file.name.rsplit("_", 1)[1]
                label = read_text(name_file)
                if is_skipped_label(label):
                    continue
                power = iio / f"in_power{n}_input"
                if power.exists():
                    rails.append(IioRail(label, dev.name, power))
    return rails


class Ina3221IioSource(RailSource):
    name = "ina3221-iio"
    total_labels = TOTAL_LABELS
    chip_kind = "ina3221x"
    no_total_note = "no input rail"

    @classmethod
    def open(cls, ctx: SourceContext) -> RailSource:
        rails = discover_iio_rails(ctx.sysfs_root)
        why = "no ina3221x iio device under /sys/bus/i2c/drivers/ina3221x (not JetPack 4)"
        return cls.from_rails(require(list(rails), why), ctx)
