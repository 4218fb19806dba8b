"""Jetson JetPack 5/6: INA3221 through the mainline ``ina3221`` hwmon driver.

Layout (discovered, never hard-coded: the bus, address and hwmon number vary)::

    /sys/bus/i2c/devices/<bus>-<addr>/name            "ina3221"
    /sys/bus/i2c/devices/<bus>-<addr>/hwmon/hwmonK/
        inN_label    rail name (N = 1..3); "NC" = not connected;
                     in7_label "sum of shunt voltages" (a sum channel, skipped)
        inN_input    bus voltage, mV
        currN_input  current, mA          -> power_mW = mV * mA / 1000
        inN_enable   0 when the channel is disabled (optional)

Total: ``VDD_IN`` where it exists (Orin Nano / NX: module input). AGX Orin has no VDD_IN;
the total is then the sum of the connected rails and the scope says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

from .base import SourceContext
from .rails import RailSource, require
from .sysfs import read_int, read_opt_text, read_text, under

TOTAL_LABELS = ("VDD_IN",)
_NC = re.compile(r"(^|[_\s])NC($|[_\s])", re.IGNORECASE)


def is_skipped_label(label: str) -> bool:
    """Not-connected channels and the summation channel carry no rail of their own."""
    return bool(_NC.search(label.strip())) or "sum" in label.lower()


@dataclass
class Rail:
    """One INA3221 channel: ``label``, ``chip`` (i2c device), files for mV and mA."""

    label: str
    chip: str
    volt_path: Path
    curr_path: Path

    def power_w(self) -> float:
        mv = read_int(self.volt_path)
        ma = read_int(self.curr_path)
        return mv * ma / 1e6


def discover_rails(sysfs_root: Path) -> List[Rail]:
    """All connected rails of every INA3221 hwmon device under ``sysfs_root``."""
    devices = under(sysfs_root, "/sys/bus/i2c/devices")
    if not devices.is_dir():
        return []
    rails: List[Rail] = []
    for dev in sorted(devices.iterdir()):
        name = read_opt_text(dev / "name") or ""
        if "ina3221" not in name:
            continue
        for hw in sorted((dev / "hwmon").glob("hwmon*")):
            for label_file in sorted(hw.glob("in*_label")):
                m = re.fullmatch(r"in(\d+)_label", label_file.name)
                if not m:
                    continue
                n = m.group(1)
                label = read_text(label_file)
                if is_skipped_label(label):
                    continue
                enable = read_opt_text(hw / f"in{n}_enable")
                if enable is not None and enable.strip() == "0":
                    continue
                curr = hw / f"curr{n}_input"
                volt = hw / f"in{n}_input"
                if not curr.exists() or not volt.exists():
                    continue
                rails.append(Rail(label, dev.name, volt, curr))
    return rails


class Ina3221HwmonSource(RailSource):
    name = "ina3221-hwmon"
    total_labels = TOTAL_LABELS
    chip_kind = "INA3221"
    no_total_note = "no VDD_IN on this board; carrier board excluded"

    @classmethod
    def open(cls, ctx: SourceContext) -> RailSource:
        rails = discover_rails(ctx.sysfs_root)
        why = "no ina3221 hwmon device under /sys/bus/i2c/devices (not a JetPack 5/6 Jetson)"
        return cls.from_rails(require(list(rails), why), ctx)
