"""Configuration of a pool: the leader's ``[pool]`` table and a member's own file.

Typed dataclasses filled by the CLI from TOML (``greenfed.config``), passed down; the fields
use ``typing`` generics for the boards' Python 3.8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from edge_agent.sensing import SensingConfig

from .errors import PoolConfigError

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
PARALLELISMS = ("auto", "single", "data", "pipeline")
ENGINES = ("auto", "pipelining", "p2p")


@dataclass
class PoolConfig:
    """The leader's ``[pool]`` table in agent.toml: its members and how they meet."""

    members: List[str] = field(default_factory=list)  # enrolled member ids (their certs' CN)
    interface: str = "lo"  # the pool's network interface: the gate, store and gloo bind here
    gate_port: int = 50061  # where members dial the leader (on the interface's address)
    revoked: List[str] = field(default_factory=list)  # member ids refused even with a valid cert
    wait_members_s: float = 60.0  # at start-up: how long to wait for every member
    timeout_s: float = 60.0  # rendezvous and collective timeout within a round
    parallelism: str = "auto"  # auto: the planner chooses each round; or force one
    engine: str = "auto"  # pipeline engine: torch.distributed.pipelining where present
    micro_batches: int = 0  # force a micro-batch count (0: the planner's)
    width: int = 0  # members (leader included) a pool round uses when they answer (0: any)
    shared_host: bool = False  # members share this machine: per-process estimated power
    host_cores: int = 0  # with shared_host: cores of the host (0: os.cpu_count())
    memory_bytes: float = 0.0  # the leader's memory for training (0: what is available)
    calibration_steps: int = 4  # pool steps of the calibration workload at start-up
    insecure: bool = False  # allow a gate without TLS on a non-loopback interface

    def __post_init__(self) -> None:
        for m in self.members:
            if not _ID_RE.match(m):
                raise PoolConfigError(f"pool.members: {m!r} is not a valid id")
        if len(set(self.members)) != len(self.members):
            raise PoolConfigError("pool.members: ids must be unique")
        if self.parallelism not in PARALLELISMS:
            raise PoolConfigError(f"pool.parallelism must be one of {', '.join(PARALLELISMS)}")
        if self.engine not in ENGINES:
            raise PoolConfigError(f"pool.engine must be one of {', '.join(ENGINES)}")
        if self.timeout_s <= 0 or self.wait_members_s < 0:
            raise PoolConfigError("pool.timeout_s must be > 0 and pool.wait_members_s >= 0")
        if not 0 < self.gate_port < 65536 and self.gate_port != 0:
            raise PoolConfigError("pool.gate_port must be a TCP port (0: any free one)")
        if self.micro_batches < 0 or self.calibration_steps < 1 or self.width < 0:
            raise PoolConfigError(
                "pool.micro_batches >= 0, pool.width >= 0 and pool.calibration_steps >= 1"
            )


@dataclass
class MemberTlsConfig:
    """The member's device certificate and the fleet CA (as the agent's ``[tls]``)."""

    cert: Optional[Path] = None  # this member's device certificate (PEM); CN = member_id
    key: Optional[Path] = None  # its private key (PEM)
    ca: Optional[Path] = None  # the fleet CA that signed the leader's certificate (PEM)


@dataclass
class MemberConfig:
    """``greenfed-agent pool-member``: one board lending itself to a leader's pool."""

    leader: str = "127.0.0.1:50061"  # HOST:PORT of the leader's gate
    member_id: str = ""  # under TLS: must equal this board's certificate's CN
    leader_id: str = ""  # the leader's certificate CN to expect (under TLS; "" any)
    data: str = "digits:split=train"  # the pool's data set: the same images as the leader's
    interface: str = ""  # this board's pool interface for gloo ("" lets gloo pick)
    state_dir: Path = Path("~/.local/state/greenfed-pool-member")  # calibration profile
    profile: Optional[Path] = None  # calibration profile (default: state_dir/calibration.json)
    quick_calibration: bool = True  # calibrate briefly at start when no profile exists
    num_threads: int = 1  # torch threads for training
    memory_bytes: float = 0.0  # memory for training (0: what is available)
    shared_host: bool = False  # members share one machine: per-process estimated power
    host_cores: int = 0  # with shared_host: cores of the host (0: os.cpu_count())
    backoff_initial_s: float = 0.5  # first redial delay; doubles up to backoff_max_s
    backoff_max_s: float = 15.0  # longest redial delay, seconds
    exit_when_finished: bool = True  # exit 0 when the leader says bye
    sysfs_root: Path = Path("/")  # read sensors under another root (containers, tests)
    tls: MemberTlsConfig = field(default_factory=MemberTlsConfig)  # mutual TLS with the leader
    sensing: SensingConfig = field(default_factory=SensingConfig)  # as the agent's [sensing]

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.member_id):
            raise PoolConfigError(
                "member_id is required: 1-64 letters, digits, '_', '.', ':' or '-' "
                f"(got {self.member_id!r})"
            )
        if self.num_threads < 1:
            raise PoolConfigError("num_threads must be >= 1")
        self.state_dir = Path(self.state_dir).expanduser()
        if self.profile is not None:
            self.profile = Path(self.profile).expanduser()

    @property
    def profile_path(self) -> Path:
        return self.profile if self.profile is not None else self.state_dir / "calibration.json"
