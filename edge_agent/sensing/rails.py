"""Sources made of named rails (the INA3221 channels of a Jetson): the total is the module's
input rail where the board has one, else the sum of the rails, and the scope says which.

The rail that feeds the GPU (:data:`GPU_RAILS`) is reported per window beside the total, so
a round trained on CUDA shows how much of the board's energy the GPU drew. Where the board
has only a combined CPU/GPU/CV rail (Orin Nano and NX, Xavier NX) that one is reported, and
its description says so.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

from .base import PowerReading, PowerSource, SourceContext
from .errors import SensorReadError, SourceUnavailable

#: GPU rails by INA3221 label, preferred first, with what each one covers.
GPU_RAILS: Dict[str, str] = {
    "VDD_GPU_SOC": "GPU and SoC",  # AGX Orin
    "VDD_GPU": "GPU",  # TX2 (tegrastats)
    "VDD_SYS_GPU": "GPU",  # TX2 (ina3221x rail name)
    "GPU": "GPU",  # AGX Xavier
    "POM_5V_GPU": "GPU",  # Nano (JetPack 4)
    "VDD_CPU_GPU_CV": "CPU, GPU and CV combined",  # Orin Nano / NX, Xavier NX
}


def gpu_rail_of(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """The rail key feeding the GPU and what it covers, from rail keys ("chip:LABEL" or
    "LABEL"); None when the board has no such rail."""
    by_label = {k.rsplit(":", 1)[-1].upper(): k for k in keys}
    for label, covers in GPU_RAILS.items():
        if label in by_label:
            return by_label[label], covers
    return None


class RailLike(Protocol):
    label: str
    chip: str

    def power_w(self) -> float: ...


class RailSource(PowerSource):
    """``rails``: every connected rail (reported per window); ``total``: what power_w sums."""

    total_labels: Tuple[str, ...] = ()
    chip_kind = ""  # how the scope names the chip, e.g. "INA3221"
    no_total_note = ""  # said in the scope when the board has no input rail

    def __init__(
        self, rails: Sequence[RailLike], total: Sequence[RailLike], scope: str, period_s: float
    ) -> None:
        super().__init__(scope=scope, sample_period_s=period_s)
        self.rails = list(rails)
        self.total = list(total)
        gpu = gpu_rail_of(f"{r.chip}:{r.label}" for r in self.rails)
        if gpu is not None:
            self.gpu_rail, self.gpu_rail_covers = gpu

    @classmethod
    def from_rails(cls, rails: Sequence[RailLike], ctx: SourceContext) -> RailSource:
        """The input rail as total where the board has one, else the sum of all rails."""
        inputs = [r for r in rails if r.label.upper() in cls.total_labels]
        if inputs:
            t = inputs[0]
            return cls(rails, [t], f"{t.label} (module input, {cls.chip_kind} {t.chip})",
                       1.0 / ctx.cfg.rate_hz)  # fmt: skip
        names = "+".join(r.label for r in rails)
        scope = f"sum of rails {names} ({cls.no_total_note})"
        return cls(rails, rails, scope, 1.0 / ctx.cfg.rate_hz)

    def probe_detail(self) -> Dict[str, object]:
        return {
            "scope": self.scope,
            "rails": [f"{r.chip}:{r.label}" for r in self.rails],
            "gpu_rail": self.gpu_rail,
        }

    def read(self) -> PowerReading:
        rails_w: Dict[str, float] = {}
        for r in self.rails:
            try:
                rails_w[f"{r.chip}:{r.label}"] = r.power_w()
            except SourceUnavailable as e:
                raise SensorReadError(f"{self.name} rail {r.label} vanished: {e}") from e
        total = sum(rails_w[f"{r.chip}:{r.label}"] for r in self.total)
        return PowerReading(power_w=total, rails_w=rails_w)


def require(rails: List[RailLike], why_not: str) -> List[RailLike]:
    if not rails:
        raise SourceUnavailable(why_not)
    return rails
