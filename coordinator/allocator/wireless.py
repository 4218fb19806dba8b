"""Simulated fleets for studies without boards: the wireless model of Yang et al. (TWC 2021).

Model (Z. Yang, M. Chen, W. Saad, C. S. Hong, M. Shikh-Bahaei, "Energy Efficient Federated
Learning Over Wireless Communication Networks", IEEE TWC 20(3), 2021, arXiv:1911.02417):

- devices placed uniformly at random in a disc of radius ``cell_radius_m`` around the base
  station (uniform in area, at least ``min_distance_m`` away);
- path loss ``128.1 + 37.6*log10(d_km)`` dB plus log-normal shadowing with standard deviation
  ``shadowing_db`` (the 3GPP macro-cell model Yang et al. simulate with);
- channel gain ``h = 10**(-loss_db/10)``; each device sends on its own band of ``bandwidth_hz``
  (FDMA, as in the paper) at power ``tx_power_w``; noise density ``noise_dbm_per_hz``;
- Shannon rate ``r = B*log2(1 + p*h/(N0*B))`` bit/s, so ``uplink_bytes_per_s = r/8`` and the
  energy per uploaded byte is ``p / uplink_bytes_per_s``;
- compute: ``kappa = 1e-28`` and cycles per sample uniform in [1, 3]*10^4 as in the paper, times
  samples and local epochs (our choice, so that compute energy is not negligible).

The paper's figures above were recalled, not re-read (only its abstract was reachable here);
docs/allocator.md says so too.

Our choices, documented in docs/allocator.md: a dedicated 1 MHz band per device (the band does
not shrink with the fleet size, so per-device figures stay comparable across sizes), p = 0.2 W
(23 dBm), the deadline and budget rules below. The deadline is ``deadline_factor`` times the
slowest device's fastest fp32 round (so every scheme is feasible) and the error budget is the
error of uniform ``budget_bits`` bits (so on-demand delivers the quality of fixed-``budget_bits``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from .fleet import DeviceCoeffs, Fleet
from .model import FP32_BITS, FleetArrays, default_header_bytes, device_error, update_bytes


@dataclass(frozen=True)
class WirelessConfig:
    """Parameters of a simulated fleet (units in the names)."""

    cell_radius_m: float = 500.0
    min_distance_m: float = 10.0
    path_loss_db_at_1km: float = 128.1
    path_loss_db_per_decade: float = 37.6
    shadowing_db: float = 8.0
    bandwidth_hz: float = 1e6
    tx_power_w: float = 0.2
    noise_dbm_per_hz: float = -174.0
    kappa: float = 1e-28
    cycles_per_sample: Tuple[float, float] = (1e4, 3e4)
    samples: Tuple[int, int] = (200, 800)
    local_epochs: int = 20
    f_min_hz: float = 0.5e9
    f_max_hz: float = 2.0e9
    weight_range: Tuple[float, float] = (0.01, 0.1)
    params: int = 278_000
    tensors: int = 40
    bits_min: int = 2
    bits_max: int = 16
    deadline_factor: float = 1.2
    budget_bits: int = 8


def shannon_bytes_per_s(
    gain: np.ndarray, tx_power_w: float, bandwidth_hz: float, noise_dbm_per_hz: float
) -> np.ndarray:
    """Uplink rate in bytes/s: B*log2(1 + p*h/(N0*B)) / 8."""
    n0_w_per_hz = 10.0 ** ((noise_dbm_per_hz - 30.0) / 10.0)
    snr = tx_power_w * gain / (n0_w_per_hz * bandwidth_hz)
    return bandwidth_hz * np.log2(1.0 + snr) / 8.0


def channel_gain(distance_m: np.ndarray, shadow_db: np.ndarray, cfg: WirelessConfig) -> np.ndarray:
    """Linear gain of the path loss model with the given shadowing draws (dB)."""
    loss_db = (
        cfg.path_loss_db_at_1km
        + cfg.path_loss_db_per_decade * np.log10(distance_m / 1000.0)
        + shadow_db
    )
    return 10.0 ** (-loss_db / 10.0)


def virtual_fleet(n: int, seed: int = 0, cfg: WirelessConfig = WirelessConfig()) -> FleetArrays:
    """``n`` simulated devices drawn with ``seed`` (same seed, same fleet)."""
    rng = np.random.default_rng(seed)
    r0, r1 = cfg.min_distance_m, cfg.cell_radius_m
    distance_m = np.sqrt(rng.uniform(r0**2, r1**2, n))
    gain = channel_gain(distance_m, rng.normal(0.0, cfg.shadowing_db, n), cfg)
    rate = shannon_bytes_per_s(gain, cfg.tx_power_w, cfg.bandwidth_hz, cfg.noise_dbm_per_hz)
    samples = rng.integers(cfg.samples[0], cfg.samples[1] + 1, n).astype(float)
    cycles = rng.uniform(*cfg.cycles_per_sample, n) * samples * cfg.local_epochs
    header = default_header_bytes(cfg.tensors)
    base = FleetArrays(
        ids=tuple(f"sim-{i:06d}" for i in range(n)),
        params=cfg.params,
        deadline_s=1.0,
        error_budget=1.0,
        header_bytes=header,
        kappa=np.full(n, cfg.kappa),
        cycles=cycles,
        f_min_hz=np.full(n, cfg.f_min_hz),
        f_max_hz=np.full(n, cfg.f_max_hz),
        f_steps_hz=np.empty((n, 0)),
        uplink_bytes_per_s=rate,
        energy_per_byte_j=cfg.tx_power_w / rate,
        weight_range=rng.uniform(*cfg.weight_range, n),
        samples=samples,
        bits_min=np.full(n, float(cfg.bits_min)),
        bits_max=np.full(n, float(cfg.bits_max)),
    )
    fastest_fp32_s = cycles / cfg.f_max_hz + update_bytes(base, np.full(n, FP32_BITS)) / rate
    budget = float(device_error(base, np.full(n, float(cfg.budget_bits))).sum())
    return replace(
        base,
        deadline_s=float(cfg.deadline_factor * fastest_fp32_s.max()),
        error_budget=budget,
    )


def to_fleet(arrays: FleetArrays) -> Fleet:
    """The :class:`Fleet` form of a simulated fleet (for writing a FLEET.json)."""
    devices = tuple(
        DeviceCoeffs(
            id=arrays.ids[i],
            kappa=float(arrays.kappa[i]),
            cycles=float(arrays.cycles[i]),
            f_min_hz=float(arrays.f_min_hz[i]),
            f_max_hz=float(arrays.f_max_hz[i]),
            uplink_bytes_per_s=float(arrays.uplink_bytes_per_s[i]),
            energy_per_byte_j=float(arrays.energy_per_byte_j[i]),
            weight_range=float(arrays.weight_range[i]),
            samples=float(arrays.samples[i]),
            bits_min=int(arrays.bits_min[i]),
            bits_max=int(arrays.bits_max[i]),
        )
        for i in range(arrays.size)
    )
    return Fleet(
        params=arrays.params,
        deadline_s=arrays.deadline_s,
        error_budget=arrays.error_budget,
        devices=devices,
        header_bytes=arrays.header_bytes,
    )
