"""Errors raised by :mod:`greenfed.ddpm`, one tree under :class:`greenfed.errors.GreenfedError`::

    DdpmError
    ├── ModelConfigError (ConfigError)  a UNetConfig is invalid or cannot be loaded
    ├── ScheduleError (ValueError)      a schedule configuration or call is invalid
    ├── DataSpecError (ValueError)      a data spec is malformed, or its data cannot be used
    ├── TrainError (ValueError)         a training configuration or input is invalid
    ├── CheckpointError (ValueError)    a checkpoint or state dict does not fit the model
    ├── QualityError (ValueError)       feature weights or reference data unusable for the metric
    ├── OnnxSamplerError (ValueError)   an ONNX file lacks greenfed's metadata or cannot load
    └── ExportError (RuntimeError)      the model could not be exported to ONNX

No torch import here: boards that only sample with onnxruntime import this module too.
"""

from __future__ import annotations

from greenfed.errors import ConfigError, GreenfedError


class DdpmError(GreenfedError):
    """Base class of greenfed.ddpm's errors."""


class ModelConfigError(DdpmError, ConfigError):
    """A model configuration is invalid or cannot be loaded."""


class ScheduleError(DdpmError, ValueError):
    """A schedule configuration or call is invalid."""


class DataSpecError(DdpmError, ValueError):
    """A data spec string is malformed, or the data it names cannot be used."""


class TrainError(DdpmError, ValueError):
    """A training configuration or input is invalid."""


class CheckpointError(DdpmError, ValueError):
    """A checkpoint or a state dict does not fit the model."""


class QualityError(DdpmError, ValueError):
    """Feature weights or reference data are unusable for the metric."""


class OnnxSamplerError(DdpmError, ValueError):
    """The ONNX file lacks greenfed's metadata or cannot be loaded."""


class ExportError(DdpmError, RuntimeError):
    """The model could not be exported."""
