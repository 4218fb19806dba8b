"""One rank of pool steps in its own process (the gradient tests start two of these).

``python -m tests.pool.rank_main RANK JOBS.json``: for each job ``{"spec", "port", "out"}``
in turn, joins the process group whose store listens on 127.0.0.1:``port``, takes its part
in the steps of the round in ``spec`` (lr 0 and no clipping leave the last step's gradient in
``.grad``), writes that gradient, by the parameter's name in the whole UNet, to ``out``
(.npz) and leaves the group. One process runs every job: torch starts once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edge_agent.pool.comm import GroupSpec, close_group, open_group
from edge_agent.pool.meter import PhaseMeter
from edge_agent.pool.worker import RoundSpec, prepare
from greenfed.ddpm import load_data
from greenfed.ddpm.checkpoint import get_state_arrays
from greenfed.ddpm.unet import UNetConfig, build_model

IMAGES = "digits:split=train"
MODEL_SEED = 3


def run_job(rank: int, spec: RoundSpec, port: int, out: Path) -> dict:
    open_group(GroupSpec("127.0.0.1", port, rank, spec.world_size, 60.0, interface="lo"))
    try:
        images = load_data(IMAGES).images[:256]
        start = None
        if rank == 0:
            start = get_state_arrays(
                build_model(UNetConfig.from_dict(spec.model_config["unet"]), seed=MODEL_SEED)
            )
        meter = PhaseMeter()
        ready = prepare(spec, rank, images, meter, start)
        ready.engine.run(ready.batches)
        meter.stop()
        grads = {n: p.grad.detach().numpy() for n, p in ready.named_parameters()}
        np.savez(out, **grads)
        return {"sent": meter.bytes_sent, "received": meter.bytes_received}
    finally:
        close_group()


def main(argv: list) -> int:
    rank = int(argv[0])
    jobs = json.loads(Path(argv[1]).read_text())
    traffic = []
    for j in jobs:
        spec = RoundSpec.from_dict(j["spec"])
        traffic.append(run_job(rank, spec, int(j["port"]), Path(j["out"]) / f"g{rank}.npz"))
    print(json.dumps(traffic))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
