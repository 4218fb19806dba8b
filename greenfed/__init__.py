"""greenfed: pieces shared by the edge agent and the coordinator.

Subpackages:
    greenfed.codec   update codec (stochastic quantization, bit packing, zstd frames)
    greenfed.ddpm    small DDPM: schedule, UNet, trainer, data, quality metric, ONNX
    greenfed.v1      generated protobuf/gRPC code (do not edit; see scripts/gen-protos)
    greenfed.config  typed dataclass configuration loaded from TOML

Everything here runs on the boards too, so it stays valid on Python 3.8 and torch 2.0.
"""

__version__ = "0.1.0"
