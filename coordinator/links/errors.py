"""Errors of the link testbed (the tree is drawn in coordinator/links/__init__.py)."""

from __future__ import annotations


class LinkError(Exception):
    """Base of the link testbed's errors."""


class ProfileError(LinkError, ValueError):
    """A link profile or its text form is invalid; the message names the field."""


class ShapingUnavailable(LinkError):
    """Kernel shaping cannot run here (not root, no iproute2, no TUN); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"shaped links unavailable: {reason}")
        self.reason = reason


class KernelCommandError(LinkError):
    """An ``ip`` or ``tc`` command failed; the message holds the command and its stderr."""

    def __init__(self, argv: list, returncode: int, stderr: str) -> None:
        cmd = " ".join(str(a) for a in argv)
        super().__init__(f"`{cmd}` failed (exit {returncode}): {stderr.strip()[:500]}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class DelayLineError(LinkError):
    """The user-space delay line did not start or died."""
