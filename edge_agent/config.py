"""Agent configuration: one typed dataclass, filled from TOML + CLI flags by the CLI only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edge_agent.pool.config import PoolConfig
from edge_agent.sensing import SensingConfig
from greenfed.errors import ConfigError

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass
class AgentTlsConfig:
    """Client side of mutual TLS: this device's certificate and the CA of the coordinator."""

    cert: Optional[Path] = None  # device certificate (PEM); its common name is the device id
    key: Optional[Path] = None  # its private key (PEM)
    ca: Optional[Path] = None  # CA certificate that signed the coordinator's (PEM)
    server_name: Optional[str] = None  # override the name checked in the server certificate


@dataclass
class AgentConfig:
    coordinator: str = "127.0.0.1:50051"  # host:port of the coordinator
    device_id: str = ""  # this device's id (under TLS: must equal its certificate's CN)
    data: str = "digits:shard=1/4"  # local data spec: digits shard, image folder or .npz
    state_dir: Path = Path("~/.local/state/greenfed-agent")  # profile, pending uploads
    profile: Optional[Path] = None  # calibration profile (default: state_dir/calibration.json)
    quick_calibration: bool = True  # calibrate briefly at start when no profile exists
    uplink_mbps: Optional[float] = None  # emulate a slow uplink (records say "emulated link")
    num_threads: int = 1  # torch threads for training (leave a core for I/O)
    bits_min: int = 0  # this device's own lowest acceptable bits (0: any)
    bits_max: int = 0  # highest useful bits (0: any)
    rpc_timeout_s: float = 60.0  # deadline of each unary call beyond the long poll
    backoff_initial_s: float = 0.5  # first reconnect delay; doubles up to backoff_max_s
    backoff_max_s: float = 15.0
    max_model_bytes: int = 256 * 1024 * 1024  # refuse larger global models
    exit_when_finished: bool = True  # exit 0 when the coordinator says the run is over
    sysfs_root: Path = Path("/")  # read sensors under another root (containers, tests)
    tls: AgentTlsConfig = field(default_factory=AgentTlsConfig)
    sensing: SensingConfig = field(default_factory=SensingConfig)
    pool: Optional[PoolConfig] = None  # lead a pool of boards as one participant (docs/pools.md)

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.device_id):
            raise ConfigError(
                "device_id is required: 1-64 letters, digits, '_', '.', ':' or '-' "
                f"(got {self.device_id!r})"
            )
        if self.uplink_mbps is not None and self.uplink_mbps <= 0:
            raise ConfigError("uplink_mbps must be > 0")
        if self.num_threads < 1:
            raise ConfigError("num_threads must be >= 1")
        for name in ("bits_min", "bits_max"):
            v = getattr(self, name)
            if not 0 <= v <= 16:
                raise ConfigError(f"{name} must be 0 (any) or in 1..16")
        self.state_dir = Path(self.state_dir).expanduser()
        if self.profile is not None:
            self.profile = Path(self.profile).expanduser()

    @property
    def profile_path(self) -> Path:
        return self.profile if self.profile is not None else self.state_dir / "calibration.json"
