"""Pool tests run torch on one thread: on a shared 2-core machine, OpenMP threads spinning
against other processes make small convolutions ten times slower."""

from __future__ import annotations

import os
from typing import Dict, Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def child_env() -> Dict[str, str]:
    """Environment of the processes a pool test starts (one OpenMP thread each)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
