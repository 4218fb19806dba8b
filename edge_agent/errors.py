"""Errors of the edge agent, one tree::

    AgentError                          base: the agent cannot go on as asked
    ├── Refused                         the coordinator refused a call (``code``: gRPC status,
    │                                   ``message``: its reason); not retried
    └── Stopped                         the agent was asked to stop while waiting (SIGTERM)

Beside it, with their own trees: :mod:`edge_agent.sensing.errors` (``SensingError``: power
sources, clocks, DVFS, calibration) and :mod:`greenfed.errors` (``ConfigError`` for a bad
agent configuration, ``CodecError``, ``DdpmError``). Transient network failures are not
errors here: the client retries them with jittered backoff (edge_agent/client.py).
"""

from __future__ import annotations

import grpc


class AgentError(Exception):
    """Base of the agent's errors."""


class Refused(AgentError):
    """The coordinator refused a call; ``code`` is the gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class Stopped(AgentError):
    """The agent was asked to stop while waiting."""
