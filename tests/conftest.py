"""Suite-wide: tests marked ``cuda`` run only where torch sees a CUDA GPU; one BLAS thread."""

from __future__ import annotations

from typing import Iterator, List

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    """numpy/scipy's BLAS on one thread: the suite's linear algebra is small, and OpenBLAS's
    spinning worker threads slowed a SciPy reference 9x on a loaded 2-core machine (85 s vs
    9.6 s). torch sets its own threads per test."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
