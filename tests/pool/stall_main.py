"""A rank that stalls: ``python -m tests.pool.stall_main RANK PORT TIMEOUT_S KIND``.

Rank 1 joins the group and then sleeps instead of taking part; rank 0 waits in an
``all_reduce`` or a ``recv`` (KIND) and prints, as JSON, how it ended and after how long.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from edge_agent.pool.comm import Comm, GroupSpec, close_group, open_group
from edge_agent.pool.errors import PoolRoundFailed
from edge_agent.pool.meter import PhaseMeter


def main(argv: list) -> int:
    rank, port, timeout_s, kind = int(argv[0]), int(argv[1]), float(argv[2]), argv[3]
    open_group(GroupSpec("127.0.0.1", port, rank, 2, timeout_s, interface="lo"))
    if rank == 1:
        time.sleep(10 * timeout_s)  # the test kills it first
        return 0
    comm = Comm(PhaseMeter(), 0, 2)
    t0 = time.monotonic()
    try:
        if kind == "all_reduce":
            comm.all_reduce(torch.ones(4))
        else:
            comm.recv([(4,)], 1)
        outcome = "returned"
    except PoolRoundFailed as e:
        outcome = f"failed: {e}"
    print(json.dumps({"outcome": outcome, "after_s": time.monotonic() - t0}))
    close_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
