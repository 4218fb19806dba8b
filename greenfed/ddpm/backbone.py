"""Pretrained backbones shipped in the package: the frozen W₀ that LoRA adapters adapt.

A backbone file is a plain ``.npz`` (no pickle): the UNet's float state (``w.<name>``) and a
JSON ``config`` string holding the UNet and schedule configurations and how the weights were
made (data, steps, seed, torch version, scores). Files are written with fixed zip timestamps
(:func:`greenfed.ddpm.data.npz_bytes`), so the script that makes one
(``scripts/pretrain_backbone.py``) can check the shipped file bit for bit.

Every side of a run must hold the same W₀: the coordinator names the backbone and its sha256 in
the model configuration, and :func:`load_backbone` refuses a file whose digest differs.

Errors: :class:`~greenfed.ddpm.errors.CheckpointError` for an unknown name, a missing or
unreadable file, or a digest that differs from the one expected.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from .data import npz_bytes
from .errors import CheckpointError
from .schedule import ScheduleConfig
from .unet import UNetConfig

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Shipped backbones by name: pi-small pretrained on the digits train split.
BACKBONES: Dict[str, Path] = {"pi-small-digits": DATA_DIR / "backbone-pi-small-digits.npz"}
DEFAULT_BACKBONE = "pi-small-digits"
FORMAT = "greenfed.backbone/1"


@dataclass(frozen=True)
class Backbone:
    """A loaded backbone: configurations, float32 weights (the plain UNet's state names), the
    file's sha256 and the metadata of its making."""

    name: str
    unet: UNetConfig
    schedule: ScheduleConfig
    arrays: Dict[str, np.ndarray]
    sha256: str
    meta: Dict[str, Any] = field(default_factory=dict)


def backbone_bytes(
    unet: UNetConfig,
    schedule: ScheduleConfig,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
) -> bytes:
    """The file content of a backbone (write it with ``Path.write_bytes``)."""
    config = {
        "format": FORMAT,
        "unet": unet.to_dict(),
        "schedule": schedule.to_dict(),
        "meta": dict(meta),
    }
    members: Dict[str, Any] = {"config": np.array(json.dumps(config, sort_keys=True))}
    for k, v in arrays.items():
        members[f"w.{k}"] = np.asarray(v, dtype=np.float32)
    return npz_bytes(members)


def backbone_path(name: str) -> Path:
    if name not in BACKBONES:
        raise CheckpointError(f"unknown backbone {name!r}; shipped: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def load_backbone(name: str, expect_sha256: Optional[str] = None) -> Backbone:
    """Load a shipped backbone by name; with ``expect_sha256``, refuse any other file."""
    path = backbone_path(name)
    try:
        blob = path.read_bytes()
    except FileNotFoundError as e:
        raise CheckpointError(
            f"backbone {name!r}: {path} is missing (make it with scripts/pretrain_backbone.py)"
        ) from e
    digest = hashlib.sha256(blob).hexdigest()
    if expect_sha256 and digest != expect_sha256:
        raise CheckpointError(
            f"backbone {name!r}: this installation's file has sha256 {digest[:12]}..., the "
            f"run expects {expect_sha256[:12]}...: install the coordinator's greenfed version"
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as f:
            config = json.loads(str(f["config"]))
            arrays = {k[2:]: f[k].copy() for k in f.files if k.startswith("w.")}
    except (OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a backbone file: {e}") from e
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    return Backbone(
        name=name,
        unet=UNetConfig.from_dict(config["unet"]),
        schedule=ScheduleConfig.from_dict(config["schedule"]),
        arrays=arrays,
        sha256=digest,
        meta=dict(config.get("meta") or {}),
    )
