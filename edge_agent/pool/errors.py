"""Errors of a pool of boards (:mod:`edge_agent.pool`), under the agent's tree::

    AgentError
    └── PoolError                       base: the pool cannot do what was asked
        ├── PoolUnavailable             this torch has no torch.distributed (NVIDIA's stock
        │                               JetPack wheels) or no usable backend; says what to
        │                               install instead
        ├── PoolConfigError             a pool table is inconsistent (also a ConfigError)
        ├── MembershipRefused           the leader refused a member: not enrolled, wrong
        │                               certificate, mismatched data or model
        └── PoolRoundFailed             a round could not finish across the members (a member
                                        died, a collective timed out); the pool uploads
                                        nothing and the coordinator sees a late participant

OS, ssl and torch.distributed errors are translated where they happen (``raise ... from e``).
"""

from __future__ import annotations

from edge_agent.errors import AgentError
from greenfed.errors import ConfigError


class PoolError(AgentError):
    """Base of the pool's errors."""


class PoolUnavailable(PoolError):
    """This board cannot take part in a pool; the message says what to install."""


class PoolConfigError(PoolError, ConfigError):
    """A pool configuration is inconsistent; the message names the key."""


class MembershipRefused(PoolError):
    """The leader refused a member (or a member the leader); the message says why."""


class PoolRoundFailed(PoolError):
    """A round across the members failed; nothing of it is uploaded."""
