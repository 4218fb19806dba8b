"""Training workloads for calibration (torch imported lazily, inside the builders).

:func:`default_workload` uses the project's DDPM (``greenfed.ddpm``, preset ``pi-small``
on the digits data) when it is importable, else a small self-contained conv-net step and
says so in the name, which goes into the profile's ``workload`` field. A workload runs on the
torch ``device`` the agent trains on ("cpu" or "cuda"), so calibration measures the clock and
the power of the device that will do the rounds; each call ends with the device's work done
(a loss read back), so the time measured is the work's, not the time to queue it.
"""

from __future__ import annotations

from typing import Tuple

from edge_agent.sensing.calibrate import Workload


def ddpm_workload(
    batch_size: int = 64, steps_per_call: int = 5, seed: int = 0, device: str = "cpu"
) -> Tuple[Workload, str]:
    """``steps_per_call`` local DDPM training steps per call: ``pi-small`` on digits."""
    import torch

    from greenfed.ddpm import (
        PRESETS,
        NoiseSchedule,
        TrainConfig,
        build_model,
        load_data,
        train_local,
    )

    torch.manual_seed(seed)
    model = build_model(PRESETS["pi-small"]).to(device)
    schedule = NoiseSchedule()
    data = load_data("digits:split=train")
    tcfg = TrainConfig(steps=steps_per_call, batch_size=batch_size, seed=seed)

    def step() -> int:
        return int(train_local(model, schedule, data.images, tcfg).samples)

    return step, (
        f"greenfed.ddpm pi-small on digits:split=train, batch {batch_size}, "
        f"{steps_per_call} steps per call, on {device}"
    )


def torch_conv_workload(
    batch_size: int = 64, seed: int = 0, device: str = "cpu"
) -> Tuple[Workload, str]:
    """A small conv net trained on random 8×8 images (fallback; not the real model)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(32, 1, 3, padding=1),
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, 1, 8, 8, generator=g).to(device)
    noise = torch.randn(batch_size, 1, 8, 8, generator=g).to(device)

    def step() -> int:
        opt.zero_grad()
        loss = ((model(x + noise) - noise) ** 2).mean()
        loss.backward()
        opt.step()
        float(loss.detach())  # waits for the device: the step's time is its work's
        return batch_size

    return step, (
        f"torch-conv fallback (3-layer conv net, 8x8, batch {batch_size}, on {device}): "
        "greenfed.ddpm not used"
    )


def default_workload(
    kind: str = "auto", batch_size: int = 64, device: str = "cpu"
) -> Tuple[Workload, str]:
    """``kind``: ``auto`` (DDPM if importable), ``ddpm`` or ``torch-conv``; on ``device``."""
    why = "not requested"
    if kind in ("auto", "ddpm"):
        try:
            return ddpm_workload(batch_size, device=device)
        except (ImportError, AttributeError, KeyError, TypeError) as e:
            if kind == "ddpm":
                raise
            why = f"{type(e).__name__}: {e}"
    step, name = torch_conv_workload(batch_size, device=device)
    return step, f"{name} ({why})"


def warm_up(device: str = "cpu", steps: int = 2) -> None:
    """Pay torch's one-off costs of a fresh process's first training step (lazy imports of
    the optimizer machinery, allocator and thread-pool set-up) before the first round: cold,
    the first 10 steps of pi-small cost 1.47 CPU-seconds here against 0.29 warm, seconds of a
    slow board's first deadline. They are not model-specific: a few steps of the small conv
    net leave the next pi-small call as fast as a warm one (0.29 CPU-s)."""
    step, _ = torch_conv_workload(batch_size=8, device=device)
    for _ in range(steps):
        step()
