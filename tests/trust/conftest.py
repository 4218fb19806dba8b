"""Trust and survival tests: reuse the end-to-end helpers (Cluster, rows, wait_for)."""

from tests.e2e.conftest import cluster_factory, profile_path

__all__ = ["cluster_factory", "profile_path"]
