"""Domain errors of the coordinator, each mapped to one gRPC status by the servicer.

::

    CoordinatorError                    (INTERNAL)
    ├── UnknownDevice                   (PERMISSION_DENIED) not enrolled / no identity
    ├── RevokedDevice                   (PERMISSION_DENIED) enrolled, then revoked
    ├── NotAssigned                     (FAILED_PRECONDITION) device has no part in this round
    ├── StaleRound                      (FAILED_PRECONDITION) round closed, aborted or not open yet
    ├── DuplicateUpload                 (ALREADY_EXISTS) update for this round already accepted
    ├── DuplicateReport                 (ALREADY_EXISTS) report for this round already recorded
    ├── UploadTooLarge                  (RESOURCE_EXHAUSTED) manifest or stream over a limit
    ├── UploadIncomplete                (FAILED_PRECONDITION) stream ended early; resume possible
    ├── ChecksumMismatch                (DATA_LOSS) sha256 of the received frame differs
    ├── InvalidUpdate                   (INVALID_ARGUMENT) undecodable, wrong shapes, NaN, ...
    ├── InvalidRequest                  (INVALID_ARGUMENT) malformed field in a request
    ├── TooManyStreams                  (RESOURCE_EXHAUSTED) long-lived calls over a limit
    ├── Unavailable                     (UNAVAILABLE) shutting down / try again later
    ├── CheckpointFailed                (INTERNAL) the coordinator could not write a checkpoint;
    │                                   never sent to a device: it stops the run
    │   The operator's side (never sent to a device; the commands print them and exit 2):
    ├── ServerConfigError (ValueError)  the listen address and TLS settings do not fit together
    ├── CertError (ValueError)          enrolment material cannot be made or read
    ├── LaunchError (RuntimeError)      a local process could not start or died before ready
    ├── StoreError                      the state store cannot be opened (not a greenfed store,
    │                                   or written by a newer greenfed)
    ├── ExperimentError (ValueError)    an experiment cannot run as asked
    └── ReportError (ValueError)        a report source is missing or not a greenfed store

The allocator (``coordinator.allocator``) is pure and keeps its own tree (``AllocatorError``,
drawn in coordinator/allocator/errors.py); configuration and scheme errors come from
``greenfed.errors`` (``ConfigError``; the allocator's ``SchemeError`` is one).

Every refusal carries a message a user can act on; the servicer sends it as the status detail.
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Base of all coordinator refusals."""

    code_name = "INTERNAL"


class UnknownDevice(CoordinatorError):
    code_name = "PERMISSION_DENIED"


class RevokedDevice(CoordinatorError):
    code_name = "PERMISSION_DENIED"


class NotAssigned(CoordinatorError):
    code_name = "FAILED_PRECONDITION"


class StaleRound(CoordinatorError):
    code_name = "FAILED_PRECONDITION"


class DuplicateUpload(CoordinatorError):
    code_name = "ALREADY_EXISTS"


class DuplicateReport(CoordinatorError):
    code_name = "ALREADY_EXISTS"


class UploadTooLarge(CoordinatorError):
    code_name = "RESOURCE_EXHAUSTED"


class UploadIncomplete(CoordinatorError):
    code_name = "FAILED_PRECONDITION"


class ChecksumMismatch(CoordinatorError):
    code_name = "DATA_LOSS"


class InvalidUpdate(CoordinatorError):
    code_name = "INVALID_ARGUMENT"


class InvalidRequest(CoordinatorError):
    code_name = "INVALID_ARGUMENT"


class TooManyStreams(CoordinatorError):
    """``per_device``: over the caller's own cap (it holds a slot, so it is known), not the
    server's overall one."""

    code_name = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, per_device: bool = False) -> None:
        super().__init__(message)
        self.per_device = per_device


class CheckpointFailed(CoordinatorError):
    code_name = "INTERNAL"


class Unavailable(CoordinatorError):
    code_name = "UNAVAILABLE"


class ServerConfigError(CoordinatorError, ValueError):
    """The listen address and TLS settings do not fit together."""


class CertError(CoordinatorError, ValueError):
    """Enrolment material cannot be made or read (bad id, missing CA, unreadable file)."""


class LaunchError(CoordinatorError, RuntimeError):
    """A process could not be started or died before it was ready."""


class ExperimentError(CoordinatorError, ValueError):
    """The experiment cannot run as asked (bad setup, unusable output folder)."""


class ReportError(CoordinatorError, ValueError):
    """The report source is missing or is not a greenfed store or run directory."""


class StoreError(CoordinatorError):
    """The state store cannot be opened: not a greenfed store, or a newer schema."""
