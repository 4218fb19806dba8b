"""Errors of the emulated-board testbed (the tree is drawn in coordinator/boards/__init__.py)."""

from __future__ import annotations


class BoardError(Exception):
    """Base of the emulated-board testbed's errors."""


class FleetSpecError(BoardError, ValueError):
    """A board spec or fleet is invalid; the message names what and lists the known profiles."""


class BoardsUnavailable(BoardError):
    """Emulated boards cannot run here (not root, no CPU controller); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"emulated boards unavailable: {reason}")
        self.reason = reason
