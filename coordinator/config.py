"""Coordinator configuration: one typed dataclass, loaded from TOML + CLI flags in the CLI only.

Every key is documented in docs/configuration.md; tests check that the documented defaults
equal these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from coordinator.aggregation import adapter_parts, check_rule
from coordinator.allocator.schemes import Scheme


@dataclass
class TlsConfig:
    """Mutual TLS (required for any non-loopback address unless ``insecure``)."""

    cert: Optional[Path] = None  # coordinator certificate (PEM)
    key: Optional[Path] = None  # its private key (PEM)
    ca: Optional[Path] = None  # CA that signed the device certificates (PEM)
    revoked: List[str] = field(default_factory=list)  # device ids refused even with a valid cert
    insecure: bool = False  # allow a non-loopback address without TLS (not recommended)


@dataclass
class LoraSettings:
    """LoRA adapters on the frozen ``backbone``, for aggregation ``fedit`` or ``ffa``
    (docs/lora.md). Every device gets the same rank, scaling, layers and A seed.

    ``targets``: layers to adapt, fnmatch patterns over the UNet's module names (the residual
    blocks' 3×3 convolutions by default);
    ``personal``: each device keeps the adapter it tuned in its round (global + its own
    update) as its personal adapter, and scores it against the global one on images it held
    out of training (RoundReport personal_fd, global_fd_own);
    ``personal_holdout``: share of each device's images kept out of training to score its models;
    ``personal_eval_samples``: images a device samples for each of the two scores.
    """

    rank: int = 4  # adapter rank r
    alpha: float = 8.0  # adapter scaling α: a layer's ΔW = (α/r)·B·A
    targets: List[str] = field(default_factory=lambda: ["*.conv1", "*.conv2"])
    seed: int = 0  # seed of A's initialisation, shared by every device (ffa keeps A there)
    personal: bool = False
    personal_holdout: float = 0.2
    personal_eval_samples: int = 128

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError("lora.rank must be >= 1")
        if not self.alpha > 0:
            raise ValueError("lora.alpha must be > 0")
        if not self.targets:
            raise ValueError("lora.targets must name at least one layer pattern")
        if not 0.0 < self.personal_holdout < 1.0:
            raise ValueError("lora.personal_holdout must be in (0, 1)")
        if self.personal_eval_samples < 2:
            raise ValueError("lora.personal_eval_samples must be >= 2 (a Fréchet distance)")


@dataclass
class CoordinatorConfig:
    listen: str = "127.0.0.1:50051"  # host:port to bind
    state_dir: Path = Path("runs/default")  # SQLite store, checkpoints, upload spool
    rounds: int = 5  # completed rounds to run
    min_devices: int = 2  # devices that must be connected before a round starts
    min_fraction: float = 0.5  # a round closes with the arrived updates if at least this share
    scheme: str = "on-demand"  # on-demand, fp32 or fixed-B
    aggregation: str = "fedavg"  # fedavg, trimmed-mean (robust; docs/security.md), or LoRA
    # adapter rules fedit and ffa (docs/lora.md)
    trim_fraction: float = 0.2  # trimmed-mean: share of updates dropped at each end, per value
    seed: int = 0
    # Model and local training handed to every device.
    model_preset: str = "pi-small"
    backbone: Optional[str] = None  # shipped pretrained start (fedit/ffa: frozen; fedavg: tuned)
    local_steps: int = 100
    batch_size: int = 64
    learning_rate: float = 2e-3
    block_size: int = 0  # codec block size for quantized updates (0: one scale per tensor)
    # Round deadline: fixed, or derived as factor x the slowest device's fastest possible round.
    deadline_s: Optional[float] = None
    deadline_factor: float = 2.0
    deadline_min_s: float = 20.0
    deadline_max_s: float = 1800.0  # ceiling of the derived deadline; slower devices sit out
    grace_s: float = 2.0  # extra wait for reports after the last upload or the deadline
    # Quality budget: absolute, or relative to the squared norm of the last aggregated update.
    error_budget: Optional[float] = None
    error_budget_rel: float = 0.01
    prior_update_range: float = 0.05  # R_k before a device's first update
    # Evaluation of the global model after each round.
    eval_data: str = "digits:split=test"
    eval_train_data: Optional[str] = None  # non-digits data: the classifier's training images
    eval_feature_weights: Optional[Path] = None  # non-digits data: its classifier (docs/ddpm.md)
    eval_samples: int = 256
    eval_ddim_steps: int = 50
    eval_threads: int = 1
    # Wire.
    max_update_bytes: int = 64 * 1024 * 1024
    chunk_bytes: int = 1024 * 1024
    poll_interval_s: float = 10.0  # WaitAssignment blocks at most this long
    device_timeout_s: float = 60.0  # a device unseen for this long is not given work
    max_concurrent_decodes: int = 2  # bounds memory: decoded updates held at once
    max_workers: int = 256  # gRPC threads (long polls get about half): >= 2 x devices + 16
    stream_idle_s: float = 30.0  # an upload or download without progress this long is cut
    max_update_norm_ratio: float = 10.0  # refuse updates this many times the median norm (0: off)
    metrics_port: int = 0  # Prometheus metrics on this port (0: off)
    lora: LoraSettings = field(default_factory=LoraSettings)  # adapters: the [lora] table below
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def scheme_value(self) -> Scheme:
        """``scheme`` parsed: the one :class:`~coordinator.allocator.schemes.Scheme` of this run."""
        return Scheme.parse(self.scheme)

    def __post_init__(self) -> None:
        Scheme.parse(self.scheme)  # SchemeError (a ValueError) names the choices
        check_rule(self.aggregation)
        if adapter_parts(self.aggregation) and not self.backbone:
            raise ValueError(
                f"aggregation {self.aggregation} adapts a frozen pretrained model: set "
                'backbone = "pi-small-digits" (docs/lora.md)'
            )
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        if self.min_devices < 1:
            raise ValueError("min_devices must be >= 1")
        if not 0.0 < self.min_fraction <= 1.0:
            raise ValueError("min_fraction must be in (0, 1]")
        if self.local_steps < 1 or self.batch_size < 1:
            raise ValueError("local_steps and batch_size must be >= 1")
        if self.chunk_bytes < 1024 or self.chunk_bytes > 4 * 1024 * 1024:
            raise ValueError("chunk_bytes must be between 1 KiB and 4 MiB")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError("deadline_s must be > 0")
        if not 0 < self.deadline_min_s <= self.deadline_max_s:
            raise ValueError("deadline_min_s must be > 0 and <= deadline_max_s")
        if not 0.0 <= self.trim_fraction < 0.5:
            raise ValueError("trim_fraction must be in [0, 0.5)")
        if self.max_update_norm_ratio < 0:
            raise ValueError("max_update_norm_ratio must be >= 0 (0: off)")
        if self.stream_idle_s <= 0:
            raise ValueError("stream_idle_s must be > 0")
        if self.max_workers < 16:
            raise ValueError("max_workers must be >= 16 (long polls, streams and a reserve)")
        if self.error_budget is not None and self.error_budget <= 0:
            raise ValueError("error_budget must be > 0")
        self.state_dir = Path(self.state_dir).expanduser()
