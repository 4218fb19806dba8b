"""Fixtures for the link testbed's kernel tests: skipped with the probe's reason where the
machine cannot shape links (not root, no iproute2, no namespaces, no TUN)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from coordinator.links import ShapedLinks
from coordinator.links.kernel import probe
from tests.e2e.conftest import profile_path  # the fixture calibration profile


def skip_unless_shaping() -> None:
    caps = probe()
    if not caps.shaped:
        pytest.skip(caps.summary())


@pytest.fixture
def shaped(tmp_path: Path) -> Iterator[ShapedLinks]:
    """A testbed removed after the test, even when it fails."""
    skip_unless_shaping()
    links = ShapedLinks(tmp_path / "testbed", impair="delay-line")
    try:
        yield links
    finally:
        links.close()


__all__ = ["profile_path", "shaped", "skip_unless_shaping"]
