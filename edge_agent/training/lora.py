"""Adapter training: the shipped backbone stays frozen, only LoRA adapters train (docs/lora.md).

The coordinator's model configuration names everything the device builds::

    "training_mode": "lora",
    "backbone": {"name": "pi-small-digits", "sha256": "..."}    the frozen W₀ (shipped)
    "lora": {"rank": 4, "alpha": 8.0, "targets": [...], "seed": 0}
    "adapter_parts": ["A", "B"] (fedit) or ["B"] (ffa: A stays at its seeded value)
    "personal": {"holdout": 0.2, "eval_samples": 128, "metric": "mnist8"} or null

The global model the device downloads is the global adapter's ``adapter_parts``; the update
it uploads is their change, so d = the adapter's values (the allocator plans over that).

Personal adapters (FedGen-Edge's "personalization for free"): the device keeps the adapter it
tuned this round, i.e. its own update on top of the global adapter, P_k = G + Δ_k, instead of
discarding it after the upload. It costs no extra training and leaves the global adapter's
training untouched. A share of the device's images (``holdout``) is kept out of training;
after the upload :meth:`evaluate` samples backbone + G (the global adapter as downloaded) and
backbone + P_k and scores both against those images with the data set's shipped feature
classifier: the RoundReport's ``global_fd_own`` and ``personal_fd``. P_k lives in memory (an
agent restarted keeps none until its next round).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from edge_agent.errors import AgentError

from .base import LocalPlan, LocalResult
from .full import FullModelTraining

log = logging.getLogger(__name__)
MIN_HOLDOUT_IMAGES = 8


def holdout_split(n: int, share: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of n images: a seeded permutation, ``share`` held out."""
    k = round(share * n)
    if k < MIN_HOLDOUT_IMAGES or n - k < 1:
        raise AgentError(
            f"personal adapters hold out {share:.0%} of this device's {n} images, which "
            f"leaves {k} to score them on (at least {MIN_HOLDOUT_IMAGES} needed): give the "
            "device more images or the coordinator a larger lora.personal_holdout"
        )
    perm = np.random.RandomState(seed).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


class AdapterTraining(FullModelTraining):
    """LoRA adapters on the frozen shipped backbone (fedit: A and B train; ffa: B only).

    The full-model mode's training loop, on a model whose only trainable weights are the
    adapter factors; the global model and the update are those factors."""

    name = "lora"

    def __init__(
        self, model_config: Mapping[str, Any], images: np.ndarray, device: str = "cpu"
    ) -> None:
        from greenfed import ddpm
        from greenfed.ddpm import lora
        from greenfed.ddpm.backbone import load_backbone

        self._lora = lora
        try:
            super().__init__(model_config, images, device)  # the plain UNet, schedule, images
            bb_cfg = model_config["backbone"]
            bb_name, bb_sha = str(bb_cfg["name"]), str(bb_cfg["sha256"])
            unet = ddpm.UNetConfig.from_dict(model_config["unet"])
            self.lora_config = lora.LoraConfig.from_dict(model_config["lora"])
            self.parts = tuple(str(p) for p in model_config["adapter_parts"])
            personal: Optional[Mapping[str, Any]] = model_config.get("personal")
        except (KeyError, TypeError, ValueError) as e:
            raise AgentError(f"the coordinator's adapter configuration is unusable: {e}") from e
        try:
            backbone = load_backbone(bb_name, expect_sha256=bb_sha)
        except ddpm.CheckpointError as e:
            raise AgentError(str(e)) from e
        if unet != backbone.unet:
            raise AgentError(
                f"the coordinator's model ({unet}) is not the backbone's ({backbone.unet})"
            )
        if not self.parts or set(self.parts) - set(lora.PARTS):
            raise AgentError(f"adapter_parts must be a non-empty subset of A, B: {self.parts}")
        ddpm.set_state_arrays(self.model, backbone.arrays)
        self.schedule = ddpm.NoiseSchedule.from_config(backbone.schedule)
        lora.apply_lora(self.model, self.lora_config, lora.GLOBAL)
        self.model.to(self.device)  # the adapter factors were made on the host
        lora.set_trainable(self.model, lora.GLOBAL, self.parts)
        self.heldout: Optional[np.ndarray] = None
        self.personal = dict(personal) if personal else None
        if self.personal is not None:
            self._setup_personal(self.personal)
        self.personal_adapter: Dict[str, np.ndarray] = {}  # P_k = G + Δ_k of the last round

    def _setup_personal(self, personal: Mapping[str, Any]) -> None:
        from greenfed.ddpm.quality import SHIPPED_CLASSIFIERS

        metric = str(personal.get("metric", ""))
        if metric not in SHIPPED_CLASSIFIERS:
            raise AgentError(
                f"personal adapters are scored with a shipped classifier; {metric!r} is not one "
                f"({', '.join(sorted(SHIPPED_CLASSIFIERS))})"
            )
        try:
            import torchmetrics  # noqa: F401
        except ImportError as e:
            raise AgentError(
                "the coordinator asks for personal-adapter scores (lora.personal), which need "
                "torchmetrics on this device: pip install 'greenfed[coordinator]'"
            ) from e
        train, held = holdout_split(
            len(self.images), float(personal["holdout"]), self.lora_config.seed
        )
        self.heldout = self.images[held]
        self.images = self.images[train]

    @property
    def num_values(self) -> int:
        return self._lora.num_values(
            self._lora.adapter_shapes(self.model, self._lora.GLOBAL, self.parts)
        )

    def load_global(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._lora.set_adapter_arrays(self.model, arrays, self._lora.GLOBAL)
        self._start = {k: np.array(v, dtype=np.float32) for k, v in arrays.items()}

    def _current(self) -> Dict[str, np.ndarray]:
        return self._lora.adapter_arrays(self.model, self._lora.GLOBAL, self.parts)

    def train(self, plan: LocalPlan) -> LocalResult:
        result = super().train(plan)
        if self.personal is not None:
            self.personal_adapter = self._current()  # kept on the device: its personal adapter
        return result

    @property
    def evaluates(self) -> bool:
        return self.personal is not None

    def evaluate(self) -> Dict[str, float]:
        """``global_fd_own`` and ``personal_fd`` on the held-out images (see the module
        docstring); nothing without personal adapters or before the first round."""
        if self.personal is None or self.heldout is None or not self.personal_adapter:
            return {}
        n = min(int(self.personal["eval_samples"]), len(self.heldout))
        from greenfed.ddpm.quality import SHIPPED_CLASSIFIERS

        ddpm, lora = self._ddpm, self._lora
        metric = ddpm.QualityMetric(
            train=ddpm.ImageData(self.images, None, "own training images"),
            heldout=ddpm.ImageData(self.heldout, None, "own held-out images"),
            feature_weights=SHIPPED_CLASSIFIERS[str(self.personal["metric"])],
        )
        fds = {}
        for name, adapter in (
            ("global_fd_own", self._start),
            ("personal_fd", self.personal_adapter),
        ):
            lora.set_adapter_arrays(self.model, adapter, lora.GLOBAL)
            fds[name] = metric.fd(ddpm.sample(self.model, self.schedule, n, steps=50, seed=0))
        global_fd, personal_fd = fds["global_fd_own"], fds["personal_fd"]
        log.info(
            "own held-out images (%d): FD global %.3f, personal %.3f",
            n,
            global_fd,
            personal_fd,
        )
        return {"global_fd_own": global_fd, "personal_fd": personal_fd, "own_eval_images": n}
