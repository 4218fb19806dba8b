"""Generated protobuf and gRPC code for package greenfed.v1 (see scripts/gen-protos)."""
