"""A data-parallel step and pipeline steps, in real processes, against one process.

Two rank processes run three rounds in turn (a fresh process group each, as the pool makes
one per round): data parallel over 2 replicas, a 2-stage pipeline on the point-to-point GPipe
engine (5 unequal micro-batches, cut in the middle of the UNet: the skips cross it), and a
2-stage pipeline under torch.distributed.pipelining (4 micro-batches, an early cut).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from edge_agent.pool.batches import SharedBatches
from edge_agent.pool.comm import start_store
from edge_agent.pool.worker import P2P, PIPELINING, RoundSpec
from greenfed.ddpm import PRESETS, load_data
from greenfed.ddpm.schedule import NoiseSchedule, ScheduleConfig
from greenfed.ddpm.train import images_to_tensor
from greenfed.ddpm.unet import build_model
from tests.pool.conftest import child_env
from tests.pool.rank_main import IMAGES, MODEL_SEED

ROOT = Path(__file__).resolve().parents[2]
MODEL_CONFIG = {"unet": PRESETS["pi-small"].to_dict(), "schedule": ScheduleConfig().to_dict()}
CASES = {
    "data-2": ("data", {}),
    "pipeline-2-p2p": ("pipeline", {"bounds": [0, 7, 11], "micro_batches": 5, "engine": P2P}),
    "pipeline-2-pipelining": (
        "pipeline",
        {"bounds": [0, 3, 11], "micro_batches": 4, "engine": PIPELINING},
    ),
}


def spec(kind: str, **kw: object) -> RoundSpec:
    values = dict(
        round_id="t", kind=kind, members=["a", "b"], model_config=MODEL_CONFIG, steps=2,
        batch_size=24, lr=0.0, seed=11, grad_clip=None, num_threads=1,
    )  # fmt: skip
    values.update(kw)
    return RoundSpec(**values)  # type: ignore[arg-type]


def single_process_grads(s: RoundSpec) -> Dict[str, np.ndarray]:
    """The same steps in this process, the plain way: whole batch, one model."""
    model = build_model(PRESETS["pi-small"], seed=MODEL_SEED)
    schedule = NoiseSchedule.from_config(ScheduleConfig.from_dict(MODEL_CONFIG["schedule"]))
    images = images_to_tensor(load_data(IMAGES).images[:256])
    batches = SharedBatches(images, s.batch_size, s.seed, schedule)
    for _ in range(s.steps):
        b = batches.next()
        model.zero_grad(set_to_none=True)
        torch.mean((model(b.x_t, b.t) - b.noise) ** 2).backward()
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def gathered(folder: Path, world: int, kind: str) -> Dict[str, np.ndarray]:
    grads: Dict[str, np.ndarray] = {}
    for r in range(world):
        with np.load(folder / f"g{r}.npz") as f:
            part = {k: f[k] for k in f.files}
        if kind == "data":
            for k, v in part.items():  # every replica holds the whole reduced gradient
                if k in grads:
                    np.testing.assert_array_equal(grads[k], v)
        else:
            assert not set(part) & set(grads), "a parameter trained on two stages"
        grads.update(part)
    return grads


def worst_relative(got: Dict[str, np.ndarray], ref: Dict[str, np.ndarray]) -> float:
    assert set(got) == set(ref)
    return max(float(np.linalg.norm(got[k] - ref[k]) / np.linalg.norm(ref[k])) for k in ref)


@pytest.fixture(scope="module")
def pool_runs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, dict]:
    """Every case run once by two rank processes; per case its folder and traffic."""
    tmp = tmp_path_factory.mktemp("ranks")
    stores, jobs = [], []
    for name, (kind, extra) in CASES.items():
        store, port = start_store("127.0.0.1", 2, 60.0)
        stores.append(store)
        (tmp / name).mkdir()
        jobs.append({"spec": spec(kind, **extra).to_dict(), "port": port, "out": str(tmp / name)})
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    cmd = [sys.executable, "-m", "tests.pool.rank_main"]
    procs = [
        subprocess.Popen(
            [*cmd, str(r), str(tmp / "jobs.json")],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = []
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        stores.clear()
    errors = "\n".join(f"rank {i}:\n{e[-2500:]}" for i, (_, e) in enumerate(results))
    assert all(p.returncode == 0 for p in procs), errors
    traffic: List[list] = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    return {
        name: {"folder": tmp / name, "traffic": [t[i] for t in traffic]}
        for i, name in enumerate(CASES)
    }


@pytest.mark.parametrize("case", list(CASES))
def test_pool_step_gradient_matches_one_process(case: str, pool_runs: Dict[str, dict]) -> None:
    kind, extra = CASES[case]
    s = spec(kind, **extra)
    run = pool_runs[case]
    rel = worst_relative(gathered(run["folder"], 2, kind), single_process_grads(s))
    assert rel < 1e-5, f"worst relative gradient difference {rel:.2e}"
    assert all(t["sent"] > 0 and t["received"] > 0 for t in run["traffic"])
