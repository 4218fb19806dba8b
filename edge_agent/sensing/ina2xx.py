"""INA219 / INA226 on I2C (Raspberry Pi 4 and other boards), when configured.

Registers (16 bit, big-endian on the wire; both chips power up in continuous mode)::

    0x01 shunt voltage  signed; INA219 LSB 10 µV, INA226 LSB 2.5 µV
    0x02 bus voltage    INA219: bits 15..3, LSB 4 mV;  INA226: LSB 1.25 mV
    0xFE manufacturer   INA226 only: 0x5449 ("TI")

Current = V_shunt / R_shunt; power = V_bus · I. We compute from the raw voltages, so the
calibration register does not matter. The scope is whatever the shunt is wired to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Tuple

from .base import PowerReading, PowerSource, Probe, SourceContext
from .config import Ina2xxConfig
from .errors import SensingError, SensorPermissionError, SensorReadError, SourceUnavailable
from .sysfs import under

I2C_SLAVE = 0x0703
REG_SHUNT = 0x01
REG_BUS = 0x02
REG_MANUFACTURER = 0xFE
TI_ID = 0x5449

#: chip -> (shunt LSB in V, bus LSB in V, bus right shift)
CHIPS: Dict[str, Tuple[float, float, int]] = {
    "ina219": (10e-6, 4e-3, 3),
    "ina226": (2.5e-6, 1.25e-3, 0),
}


class I2CBus:
    """Raw register access through ``/dev/i2c-N`` (no smbus dependency)."""

    def __init__(self, path: Path, address: int) -> None:
        import fcntl

        try:
            self._fd = os.open(str(path), os.O_RDWR)
        except PermissionError as e:
            raise SensorPermissionError(f"{path}: permission denied (group i2c)") from e
        except FileNotFoundError as e:
            raise SourceUnavailable(f"{path}: no such I2C bus (enable I2C)") from e
        try:
            fcntl.ioctl(self._fd, I2C_SLAVE, address)
        except OSError as e:
            os.close(self._fd)
            raise SourceUnavailable(f"{path}: cannot address 0x{address:02x}: {e}") from e

    def read_word(self, reg: int) -> int:
        try:
            os.write(self._fd, bytes([reg]))
            data = os.read(self._fd, 2)
        except OSError as e:
            raise SensorReadError(f"i2c read of register 0x{reg:02x} failed: {e}") from e
        if len(data) != 2:
            raise SensorReadError(f"i2c short read of register 0x{reg:02x}")
        return (data[0] << 8) | data[1]

    def close(self) -> None:
        os.close(self._fd)


def _signed16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def decode(chip: str, shunt_raw: int, bus_raw: int, shunt_ohm: float) -> Tuple[float, float]:
    """``(bus volts, amps)`` from raw register words."""
    shunt_lsb, bus_lsb, shift = CHIPS[chip]
    volts = (bus_raw >> shift) * bus_lsb
    amps = _signed16(shunt_raw) * shunt_lsb / shunt_ohm
    return volts, amps


class Ina2xxSource(PowerSource):
    name = "ina2xx"

    def __init__(self, bus: I2CBus, icfg: Ina2xxConfig, period_s: float) -> None:
        super().__init__(
            scope=f"{icfg.scope} ({icfg.chip} at i2c-{icfg.bus}:0x{icfg.address:02x})",
            sample_period_s=period_s,
        )
        self._bus = bus
        self._cfg = icfg

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        if ctx.cfg.ina2xx is None:
            return Probe(cls.name, False, "not configured ([sensing.ina2xx] bus, address, shunt)")
        try:
            src = cls.open(ctx)
            src.read()
            src.close()
        except SensingError as e:
            return Probe(cls.name, False, str(e))
        return Probe(cls.name, True, detail={"scope": src.scope})

    @classmethod
    def open(cls, ctx: SourceContext, bus: Optional[I2CBus] = None) -> Ina2xxSource:
        icfg = ctx.cfg.ina2xx
        if icfg is None:
            raise SourceUnavailable("ina2xx not configured")
        if icfg.chip not in CHIPS:
            raise SourceUnavailable(f"unknown chip {icfg.chip!r} (ina219 or ina226)")
        if icfg.shunt_ohm <= 0:
            raise SourceUnavailable("ina2xx shunt_ohm must be > 0")
        if bus is None:
            bus = I2CBus(under(ctx.sysfs_root, f"/dev/i2c-{icfg.bus}"), icfg.address)
        if icfg.chip == "ina226" and bus.read_word(REG_MANUFACTURER) != TI_ID:
            raise SourceUnavailable(f"no INA226 at 0x{icfg.address:02x} (manufacturer id)")
        return cls(bus, icfg, 1.0 / ctx.cfg.rate_hz)

    def read(self) -> PowerReading:
        volts, amps = decode(
            self._cfg.chip,
            self._bus.read_word(REG_SHUNT),
            self._bus.read_word(REG_BUS),
            self._cfg.shunt_ohm,
        )
        return PowerReading(power_w=volts * amps)

    def close(self) -> None:
        self._bus.close()
