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
DEFAULT_STATE_DIR = Path("~/.local/state/greenfed-agent")
PROFILE_FILE = "calibration.json"  # under state_dir unless `profile` names another file


def profile_location(profile: Optional[Path], state_dir: Path) -> Path:
    """The one calibration profile: ``profile`` when set, else ``state_dir/calibration.json``.

    ``greenfed-agent calibrate`` writes it there by default and ``run`` reads it from there.
    """
    if profile is not None:
        return Path(profile).expanduser()
    return Path(state_dir).expanduser() / PROFILE_FILE


@dataclass
class ProfileKeys:
    """The agent TOML's keys that place the profile, for commands that need only those."""

    profile: Optional[Path] = None
    state_dir: Path = DEFAULT_STATE_DIR

    @property
    def path(self) -> Path:
        return profile_location(self.profile, self.state_dir)


@dataclass
class AgentTlsConfig:
    """Client side of mutual TLS: this device's certificate and the CA of the coordinator."""

    cert: Optional[Path] = None  # device certificate (PEM); its common name is the device id
    key: Optional[Path] = None  # its private key (PEM)
    ca: Optional[Path] = None  # CA certificate that signed the coordinator's (PEM)
    server_name: Optional[str] = None  # override the name checked in the server certificate


@dataclass
class LinkConfig:
    """The test link this agent runs behind, as a launcher set it up (for its round reports).

    Written by the coordinator's link testbed (docs/links.md); a board on its own network
    leaves it out. ``kind = "shaped"``: the agent runs in a network namespace whose uplink
    the kernel shapes; with ``uplink_mbps`` set the link is emulated in-process instead.
    """

    kind: str = ""  # "shaped", "emulated" or "" (the board's own network)
    profile: str = ""  # the configured link as text, copied into every round report
    rate_mbps: float = 0.0  # configured rate at the start: the coordinator's prior until measured
    trace: Optional[Path] = None  # emulated link: bandwidth trace (CSV time_s,mbps) to follow
    trace_t0_unix: float = 0.0  # wall-clock time of the trace's time 0 (0: the agent's start)
    trace_offset_s: float = 0.0  # start the trace this many seconds in
    rate_log: Optional[Path] = None  # shaped link: the testbed's log of applied rates

    def __post_init__(self) -> None:
        if self.kind not in ("", "shaped", "emulated"):
            raise ValueError('link.kind must be "shaped", "emulated" or "" (none)')
        if self.rate_mbps < 0 or self.trace_offset_s < 0:
            raise ValueError("link.rate_mbps and link.trace_offset_s must be >= 0")


@dataclass
class AgentConfig:
    coordinator: str = "127.0.0.1:50051"  # host:port of the coordinator
    device_id: str = ""  # this device's id (under TLS: must equal its certificate's CN)
    data: str = "digits:shard=1/4"  # local data spec: digits shard, image folder or .npz
    state_dir: Path = DEFAULT_STATE_DIR  # profile, pending uploads
    profile: Optional[Path] = None  # calibration profile; unset: state_dir/calibration.json
    quick_calibration: bool = True  # without a profile: calibrate briefly at start, and log it
    uplink_mbps: Optional[float] = None  # emulate a slow uplink (records say "emulated link")
    num_threads: int = 1  # torch threads for training (leave a core for I/O)
    device: str = "auto"  # where rounds train: auto (CUDA when torch has a GPU), cpu, cuda
    bits_min: int = 0  # this device's own lowest acceptable bits (0: any)
    bits_max: int = 0  # highest useful bits (0: any)
    rpc_timeout_s: float = 60.0  # deadline of each unary call beyond the long poll
    backoff_initial_s: float = 0.5  # first reconnect delay; doubles up to backoff_max_s
    backoff_max_s: float = 15.0
    max_model_bytes: int = 256 * 1024 * 1024  # refuse larger global models
    exit_when_finished: bool = True  # exit 0 when the coordinator says the run is over
    sysfs_root: Path = Path("/")  # read sensors under another root (containers, tests)
    tls: AgentTlsConfig = field(default_factory=AgentTlsConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
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
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda (got {self.device!r})")
        for name in ("bits_min", "bits_max"):
            v = getattr(self, name)
            if not 0 <= v <= 16:
                raise ConfigError(f"{name} must be 0 (any) or in 1..16")
        self.state_dir = Path(self.state_dir).expanduser()
        if self.profile is not None:
            self.profile = Path(self.profile).expanduser()

    @property
    def profile_path(self) -> Path:
        return profile_location(self.profile, self.state_dir)
