"""Raspberry Pi 5: PMIC rail ADCs through ``vcgencmd pmic_read_adc``.

Output lines (one per ADC channel)::

    VDD_CORE_A current(7)=6.22421000A
    VDD_CORE_V volt(15)=0.86173300V
    EXT5V_V volt(24)=5.09066000V        input voltage only, no current: not a rail

Rails are paired by name (``X_A`` with ``X_V``); total = Σ V·I. Scope: the PMIC's rails,
which excludes conversion losses and anything fed from 5 V directly (USB devices). A read
costs ~23 ms, so the sampler stays at ≤ 10 Hz. Older firmware (and the Pi 4) answers
``Command not registered``; a user outside group ``video`` gets ``VCHI initialization failed``.
"""

from __future__ import annotations

import re
from typing import Dict, Tuple

from .base import PowerReading, PowerSource, Probe, SourceContext
from .errors import (
    CommandError,
    SensingError,
    SensorPermissionError,
    SensorReadError,
    SourceUnavailable,
)

_LINE = re.compile(
    r"^\s*(?P<rail>\S+)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<val>[-+0-9.eE]+)[AV]\s*$"
)
PMIC_MIN_PERIOD_S = 0.1  # ≤ 10 Hz


def parse_pmic_read_adc(text: str) -> Dict[str, Tuple[float, float]]:
    """``{rail: (volts, amps)}`` for every rail that has both a current and a voltage."""
    if "Command not registered" in text:
        raise SourceUnavailable("vcgencmd has no pmic_read_adc (not a Pi 5, or old firmware)")
    if "VCHI initialization failed" in text or "failed to open vchiq" in text.lower():
        raise SensorPermissionError("vcgencmd cannot open /dev/vchiq: add the user to group video")
    amps: Dict[str, float] = {}
    volts: Dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        target = amps if m.group("kind") == "A" else volts
        target[m.group("rail")] = float(m.group("val"))
    rails = {r: (volts[r], amps[r]) for r in amps if r in volts}
    if not rails:
        raise SensorReadError(f"pmic_read_adc: no rail pairs in output {text[:80]!r}")
    return rails


class RpiPmicSource(PowerSource):
    name = "rpi5-pmic"
    min_period_s = PMIC_MIN_PERIOD_S

    def __init__(self, ctx: SourceContext, scope: str, period_s: float) -> None:
        super().__init__(scope=scope, sample_period_s=period_s)
        self._ctx = ctx

    def _query(self) -> Dict[str, Tuple[float, float]]:
        return _query(self._ctx)

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        try:
            rails = _query(ctx)
        except SensingError as e:
            return Probe(cls.name, False, str(e))
        return Probe(cls.name, True, detail={"scope": "PMIC rails", "rails": sorted(rails)})

    @classmethod
    def open(cls, ctx: SourceContext) -> RpiPmicSource:
        _query(ctx)
        return cls(
            ctx,
            "PMIC rails (Σ V·I; excludes conversion losses and 5 V-fed USB devices)",
            max(PMIC_MIN_PERIOD_S, 1.0 / ctx.cfg.rate_hz),
        )

    def read(self) -> PowerReading:
        try:
            rails = self._query()
        except SourceUnavailable as e:
            raise SensorReadError(str(e)) from e
        rails_w = {r: v * a for r, (v, a) in rails.items()}
        return PowerReading(power_w=sum(rails_w.values()), rails_w=rails_w)


def _query(ctx: SourceContext) -> Dict[str, Tuple[float, float]]:
    try:
        out = ctx.runner.run([ctx.cfg.vcgencmd, "pmic_read_adc"], ctx.cfg.command_timeout_s)
    except CommandError as e:
        text = str(e)
        if "Command not registered" in text or "VCHI" in text:
            return parse_pmic_read_adc(text)
        raise SourceUnavailable(f"vcgencmd pmic_read_adc: {text}") from e
    return parse_pmic_read_adc(out)
