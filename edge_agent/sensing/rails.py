"""Sources made of named rails (the INA3221 channels of a Jetson): the total is the module's
input rail where the board has one, else the sum of the rails, and the scope says which."""

from __future__ import annotations

from typing import Dict, List, Protocol, Sequence, Tuple

from .base import PowerReading, PowerSource, SourceContext
from .errors import SensorReadError, SourceUnavailable


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
        return {"scope": self.scope, "rails": [f"{r.chip}:{r.label}" for r in self.rails]}

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
