"""Continuous solution of the allocation problem (DESIGN.md §3): KKT roots and the search on mu.

Problem (bits q_k real, frequencies f_k real)::

    minimise  sum_k g_k(q_k),   g_k(q) = kappa*C*f_k(q)**2 + e*S(q),  f_k(q) = max(f_min, C/(T-S/r))
    s.t.      low_k <= q_k <= high_k,   sum_k c_k/(2**q_k - 1)**2 <= eps

``low`` is ``bits_min``; ``high`` is ``bits_max`` capped by the deadline at the top frequency.
g_k is convex and increasing: its derivative is ``e*a`` below the switch point q_s (where the
deadline frequency falls under f_min) and ``e*a + 2*kappa*a*f**3/r`` above it (a = d/8), with an
upward jump at q_s. For a multiplier mu, device k's bits minimise g_k(q) + mu*err_k(q): the root
of psi(q) = log g'(q) - log mu - log(-err'(q)) (increasing in q), clipped to [low, high].

Per mu, every device's root is found at once (numpy): the thresholds of log mu at which a device
leaves ``low``, crosses q_s and reaches ``high`` are closed-form, so only devices strictly inside
a smooth piece iterate, by bracketed Newton steps that fall back to bisection. The outer search on
t = log mu is a bracketed search on F(t) = log e(q(mu)) - log eps (monotone non-increasing):
false-position steps with the Illinois modification and forced bisection when the bracket does not
halve, so it keeps the guarantee of a binary search and usually needs ~10 evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

import numpy as np

from .model import (
    FleetArrays,
    cheapest_freq_hz,
    comm_energy_j,
    compute_energy_j,
    device_error,
    max_bits_for_deadline,
    round_time_s,
    update_bytes,
)
from .plan import DEADLINE, ERROR_BUDGET, Infeasibility

LN2 = float(np.log(2.0))
#: Newton iterations per multiplier (each is a bracketed step; typical use is 3-6).
INNER_MAX_ITER = 60
INNER_TOL_BITS = 1e-11
#: Outer search: stop when the error is within this relative distance below the budget.
OUTER_RTOL = 1e-10
OUTER_MAX_ITER = 200


@dataclass(frozen=True)
class BitBounds:
    """Real bit range per device: ``low`` = bits_min, ``high`` = min(bits_max, deadline cap)."""

    low: np.ndarray
    high: np.ndarray

    @property
    def deadline_ok(self) -> np.ndarray:
        return self.high >= self.low


def bit_bounds(fleet: FleetArrays) -> BitBounds:
    high = np.minimum(fleet.bits_max.astype(float), max_bits_for_deadline(fleet))
    return BitBounds(low=fleet.bits_min.astype(float), high=high)


def deadline_infeasibilities(fleet: FleetArrays, low: np.ndarray) -> List[Infeasibility]:
    """Devices that miss the deadline even at their top frequency with ``low`` bits."""
    t_s = round_time_s(fleet, low, fleet.f_top_hz)
    out = []
    for i in np.flatnonzero(t_s > fleet.deadline_s):
        out.append(
            Infeasibility(
                kind=DEADLINE,
                device_id=fleet.ids[i],
                value=float(t_s[i]),
                limit=fleet.deadline_s,
                unit="s",
                message=(
                    f"device {fleet.ids[i]}: {t_s[i]:.6g} s at f_max {fleet.f_top_hz[i]:.6g} Hz "
                    f"with {low[i]:g} bits, {t_s[i] - fleet.deadline_s:.6g} s over the deadline "
                    f"{fleet.deadline_s:g} s"
                ),
            )
        )
    return out


def over_budget(
    fleet: FleetArrays, bits: np.ndarray, what: str, detail: str = ""
) -> Optional[Infeasibility]:
    """The error budget check for ``bits`` (``what`` names them in the message); None if met."""
    err = float(device_error(fleet, bits).sum())
    if err <= fleet.error_budget:
        return None
    return Infeasibility(
        kind=ERROR_BUDGET,
        device_id=None,
        value=err,
        limit=fleet.error_budget,
        unit="error",
        message=f"error {err:.6g} {what} exceeds the budget {fleet.error_budget:.6g} by "
        f"{err - fleet.error_budget:.6g}{detail}",
    )


def budget_infeasibility(fleet: FleetArrays, high: np.ndarray) -> Optional[Infeasibility]:
    """The budget check at every device's highest bits; None when it holds."""
    err = float(device_error(fleet, high).sum())
    capped = int(np.count_nonzero(high < fleet.bits_max))
    return over_budget(
        fleet,
        high,
        "at every device's highest bits",
        f" ({err / fleet.error_budget:.3g}x); {capped} device(s) are capped below bits_max "
        "by the deadline",
    )


class _Kkt:
    """Per-device constants of the KKT condition for the devices that can move."""

    def __init__(self, fleet: FleetArrays, low: np.ndarray, high: np.ndarray) -> None:
        self.a = fleet.params / 8.0
        self.h = fleet.header_bytes
        self.T = fleet.deadline_s
        coef = fleet.error_coef
        self.fixed_err = coef / np.expm1(low * LN2) ** 2  # error of devices at ``low``
        self.active = np.flatnonzero((coef > 0) & (high > low))
        idx = self.active
        self.low, self.high = low[idx], high[idx]
        self.C, self.r = fleet.cycles[idx], fleet.uplink_bytes_per_s[idx]
        self.kappa, self.fmin = fleet.kappa[idx], fleet.f_min_hz[idx]
        self.ea = fleet.energy_per_byte_j[idx] * self.a
        self.coef = coef[idx]
        self.log2c = np.log(2.0 * self.coef * LN2)
        self.q_s = ((self.T - self.C / self.fmin) * self.r - self.h) / self.a
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            self.lm_lo = self._log_mu(self.low, upper=self.low >= self.q_s)
            self.lm_hi = self._log_mu(self.high, upper=self.high > self.q_s)
            self.kink = (self.q_s > self.low) & (self.q_s < self.high)
            self.lm_s_minus = self._log_mu(self.q_s, upper=np.zeros_like(self.kink))
            self.lm_s_plus = self._log_mu(self.q_s, upper=np.ones_like(self.kink))

    # log(-err'(q)) and its derivative
    def _L(self, q: np.ndarray, sel: Union[slice, np.ndarray] = slice(None)) -> np.ndarray:
        return self.log2c[sel] + q * LN2 - 3.0 * np.log(np.expm1(q * LN2))

    def _gprime(
        self, q: np.ndarray, upper: np.ndarray, sel: Union[slice, np.ndarray] = slice(None)
    ) -> Tuple[np.ndarray, np.ndarray]:
        """g'(q) and g''(q) on the chosen piece (``upper``: frequency above f_min)."""
        r, C, kappa = self.r[sel], self.C[sel], self.kappa[sel]
        slack = self.T - (self.a * q + self.h) / r
        f = np.where(upper, C / np.where(slack > 0, slack, np.inf), 0.0)
        g1 = self.ea[sel] + np.where(upper, 2.0 * kappa * self.a * f**3 / r, 0.0)
        g2 = np.where(upper, 6.0 * kappa * self.a**2 * f**4 / (r**2 * C), 0.0)
        return g1, g2

    def _log_mu(self, q: np.ndarray, upper: np.ndarray) -> np.ndarray:
        g1, _ = self._gprime(q, upper)
        return np.log(g1) - self._L(q)

    def bits(self, t: float, q0: Optional[np.ndarray] = None) -> np.ndarray:
        """Bits of the active devices for log mu = t (q0: warm start)."""
        q = np.where(t <= self.lm_lo, self.low, self.high)
        inner = (t > self.lm_lo) & (t < self.lm_hi)
        at_kink = inner & self.kink & (t >= self.lm_s_minus) & (t <= self.lm_s_plus)
        q = np.where(at_kink, self.q_s, q)
        inner &= ~at_kink
        upper = np.where(self.kink, t > self.lm_s_plus, self.q_s <= self.low)
        lo = np.where(upper, np.maximum(self.low, self.q_s), self.low)
        hi = np.where(upper, self.high, np.minimum(self.high, self.q_s))
        sel = np.flatnonzero(inner)
        if sel.size:
            start = None if q0 is None else q0[sel]
            q[sel] = self._newton(t, sel, lo[sel], hi[sel], upper[sel], start)
        return q

    def _newton(
        self,
        t: float,
        sel: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        upper: np.ndarray,
        q0: Optional[np.ndarray],
    ) -> np.ndarray:
        a, h, T = self.a, self.h, self.T
        r, C, ea, log2c = self.r[sel], self.C[sel], self.ea[sel], self.log2c[sel]
        k2 = np.where(upper, 2.0 * self.kappa[sel] * a / r, 0.0)  # g' = ea + k2*f**3
        k3 = 3.0 * a / (r * C)  # g'' = k2*f**3 * k3*f
        q = 0.5 * (lo + hi) if q0 is None else np.clip(q0, lo, hi)
        out = q.copy()
        live = np.arange(q.size)  # devices still iterating, compacted as they converge
        for _ in range(INNER_MAX_ITER):
            f = C / (T - (a * q + h) / r)
            kf3 = k2 * (f * f * f)
            g1 = ea + kf3
            xm1 = np.expm1(q * LN2)
            psi = np.log(g1) - t - (log2c + q * LN2 - 3.0 * np.log(xm1))
            dpsi = kf3 * k3 * f / g1 - LN2 * (1.0 - 3.0 * (xm1 + 1.0) / xm1)
            neg = psi < 0
            lo = np.where(neg, q, lo)
            hi = np.where(neg, hi, q)
            qn = q - psi / dpsi
            bad = ~np.isfinite(qn) | (qn < lo) | (qn > hi)
            qn = np.where(bad, 0.5 * (lo + hi), qn)
            going = np.abs(qn - q) >= INNER_TOL_BITS
            out[live] = qn
            if not going.all():
                live, qn, lo, hi = live[going], qn[going], lo[going], hi[going]
                r, C, ea, log2c, k2, k3 = (v[going] for v in (r, C, ea, log2c, k2, k3))
                if live.size == 0:
                    break
            q = qn
        return out

    def error(self, q_active: np.ndarray) -> float:
        err = self.fixed_err.copy()
        err[self.active] = self.coef / np.expm1(q_active * LN2) ** 2
        return float(err.sum())


@dataclass(frozen=True)
class ContinuousSolution:
    """Real-valued optimum: bits, cheapest frequencies, per-device energy, error, mu."""

    feasible: bool
    multiplier: Optional[float]
    bits: np.ndarray
    freq_hz: np.ndarray
    energy_j: np.ndarray
    error: float
    evaluations: int = 0
    infeasible: List[Infeasibility] = field(default_factory=list)

    @property
    def total_energy_j(self) -> float:
        return float(self.energy_j.sum())


def continuous_energy_j(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """g_k(q) with the continuous cheapest frequency (inf where the deadline is missed)."""
    f = cheapest_freq_hz(fleet, bits)
    f = np.where(f <= fleet.f_top_hz * (1 + 1e-12), f, np.inf)
    with np.errstate(invalid="ignore"):
        e = compute_energy_j(fleet, f) + comm_energy_j(fleet, bits)
    return np.where(np.isfinite(f), e, np.inf)


def bits_for_multiplier(fleet: FleetArrays, multiplier: float) -> np.ndarray:
    """Every device's bits minimising g_k(q) + mu*err_k(q) on its feasible range."""
    b = bit_bounds(fleet)
    high = np.maximum(b.high, b.low)
    q = b.low.copy()
    if multiplier <= 0:
        return q
    kkt = _Kkt(fleet, b.low, high)
    q[kkt.active] = kkt.bits(float(np.log(multiplier)))
    return q


def solve_continuous(fleet: FleetArrays) -> ContinuousSolution:
    """Minimum-energy real bits and frequencies under the deadline and the error budget."""
    b = bit_bounds(fleet)
    problems = deadline_infeasibilities(fleet, b.low)
    if not problems:
        over = budget_infeasibility(fleet, b.high)
        problems = [over] if over is not None else []
    if problems:
        q = np.maximum(b.low, np.minimum(b.high, fleet.bits_max))
        return _solution(fleet, q, None, False, 0, problems)
    eps = fleet.error_budget
    kkt = _Kkt(fleet, b.low, b.high)
    if kkt.error(kkt.low) <= eps:
        return _solution(fleet, b.low.copy(), 0.0, True, 1, [])
    finite_lo = kkt.lm_lo[np.isfinite(kkt.lm_lo)]
    finite_hi = kkt.lm_hi[np.isfinite(kkt.lm_hi)]
    ta = float(finite_lo.min()) - 1.0 if finite_lo.size else -700.0
    tb = float(finite_hi.max()) + 1.0 if finite_hi.size else ta + 1.0
    t, qa, n = _search(kkt, ta, tb, eps)
    q = b.low.copy()
    q[kkt.active] = qa
    return _solution(fleet, q, float(np.exp(t)), True, n, [])


def _search(kkt: _Kkt, ta: float, tb: float, eps: float) -> Tuple[float, np.ndarray, int]:
    """Bracketed search on t = log mu for F(t) = log e(q(t)) - log eps = 0 (feasible side)."""
    log_eps = np.log(eps)
    qa = kkt.bits(ta)
    fa = np.log(kkt.error(qa)) - log_eps
    qb = kkt.bits(tb)
    fb_true = np.log(kkt.error(qb)) - log_eps
    n = 2
    if fa <= 0:
        return ta, qa, n
    fb, side = fb_true, 0
    widths = [tb - ta] * 3  # bracket width after each evaluation
    while n < OUTER_MAX_ITER and fb_true < -OUTER_RTOL and tb - ta > 1e-13 * max(1.0, abs(tb)):
        t = tb - fb * (tb - ta) / (fb - fa)
        # bisect when the step leaves the bracket or two steps did not halve the bracket
        if not (ta < t < tb) or widths[-1] > 0.5 * widths[-3]:
            t = 0.5 * (ta + tb)
        q = kkt.bits(t, qb)
        ft = np.log(kkt.error(q)) - log_eps
        n += 1
        if ft <= 0:
            tb, qb, fb, fb_true = t, q, ft, ft
            if side == 1:
                fa *= 0.5
            side = 1
        else:
            ta, fa = t, ft
            if side == -1:
                fb *= 0.5
            side = -1
        widths.append(tb - ta)
    return tb, qb, n


def _solution(
    fleet: FleetArrays,
    q: np.ndarray,
    mu: Optional[float],
    feasible: bool,
    n: int,
    problems: List[Infeasibility],
) -> ContinuousSolution:
    f = np.minimum(cheapest_freq_hz(fleet, q), fleet.f_top_hz)
    energy = compute_energy_j(fleet, f) + comm_energy_j(fleet, q)
    return ContinuousSolution(
        feasible=feasible,
        multiplier=mu,
        bits=q,
        freq_hz=f,
        energy_j=energy,
        error=float(device_error(fleet, q).sum()),
        evaluations=n,
        infeasible=problems,
    )


__all__ = [
    "BitBounds",
    "ContinuousSolution",
    "bit_bounds",
    "bits_for_multiplier",
    "budget_infeasibility",
    "continuous_energy_j",
    "deadline_infeasibilities",
    "solve_continuous",
    "update_bytes",
]
