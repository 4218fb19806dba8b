"""x86 development machines: RAPL powercap energy counters.

Layout::

    /sys/class/powercap/intel-rapl:N/          top-level domain: name "package-N" or "psys"
        energy_uj               cumulative µJ, wraps at max_energy_range_uj
        max_energy_range_uj
    /sys/class/powercap/intel-rapl:N:M/        sub-domains (core, uncore, dram): NOT summed,
                                                core/uncore are already inside the package

We sum the ``package-*`` domains (disjoint), or use ``psys`` alone when no package
domain exists; never both (psys covers the packages). A package domain excludes DRAM (its
own ``dram`` domain, where present, is not added: server parts only, and not the board's
memory power on laptops), and the scope says so. ``energy_uj`` is root-only since
Linux 5.10 (CVE-2020-8694): the probe says so.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from .base import PowerReading, PowerSource, Probe, SourceContext
from .errors import SensingError, SensorPermissionError, SourceUnavailable
from .sysfs import read_int, read_text, under


@dataclass
class RaplDomain:
    name: str
    energy_path: Path
    max_range_uj: int
    last_uj: int = 0

    def delta_uj(self) -> int:
        """µJ since the previous call, across at most one wrap."""
        cur = read_int(self.energy_path)
        d = cur - self.last_uj
        if d < 0:
            d += self.max_range_uj
        self.last_uj = cur
        return d


def discover_domains(sysfs_root: Path) -> List[RaplDomain]:
    base = under(sysfs_root, "/sys/class/powercap")
    if not base.is_dir():
        return []
    found = []
    for d in sorted(base.iterdir()):
        if not re.fullmatch(r"intel-rapl:\d+", d.name):
            continue
        name = read_text(d / "name")
        found.append(RaplDomain(name, d / "energy_uj", read_int(d / "max_energy_range_uj")))
    packages = [d for d in found if d.name.startswith("package")]
    if packages:
        return packages
    return [d for d in found if d.name == "psys"]


def rapl_scope(names: str) -> str:
    """What the summed domains cover, and what they leave out (DRAM above all)."""
    if names == "psys":
        return (
            "platform psys (RAPL: the SoC and what the platform's power controller reports; "
            "excludes display backlight, disks and the rest of the board)"
        )
    return (
        f"CPU {names} (RAPL: cores, caches, uncore, integrated GPU; excludes DRAM, "
        "display, disks and the rest of the board)"
    )


class RaplSource(PowerSource):
    name = "rapl"

    def __init__(
        self,
        domains: List[RaplDomain],
        period_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = "+".join(d.name for d in domains)
        super().__init__(scope=rapl_scope(names), sample_period_s=period_s)
        self.domains = domains
        self._clock = clock
        self._energy_j = 0.0
        self._last_t: Optional[float] = None
        for d in domains:
            d.last_uj = read_int(d.energy_path)
        self._last_t = clock()

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        try:
            src = cls.open(ctx)
        except SensorPermissionError as e:
            return Probe(
                cls.name,
                False,
                f"{e}: energy_uj is root-only since Linux 5.10; run as root",
            )
        except SensingError as e:
            return Probe(cls.name, False, str(e))
        return Probe(cls.name, True, detail={"scope": src.scope})

    @classmethod
    def open(cls, ctx: SourceContext) -> RaplSource:
        domains = discover_domains(ctx.sysfs_root)
        if not domains:
            raise SourceUnavailable("no RAPL package domain under /sys/class/powercap")
        return cls(domains, 1.0 / ctx.cfg.rate_hz)

    def read(self) -> PowerReading:
        delta_j = sum(d.delta_uj() for d in self.domains) / 1e6
        now = self._clock()
        dt = now - (self._last_t if self._last_t is not None else now)
        self._last_t = now
        self._energy_j += delta_j
        power = delta_j / dt if dt > 0 else 0.0
        return PowerReading(power_w=power, energy_j=self._energy_j)
