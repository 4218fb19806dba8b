"""Random and hand-made fleets shared by the allocator tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from coordinator.allocator import FleetArrays
from coordinator.allocator.model import device_error, update_bytes
from coordinator.allocator.solve import bit_bounds


def make_fleet(
    n: int,
    *,
    params: int = 100_000,
    deadline_s: float = 30.0,
    error_budget: float = 1e-3,
    steps: Optional[np.ndarray] = None,
    **columns: object,
) -> FleetArrays:
    """n devices with plain defaults; ``columns`` override any per-device array."""
    base = {
        "kappa": 5e-28,
        "cycles": 1e10,
        "f_min_hz": 5e8,
        "f_max_hz": 2e9,
        "uplink_bytes_per_s": 1e5,
        "energy_per_byte_j": 1e-6,
        "weight_range": 0.02,
        "samples": 100.0,
        "bits_min": 1.0,
        "bits_max": 16.0,
    }
    base.update(columns)  # type: ignore[arg-type]
    arrays = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in base.items()}
    return FleetArrays(
        ids=tuple(f"d{i}" for i in range(n)),
        params=params,
        deadline_s=deadline_s,
        error_budget=error_budget,
        header_bytes=160.0,
        f_steps_hz=np.empty((n, 0)) if steps is None else steps,
        **arrays,
    )


def random_fleet(rng: np.random.Generator, n: int, with_steps: bool = False) -> FleetArrays:
    """A feasible random fleet where compute and upload both matter and the budget binds."""
    while True:
        params = int(rng.integers(10_000, 1_000_000))
        f_min = rng.uniform(3e8, 8e8, n)
        f_max = rng.uniform(1.2e9, 2.4e9, n)
        steps = None
        if with_steps:
            m = 8
            steps = np.sort(rng.uniform(f_min[:, None], f_max[:, None], (n, m)), axis=1)
            steps[:, -1] = f_max
        fleet = make_fleet(
            n,
            params=params,
            steps=steps,
            kappa=rng.uniform(1e-28, 1e-27, n),
            cycles=rng.uniform(1e9, 3e10, n),
            f_min_hz=f_min,
            f_max_hz=f_max,
            uplink_bytes_per_s=np.exp(rng.uniform(np.log(5e4), np.log(1e7), n)),
            energy_per_byte_j=np.exp(rng.uniform(np.log(1e-8), np.log(1e-5), n)),
            weight_range=rng.uniform(0.005, 0.05, n),
            samples=rng.uniform(100, 1000, n),
            bits_min=rng.integers(1, 4, n).astype(float),
            bits_max=rng.integers(10, 17, n).astype(float),
        )
        low = fleet.bits_min
        t_min = fleet.cycles / fleet.f_max_hz + update_bytes(fleet, low) / fleet.uplink_bytes_per_s
        deadline = float(t_min.max() * rng.uniform(1.1, 2.0))
        q0 = rng.uniform(4.0, 9.0)
        budget = float(device_error(fleet, np.clip(np.full(n, q0), low, fleet.bits_max)).sum())
        fleet = replace(fleet, deadline_s=deadline, error_budget=budget)
        high = np.floor(bit_bounds(fleet).high + 1e-9)
        if (high >= low).all() and device_error(fleet, high).sum() <= budget:
            return fleet
