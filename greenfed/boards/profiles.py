"""Board profiles: what an emulated board of a real class looks like to the energy model.

A profile names a real board class and gives the figures an emulated board needs: the CPU
clock's frequency steps, idle and peak power, a radio power while uploading, its CPU speed
relative to a Raspberry Pi 4, its core count and memory. Every figure carries where it comes
from in :attr:`BoardProfile.basis`; the full citations are in docs/emulated.md. Figures marked
*assumed* have no public measurement behind them.

The power model (the design's, DESIGN.md §2): at clock f a board whose cores are busy a
fraction u of the time draws

    P(f, u) = P_idle + u · (P_peak − P_idle) · (f / f_max)³   (+ P_radio while uploading)

so P_peak is its full-load power at the top step and κ = (P_peak − P_idle) / f_max³ is the
effective switched capacitance a calibration should recover. The cubic is the model's
assumption (dynamic power ∝ f·V², V roughly ∝ f): real boards flatten at their lowest steps,
where the voltage stops falling.

Speed: an emulated board at its top step gets ``relative_speed × cpu_per_unit`` host CPUs
(coordinator/boards); at clock f it gets that share × f / f_max. Relative speeds keep the
boards' ratios; the absolute time scale is the fleet's (docs/emulated.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from greenfed.errors import ConfigError

MHZ = 1e6


def _steps(start_mhz: float, stop_mhz: float, step_mhz: float) -> Tuple[float, ...]:
    n = round((stop_mhz - start_mhz) / step_mhz)
    return tuple((start_mhz + i * step_mhz) * MHZ for i in range(n + 1))


@dataclass(frozen=True)
class BoardProfile:
    """One board class as an emulated board: clocks (Hz), power (W), speed, memory."""

    name: str
    title: str
    steps_hz: Tuple[float, ...]
    idle_w: float
    peak_w: float
    radio_w: float
    relative_speed: float  # CPU throughput of the whole board relative to a Raspberry Pi 4
    cores: int
    memory_bytes: int
    basis: Dict[str, str] = field(default_factory=dict)  # figure -> where it comes from

    def __post_init__(self) -> None:
        if not self.steps_hz or list(self.steps_hz) != sorted(set(self.steps_hz)):
            raise ConfigError(f"board profile {self.name}: steps must be ascending and unique")
        if not 0 <= self.idle_w < self.peak_w or self.radio_w < 0 or self.relative_speed <= 0:
            raise ConfigError(f"board profile {self.name}: need 0 <= idle < peak, speed > 0")

    @property
    def f_min_hz(self) -> float:
        return self.steps_hz[0]

    @property
    def f_max_hz(self) -> float:
        return self.steps_hz[-1]

    @property
    def kappa(self) -> float:
        """κ in W/Hz³: the dynamic power at full load, (P_peak − P_idle), over f_max³."""
        return (self.peak_w - self.idle_w) / self.f_max_hz**3

    def dynamic_power_w(self, freq_hz: float, busy: float) -> float:
        """Power above idle (W) at clock ``freq_hz`` with the cores busy a fraction ``busy``."""
        return max(0.0, busy) * self.kappa * freq_hz**3

    def describe(self) -> str:
        """One line for scopes and logs."""
        return (
            f"{self.title}: {self.idle_w:g} W idle, {self.peak_w:g} W at "
            f"{self.f_max_hz / 1e9:.2f} GHz full load, P_dyn ∝ f³"
        )


# Where the figures come from (full citations in docs/emulated.md, "Profiles"):
#  [R1] Raspberry Pi documentation, config.txt "Overclocking options": default arm_freq
#       1800 MHz (Pi 4B rev 1.4, Pi 400, CM4 boost) and 2400 MHz (Pi 5); arm_freq_min 600
#       (Pi 4) and 1500 (Pi 5).
#  [R5] Raspberry Pi, "Introducing Raspberry Pi 5" (2023): "2–3× increase in CPU performance
#       relative to Raspberry Pi 4".
#  [L1] leoncode.co.uk "Raspberry Pi CPU Benchmarks": sysbench cpu, 4 threads: Pi 4 5901,
#       Pi 5 10945 events/s (1.85×).
#  [P4] chipwired.com "How much power a Raspberry Pi uses": Pi 4 idle 2.2–2.3 W, high load
#       5.1–5.4 W at the USB input; Wi-Fi traffic adds ~0.7 W (5.4 − 4.7 W).
#  [P5] a real Raspberry Pi 5 PMIC reading under load (vcgencmd pmic_read_adc, this project's
#       shared fixture): Σ V·I = 7.24 W.
#  [N1] NVIDIA Jetson Linux Developer Guide, Platform Power and Performance: Orin Nano 15 W
#       mode runs 6 CPU cores at up to 1.51 GHz; Nano (r32) MAXN 10 W.
#  [N2] NVIDIA developer forum 348662: an Orin Nano 8GB at ~0 % load, VDD_IN 2180 mW.
#  [S]  cpufreq step tables as the project's copied board trees hold them
#       (tests/sensing/fixtures/{rpi4,rpi5,orin_nano_jp6,nano_jp4}/.../policy0/
#       scaling_available_frequencies).
ORIN_NANO_CPU_KHZ = (
    115200, 192000, 268800, 345600, 422400, 499200, 576000, 652800, 729600, 806400, 883200,
    960000, 1036800, 1113600, 1190400, 1267200, 1344000, 1420800, 1497600, 1510400,
)  # fmt: skip
JETSON_NANO_CPU_KHZ = (
    102000, 204000, 307200, 403200, 518400, 614400, 710400, 825600, 921600, 1036800, 1132800,
    1224000, 1326000, 1428000, 1479000,
)  # fmt: skip

PROFILES: Dict[str, BoardProfile] = {
    p.name: p
    for p in (
        BoardProfile(
            name="rpi4",
            title="Raspberry Pi 4 Model B (4x Cortex-A72)",
            steps_hz=_steps(600, 1800, 100),
            idle_w=2.3,
            peak_w=5.4,
            radio_w=0.7,
            relative_speed=1.0,
            cores=4,
            memory_bytes=4 << 30,
            basis={
                "steps": "600-1800 MHz [R1], 100 MHz steps [S]",
                "power": "idle 2.3 W, high load 5.4 W at the USB input [P4]",
                "radio": "0.7 W: Wi-Fi traffic over CPU load [P4]",
                "speed": "the reference (1.0)",
                "memory": "4 GB (sold with 1, 2, 4 or 8 GB)",
            },
        ),
        BoardProfile(
            name="rpi5",
            title="Raspberry Pi 5 (4x Cortex-A76)",
            steps_hz=_steps(1500, 2400, 100),
            idle_w=2.3,
            peak_w=7.2,
            radio_w=0.7,
            relative_speed=2.0,
            cores=4,
            memory_bytes=8 << 30,
            basis={
                "steps": "1500-2400 MHz [R1], 100 MHz steps [S]",
                "power": "peak 7.2 W: a loaded Pi 5's PMIC rails [P5]; idle: Pi 4 proxy [P4], "
                "assumed",
                "radio": "Pi 4's [P4], assumed",
                "speed": "2.0: between sysbench's 1.85x [L1] and the vendor's 2-3x [R5]",
                "memory": "8 GB (sold with 2, 4, 8 or 16 GB)",
            },
        ),
        BoardProfile(
            name="orin-nano-cpu",
            title="Jetson Orin Nano 8GB, CPU only (6x Cortex-A78AE)",
            steps_hz=tuple(k * 1e3 for k in ORIN_NANO_CPU_KHZ),
            idle_w=2.2,
            peak_w=7.0,
            radio_w=0.7,
            relative_speed=2.0,
            cores=6,
            memory_bytes=8 << 30,
            basis={
                "steps": "115.2-1510.4 MHz, 20 steps [S]; 1.51 GHz top in the 15 W mode [N1]",
                "power": "idle 2.2 W: VDD_IN near 0 % load [N2]; peak 7.0 W CPU-only at "
                "full load: assumed (the 7 W nvpmodel budget [N1]; no public CPU-only "
                "measurement found)",
                "radio": "Pi 4's [P4], assumed",
                "speed": "2.0: assumed equal to a Pi 5 (6 cores x 1.51 GHz vs 4 x 2.4 GHz, "
                "a newer core); no benchmark at hand",
                "memory": "8 GB, shared with the GPU",
            },
        ),
        BoardProfile(
            name="jetson-nano-cpu",
            title="Jetson Nano 4GB, CPU only (4x Cortex-A57)",
            steps_hz=tuple(k * 1e3 for k in JETSON_NANO_CPU_KHZ),
            idle_w=1.5,
            peak_w=5.0,
            radio_w=0.7,
            relative_speed=0.6,
            cores=4,
            memory_bytes=4 << 30,
            basis={
                "steps": "102-1479 MHz, 15 steps [S]",
                "power": "idle 1.5 W and CPU-only peak 5.0 W: assumed (half the 10 W MAXN "
                "budget [N1])",
                "radio": "Pi 4's [P4], assumed",
                "speed": "0.6: assumed (Cortex-A57 at 1.48 GHz against the Pi 4's A72 at 1.8 GHz)",
                "memory": "4 GB, shared with the GPU",
            },
        ),
    )
}


def get_profile(name: str) -> BoardProfile:
    """The profile called ``name``; :class:`ConfigError` lists the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown board profile {name!r}; known: {', '.join(PROFILES)}") from None


def profile_names() -> List[str]:
    return list(PROFILES)
