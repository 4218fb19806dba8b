"""Model updates as the codec sees them: Δ = (model after local training) − (round's start).

Shared by the agent (which computes and quantizes Δ) and the coordinator (which adds the
weighted mean of the decoded Δs to the global model). Quantizing Δ rather than the weights
gives far smaller ranges, hence far less error for the same bits (DESIGN §2).
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np


def update_of(
    after: Mapping[str, np.ndarray], before: Mapping[str, np.ndarray]
) -> Dict[str, np.ndarray]:
    """Δ = after − before for float tensors (float32); other tensors are sent as they are."""
    missing = sorted(set(before) - set(after))
    if missing:
        raise KeyError(f"tensors missing after training: {missing[:3]}")
    return {
        k: (after[k].astype(np.float32) - before[k].astype(np.float32))
        if before[k].dtype.kind == "f"
        else after[k].copy()
        for k in before
    }


def max_range(update: Mapping[str, np.ndarray]) -> float:
    """Largest per-tensor (max − min) over the float tensors: R_k of the allocator."""
    ranges = [float(v.max() - v.min()) for v in update.values() if v.dtype.kind == "f" and v.size]
    return max(ranges) if ranges else 0.0


def sq_norm(update: Mapping[str, np.ndarray]) -> float:
    """Squared L2 norm over the float tensors (float64 accumulation)."""
    total = 0.0
    for v in update.values():
        if v.dtype.kind == "f":
            flat = v.ravel().astype(np.float64)
            total += float(np.dot(flat, flat))
    return total
