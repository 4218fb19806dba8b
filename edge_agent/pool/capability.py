"""Can this board take part in a pool? ``torch.distributed`` and its backends, said plainly.

NVIDIA's stock JetPack torch wheels are built without ``USE_DISTRIBUTED``: there
``torch.distributed.is_available()`` is False and every other name of the package is missing,
so the first call would fail with an ``AttributeError`` far from the cause. ``probe`` and pool
start-up call :func:`detect` / :func:`require` instead, which say what to install.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict

from .errors import PoolUnavailable

#: What to do on a board whose torch lacks torch.distributed.
INSTALL_HINT = (
    "install a torch built with USE_DISTRIBUTED=1: on a Raspberry Pi or an x86 board the "
    "registry's wheels have it (pip install torch); on a Jetson, NVIDIA's stock JetPack "
    "wheels do not: build torch from source with USE_DISTRIBUTED=1 (NVIDIA's 'PyTorch for "
    "Jetson' build steps) or use a build that enables it, and check with "
    "python3 -c 'import torch.distributed as d; print(d.is_available())'. "
    "Without it the board can still join the coordinator as an ordinary participant"
)


@dataclass(frozen=True)
class DistCapability:
    """What this torch offers a pool."""

    torch_version: str
    distributed: bool
    gloo: bool
    nccl: bool
    pipelining: bool  # torch.distributed.pipelining (torch >= 2.4)
    reason: str  # empty when the board can join a pool

    @property
    def usable(self) -> bool:
        return not self.reason

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if not self.usable:
            return f"pool: unavailable ({self.reason})"
        backends = ", ".join(b for b, ok in (("gloo", self.gloo), ("nccl", self.nccl)) if ok)
        engine = "torch.distributed.pipelining" if self.pipelining else "point-to-point GPipe"
        return (
            f"pool: available (torch {self.torch_version}; backends {backends}; pipeline {engine})"
        )


def detect(torch: Any = None) -> DistCapability:
    """Inspect the installed torch, or ``torch`` as given (imports torch; never raises)."""
    if torch is None:
        try:
            import torch
        except ImportError as e:
            return DistCapability("", False, False, False, False, f"torch is not importable: {e}")
    version = str(torch.__version__)
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available():
        return DistCapability(
            version, False, False, False, False,
            f"torch {version} was built without torch.distributed; {INSTALL_HINT}",
        )  # fmt: skip
    gloo = bool(dist.is_gloo_available())
    nccl = bool(dist.is_nccl_available())
    try:
        import torch.distributed.pipelining

        pipelining = True
    except ImportError:
        pipelining = False
    reason = "" if gloo else (
        f"torch {version} has torch.distributed but not its gloo backend (CPU training "
        f"needs it); {INSTALL_HINT}"
    )  # fmt: skip
    return DistCapability(version, True, gloo, nccl, pipelining, reason)


def require() -> DistCapability:
    """:func:`detect`, raising :class:`PoolUnavailable` with the reason when unusable."""
    cap = detect()
    if not cap.usable:
        raise PoolUnavailable(cap.reason)
    return cap
