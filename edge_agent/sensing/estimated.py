"""The explicit fallback: a utilisation model, labelled ``estimated`` in every record.

    P = P_idle + (P_max − P_idle) · u  (+ P_radio while a "communicate" window is open)

``u`` is the busy fraction since the previous reading of this agent's own process tree
(default) or of all CPUs (``utilisation = "system"``), see utilisation.py; the scope says
which. The linear model is Fan, Weber & Barroso, "Power provisioning for a warehouse-sized
computer", ISCA 2007. The constants per board class and their sources
are tabulated in docs/sensing.md; the ``basis`` field below says how strong each is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .base import PowerReading, PowerSource, Probe, SourceContext
from .errors import SourceUnavailable
from .sysfs import read_opt_text, under
from .utilisation import make_utilisation

COMMUNICATE = "communicate"


@dataclass(frozen=True)
class BoardClass:
    """Constants of the estimated model for one class of board (W)."""

    name: str
    idle_w: float
    max_w: float
    radio_w: float
    basis: str


# Sources (full citations in docs/sensing.md, "The estimated model"):
#  [N1] NVIDIA Jetson Linux Developer Guide r36, Platform Power and Performance (nvpmodel budgets)
#  [N2] NVIDIA developer forum 348662: tuned Orin Nano 8GB, VDD_IN 2180 mW near 0% load
#  [N3] NVIDIA developer forum 323456, quoting the module data sheet: AGX Orin 64GB up to 60 W
#  [P4] chipwired.com/raspberry-pi-power-use: Pi 4 idle 2.2-2.3 W, high load 5.1-5.4 W (USB meter)
#  [P5] shared/fixtures/rpi5_pmic_read_adc.txt: a real Pi 5 under load, Σ V·I = 7.24 W
#  [I1] Intel ARK, Core i7-1165G7: configurable TDP-up 28 W
#  [F7] Fan, Weber, Barroso, ISCA 2007: idle ≈ 50-60 % of peak for servers
BOARD_CLASSES: Dict[str, BoardClass] = {
    "jetson-orin-nano": BoardClass("jetson-orin-nano", 2.2, 15.0, 0.7, "idle [N2], max [N1]"),
    "jetson-agx-orin": BoardClass("jetson-agx-orin", 7.5, 60.0, 0.7, "max [N3]; idle assumed"),
    "jetson-nano": BoardClass("jetson-nano", 1.5, 10.0, 0.7, "max [N1 r32]; idle assumed"),
    "jetson-xavier-nx": BoardClass(
        "jetson-xavier-nx", 3.0, 20.0, 0.7, "max: 20 W mode [N1 r35]; idle assumed"
    ),
    "jetson-agx-xavier": BoardClass(
        "jetson-agx-xavier", 5.0, 30.0, 0.7, "max: 30 W mode [N1 r35]; idle assumed"
    ),
    "jetson-tx2": BoardClass("jetson-tx2", 2.0, 15.0, 0.7, "max: MAXN 15 W [N1 r32]; idle assumed"),
    "rpi4": BoardClass("rpi4", 2.3, 5.4, 0.7, "idle and max [P4]; radio [P4]"),
    "rpi5": BoardClass("rpi5", 2.3, 7.2, 0.7, "max [P5]; idle = Pi 4 proxy [P4]"),
    "x86-laptop": BoardClass("x86-laptop", 5.0, 28.0, 1.0, "max [I1]; idle assumed"),
    "generic": BoardClass("generic", 5.0, 10.0, 0.7, "ratio [F7]; absolute values assumed"),
}

#: (substring of /proc/device-tree/model, class); first match wins. L4T r32 names some
#: developer kits by carrier codename: "Jetson-AGX" (AGX Xavier), "quill" (TX2).
MODEL_PATTERNS: List[Tuple[str, str]] = [
    ("AGX Orin", "jetson-agx-orin"),
    ("Orin NX", "jetson-orin-nano"),
    ("Orin Nano", "jetson-orin-nano"),
    ("Xavier NX", "jetson-xavier-nx"),
    ("AGX Xavier", "jetson-agx-xavier"),
    ("Jetson-AGX", "jetson-agx-xavier"),
    ("TX2", "jetson-tx2"),
    ("quill", "jetson-tx2"),
    ("Jetson Nano", "jetson-nano"),
    ("Raspberry Pi 5", "rpi5"),
    ("Raspberry Pi 4", "rpi4"),
    ("Raspberry Pi 400", "rpi4"),
]

#: (module part number in /proc/device-tree/compatible, class): for carriers whose model
#: string names the carrier, not the module. p3701 AGX Orin, p3767 Orin NX/Nano, p3668
#: Xavier NX, p2888 AGX Xavier, p3310/p3636 TX2/TX2 NX, p3448 Nano.
COMPATIBLE_PATTERNS: List[Tuple[str, str]] = [
    ("p3701-", "jetson-agx-orin"),
    ("p3767-", "jetson-orin-nano"),
    ("p3668-", "jetson-xavier-nx"),
    ("p2888-", "jetson-agx-xavier"),
    ("p3310-", "jetson-tx2"),
    ("p3636-", "jetson-tx2"),
    ("p3448-", "jetson-nano"),
]

LAPTOP_CHASSIS = {"8", "9", "10", "14", "31", "32"}  # SMBIOS: portable, laptop, notebook...


def board_model(sysfs_root: Path) -> Optional[str]:
    """``/proc/device-tree/model`` (NUL stripped), or None off device-tree machines."""
    return read_opt_text(under(sysfs_root, "/proc/device-tree/model"))


def detect_board_class(sysfs_root: Path, configured: str = "auto") -> str:
    """The configured class, else from the device-tree model, else laptop/generic."""
    if configured != "auto":
        if configured not in BOARD_CLASSES:
            raise SourceUnavailable(
                f"unknown board_class {configured!r}; known: {', '.join(BOARD_CLASSES)}"
            )
        return configured
    model = board_model(sysfs_root) or ""
    for needle, cls in MODEL_PATTERNS:
        if needle in model:
            return cls
    compatible = read_opt_text(under(sysfs_root, "/proc/device-tree/compatible")) or ""
    for needle, cls in COMPATIBLE_PATTERNS:
        if needle in compatible:
            return cls
    chassis = read_opt_text(under(sysfs_root, "/sys/class/dmi/id/chassis_type"))
    if chassis in LAPTOP_CHASSIS:
        return "x86-laptop"
    return "generic"


class EstimatedSource(PowerSource):
    """Utilisation model; ``estimated`` is True and every record says so."""

    name = "estimated"
    estimated = True

    def __init__(
        self,
        board: BoardClass,
        period_s: float,
        utilisation: Optional[Callable[[], float]] = None,
        radio_w: Optional[float] = None,
        reasons: Optional[Dict[str, str]] = None,
    ) -> None:
        radio = board.radio_w if radio_w is None else radio_w
        util = utilisation if utilisation is not None else make_utilisation("process")
        self.utilisation_label = str(getattr(util, "label", "a given reader"))
        super().__init__(
            scope=(
                f"estimated whole board ({board.name}: {board.idle_w} W idle, "
                f"{board.max_w} W max, +{radio} W radio while communicating; "
                f"utilisation: {self.utilisation_label})"
            ),
            sample_period_s=period_s,
        )
        self.board = board
        self.radio_w = radio
        self.fallback_reasons: Dict[str, str] = dict(reasons or {})
        self._util = util
        self._communicating = 0

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        cls_name = detect_board_class(ctx.sysfs_root, ctx.cfg.board_class)
        return Probe(cls.name, True, detail={"board_class": cls_name})

    @classmethod
    def open(cls, ctx: SourceContext, reasons: Optional[Dict[str, str]] = None) -> EstimatedSource:
        board = BOARD_CLASSES[detect_board_class(ctx.sysfs_root, ctx.cfg.board_class)]
        return cls(
            board,
            1.0 / ctx.cfg.rate_hz,
            utilisation=make_utilisation(ctx.cfg.utilisation),
            radio_w=ctx.cfg.radio_power_w,
            reasons=reasons,
        )

    @property
    def model_idle_power_w(self) -> Optional[float]:
        return self.board.idle_w

    @property
    def board_class(self) -> str:
        return self.board.name

    def power_at(self, utilisation: float) -> float:
        u = min(1.0, max(0.0, utilisation))
        p = self.board.idle_w + (self.board.max_w - self.board.idle_w) * u
        return p + (self.radio_w if self._communicating else 0.0)

    def read(self) -> PowerReading:
        return PowerReading(power_w=self.power_at(self._util()))

    def window_event(self, name: str, opened: bool) -> None:
        if name == COMMUNICATE:
            self._communicating += 1 if opened else -1
            self._communicating = max(0, self._communicating)

    def describe(self) -> Dict[str, object]:
        d = super().describe()
        d.update(
            board_class=self.board.name,
            idle_w=self.board.idle_w,
            max_w=self.board.max_w,
            radio_w=self.radio_w,
            basis=self.board.basis,
            utilisation=self.utilisation_label,
        )
        return d
