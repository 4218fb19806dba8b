"""Layer profiles of the presets for the planner tests (pure data, no torch).

``fixtures/unet_layers.json`` holds, per preset (8x8 images, one channel), every unit's exact
weight, carry and saved-activation bytes and its forward+backward FLOPs per sample, written
by :func:`regenerate` from the real model (``test_profiles.py`` checks it still matches).

Cycles for a Raspberry Pi 4 are FLOPs x :data:`PI4_CYCLES_PER_FLOP`, derived, not measured
on a Pi: DESIGN.md §5 measured ~37 steps/s of batch 64 for this size of UNet on a 2-thread
x86 and puts a Pi 4 10-25x slower for conv work; 15x at 1.5 GHz gives ~9.5e6 cycles per
sample, 0.65 cycles per FLOP for pi-small's 14.4 MFLOP (convolutions and matrix products,
forward and backward) per sample. Clock steps, kappa and memory of the fixture Pi 4 are in
:func:`pi4`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from greenfed.pool import LayerProfile, MemberSpec

FIXTURE = Path(__file__).parent / "fixtures" / "unet_layers.json"
PI4_CYCLES_PER_FLOP = 0.65
#: Raspberry Pi 4 cpufreq steps (600-1500 MHz in 100 MHz steps).
PI4_STEPS_HZ = tuple(f * 1e8 for f in range(6, 16))
#: (max - idle) = 5.4 - 2.3 W at 1.5 GHz (docs/sensing.md's Pi 4 figures) over f^3.
PI4_KAPPA = (5.4 - 2.3) / (1.5e9) ** 3
GIGABIT_BYTES_PER_S = 117e6  # what gigabit Ethernet carries in practice
ETHERNET_W = 0.5  # assumed power of moving data over the link, above idle


def layers(preset: str, cycles_per_flop: float = PI4_CYCLES_PER_FLOP) -> List[LayerProfile]:
    raw = json.loads(FIXTURE.read_text())[preset]
    out = []
    for d in raw:
        d = dict(d)
        d["cycles_per_sample"] = d.pop("flops_per_sample") * cycles_per_flop
        out.append(LayerProfile(**d))
    return out


def pi4(
    name: str,
    memory_bytes: float = 4e9,
    rate: float = GIGABIT_BYTES_PER_S,
    link_w: float = ETHERNET_W,
    speed: float = 1.0,
) -> MemberSpec:
    return MemberSpec(
        id=name,
        kappa=PI4_KAPPA,
        f_steps_hz=PI4_STEPS_HZ,
        memory_bytes=memory_bytes,
        link_bytes_per_s=rate,
        link_energy_per_byte_j=link_w / rate,
        speed_scale=speed,
    )


def regenerate() -> Dict[str, list]:
    """The fixture's content from the real models (needs torch >= 2.1)."""
    from edge_agent.pool.profiling import flop_profiles
    from greenfed.ddpm import PRESETS

    out: Dict[str, list] = {}
    for name in ("pi-small", "pi-base"):
        rows = []
        for lp in flop_profiles(PRESETS[name], 1.0):
            d = dict(lp.__dict__)
            d["flops_per_sample"] = d.pop("cycles_per_sample")
            rows.append(d)
        out[name] = rows
    return out


if __name__ == "__main__":  # python -m tests.pool.layers: rewrite the fixture
    FIXTURE.write_text(json.dumps(regenerate(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
