"""The committed generated code must match proto/ (regenerate with scripts/gen-protos)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from greenfed.v1 import fleet_pb2

ROOT = Path(__file__).resolve().parents[1]


def _clear_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _clear_json_names(nested)


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    protoc = pytest.importorskip("grpc_tools.protoc")
    out = tmp_path / "fleet.desc"
    rc = protoc.main(
        ["protoc", f"-I{ROOT / 'proto'}", f"--descriptor_set_out={out}", "greenfed/v1/fleet.proto"]
    )
    assert rc == 0, "protoc failed on proto/greenfed/v1/fleet.proto"
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    # Descriptor sets carry derived json_name values that gencode leaves out.
    for message in compiled.message_type:
        _clear_json_names(message)
    committed = descriptor_pb2.FileDescriptorProto.FromString(fleet_pb2.DESCRIPTOR.serialized_pb)
    assert committed == compiled, "greenfed/v1 is stale: run scripts/gen-protos and commit"


def test_generated_code_has_no_runtime_version_gate() -> None:
    # Boards on Python 3.8 run protobuf < 6; gencode with a version gate would refuse them.
    text = (ROOT / "greenfed" / "v1" / "fleet_pb2.py").read_text()
    assert "ValidateProtobufRuntimeVersion" not in text
    grpc_text = (ROOT / "greenfed" / "v1" / "fleet_pb2_grpc.py").read_text()
    assert "GRPC_GENERATED_VERSION" not in grpc_text
