"""jetson-stats (``jtop``) as a power source, where its service runs.

``jtop`` is imported lazily (optional extra ``greenfed[jetson]``). We read the raw
``power`` values only (``jetson.power["tot"]["power"]``, mW) and never ``avg`` (a halving
average, not a mean). jtop refreshes at its own interval; we keep it at ≥ 0.5 s.
The service listens on ``/run/jtop.sock``; a user outside group ``jtop`` cannot open it.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from .base import PowerReading, PowerSource, Probe, SourceContext
from .errors import SensingError, SensorPermissionError, SensorReadError, SourceUnavailable
from .rails import gpu_rail_of
from .sysfs import under

SOCKET = "/run/jtop.sock"
JTOP_MIN_PERIOD_S = 0.5


def service_status(ctx: SourceContext) -> str:
    """One line on the jtop service: installed, running, accessible."""
    try:
        import jtop  # noqa: F401
    except ImportError:
        return "jetson-stats not installed (pip install 'greenfed[jetson]')"
    sock = under(ctx.sysfs_root, SOCKET)
    if not sock.exists():
        return "jtop.service not running (sudo systemctl restart jtop.service)"
    if not os.access(sock, os.R_OK | os.W_OK):
        return (
            "no access to /run/jtop.sock: add the user to group jtop "
            "(sudo usermod -aG jtop $USER, then log in again)"
        )
    return "ok"


class JtopSource(PowerSource):
    name = "jtop"
    min_period_s = JTOP_MIN_PERIOD_S

    def __init__(self, handle: Any, scope: str, period_s: float) -> None:
        super().__init__(scope=scope, sample_period_s=period_s)
        self._jetson = handle

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        status = service_status(ctx)
        if status != "ok":
            return Probe(cls.name, False, status)
        return Probe(cls.name, True, detail={"service": "ok"})

    @classmethod
    def open(cls, ctx: SourceContext) -> JtopSource:
        status = service_status(ctx)
        if status.startswith("no access"):
            raise SensorPermissionError(status)
        if status != "ok":
            raise SourceUnavailable(status)
        from jtop import JtopException, jtop  # type: ignore[import-not-found]

        interval = max(ctx.cfg.jtop_interval_s, JTOP_MIN_PERIOD_S)
        handle = jtop(interval=interval)
        try:
            handle.start()
        except JtopException as e:
            raise SourceUnavailable(f"jtop: {e}") from e
        power = handle.power or {}
        if "tot" not in power:
            handle.close()
            raise SourceUnavailable("jtop reports no power total on this board")
        scope = f"jtop total ({power['tot'].get('name', 'board input')})"
        src = cls(handle, scope, max(interval, 1.0 / ctx.cfg.rate_hz))
        gpu = gpu_rail_of(power.get("rail", {}))
        if gpu is not None:
            src.gpu_rail, src.gpu_rail_covers = gpu
        return src

    def read(self) -> PowerReading:
        try:
            power: Dict[str, Any] = self._jetson.power
            total_mw = float(power["tot"]["power"])
            rails = {k: float(v["power"]) / 1000.0 for k, v in power.get("rail", {}).items()}
        except (KeyError, TypeError, ValueError) as e:
            raise SensorReadError(f"jtop: unexpected power record: {e}") from e
        except Exception as e:  # jtop raises its own exceptions when the service dies
            raise SensorReadError(f"jtop: {e}") from e
        return PowerReading(power_w=total_mw / 1000.0, rails_w=rails)

    def close(self) -> None:
        try:
            self._jetson.close()
        except Exception as e:  # closing a dead connection is not worth failing for
            raise SensingError(f"jtop close: {e}") from e
