"""Errors raised by :mod:`greenfed` (the code both sides share), one tree::

    GreenfedError                       base: anything greenfed/ refuses on purpose
    ├── ConfigError (ValueError)        a configuration file or value is invalid; names the key
    │                                   (the coordinator's SchemeError is one too)
    ├── CodecError                      greenfed.codec: every codec failure (tree in
    │   │                               greenfed/codec/errors.py)
    │   ├── ConfigError                 an invalid CodecConfig (also a greenfed ConfigError)
    │   ├── EncodeInputError, DecoderStateError
    │   └── DecodeError                 a received frame is refused (14 subclasses)
    └── DdpmError                       greenfed.ddpm: model, schedule, data, training,
        │                               checkpoints, metric, ONNX (tree in greenfed/ddpm/errors.py)
        ├── ModelConfigError            an invalid UNetConfig (also a greenfed ConfigError)
        └── ScheduleError, DataSpecError, TrainError, CheckpointError, QualityError,
            ExportError, OnnxSamplerError

Errors of the libraries underneath (OS, zstd, torch, TOML) are translated where they happen,
with ``raise ... from e``. Subclasses keep the builtin base callers already catch
(``ValueError`` for bad input, ``RuntimeError`` for an export that failed).
"""

from __future__ import annotations


class GreenfedError(Exception):
    """Base class of the errors greenfed raises on purpose; the message says what to fix."""


class ConfigError(GreenfedError, ValueError):
    """A configuration file or value is invalid; the message names the key."""
