"""Where the local round runs: the training device, and the clock that is then the model's f.

``device`` in the agent's configuration is ``auto`` (CUDA when this torch sees a GPU, else the
CPU), ``cpu`` or ``cuda``. The whole round runs there (model, batches, noise, optimizer); the
update comes back to host memory for the codec. The compute clock follows the device: the CPU
clusters' cpufreq for ``cpu``, the Jetson GPU's devfreq node for ``cuda`` (a CUDA GPU without
one, e.g. a discrete card, has an unknown clock and calibrates at the nominal reference).

torch is imported here only inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional

from edge_agent.sensing import (
    ComputeClock,
    CpuFreq,
    EmulatedBoardConfig,
    EmulatedClock,
    GpuFreq,
)
from greenfed.errors import ConfigError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def _torch() -> Any:
    import torch

    return torch


def cuda_unavailable_reason(torch: Any) -> str:
    """Why ``torch.cuda.is_available()`` is False, in words a user can act on."""
    built = getattr(torch.version, "cuda", None)
    if not built:
        return (
            f"this torch ({torch.__version__}) is a CPU-only build: on a Jetson install "
            "NVIDIA's JetPack wheel of torch (docs/boards.md)"
        )
    return (
        f"this torch ({torch.__version__}, CUDA {built}) sees no GPU: check the driver "
        "(nvidia-smi, or /dev/nvhost-* on a Jetson) and that the user is in group video"
    )


def resolve_device(requested: str, torch: Any = None) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device the round runs on ("cpu" or "cuda").

    ``cuda`` on a machine without usable CUDA is a :class:`ConfigError` saying why.
    """
    if requested not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    torch = torch or _torch()
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise ConfigError(
            f"device = 'cuda' but CUDA is unavailable: {cuda_unavailable_reason(torch)}"
        )
    return "cpu"


def device_name(device: str, torch: Any = None) -> str:
    """A short description of the device, e.g. "cuda:0 Orin" or "cpu"."""
    if device != "cuda":
        return "cpu"
    torch = torch or _torch()
    return f"cuda:0 {torch.cuda.get_device_name(0)}"


def compute_clock(
    device: str,
    sysfs_root: Path,
    cpu: Optional[CpuFreq] = None,
    emulated: Optional[EmulatedBoardConfig] = None,
) -> ComputeClock:
    """The clock the energy model's f is for this device: the GPU's when training on CUDA,
    the cgroup quota of an emulated board (``emulated``: its ``[sensing.emulated]`` table)."""
    if emulated is not None:
        if device == "cuda":
            raise ConfigError("an emulated board trains on the CPU: use device = 'cpu'")
        return EmulatedClock.from_config(emulated, sysfs_root)
    if device != "cuda":
        return cpu if cpu is not None else CpuFreq(sysfs_root)
    gpu = GpuFreq(sysfs_root)
    if not gpu.found:
        log.warning(
            "training on CUDA, but %s: the compute clock is unknown and calibration uses "
            "the nominal reference",
            gpu.missing_reason,
        )
    return gpu


def torch_report(torch: Any = None) -> Dict[str, Any]:
    """What this torch can do for training: version, CUDA (built, usable, which GPU) and
    ``torch.distributed`` (NVIDIA's stock JetPack wheels are built without it)."""
    if torch is None:
        try:
            torch = _torch()
        except ImportError as e:
            return {"importable": False, "error": str(e)}
    from edge_agent.pool.capability import detect  # one check of torch.distributed

    cuda = bool(torch.cuda.is_available())
    pool = detect(torch)
    distributed = pool.distributed
    out: Dict[str, Any] = {
        "importable": True,
        "version": str(torch.__version__),
        "cuda_built": getattr(torch.version, "cuda", None),
        "cuda_available": cuda,
        "cuda_device": device_name("cuda", torch) if cuda else "",
        "cuda_reason": "" if cuda else cuda_unavailable_reason(torch),
        "distributed": distributed,
        "auto_device": "cuda" if cuda else "cpu",
    }
    if not distributed:
        out["distributed_reason"] = pool.reason
    return out


def format_torch_report(rep: Dict[str, Any]) -> str:
    """The torch lines of ``greenfed-agent probe``."""
    if not rep.get("importable"):
        return f"torch:   not importable ({rep.get('error')})"
    built = rep["cuda_built"] or "none (CPU-only build)"
    cuda = rep["cuda_device"] if rep["cuda_available"] else f"unavailable ({rep['cuda_reason']})"
    dist = "yes" if rep["distributed"] else f"no ({rep['distributed_reason']})"
    return "\n".join(
        [
            f"torch:   {rep['version']}, built for CUDA {built}",
            f"  cuda:  {cuda}",
            f"  torch.distributed: {dist}",
            f"  device auto -> {rep['auto_device']}",
        ]
    )
