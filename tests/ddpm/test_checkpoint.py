"""Checkpoint round trip with configs inside; the numpy state view for the codec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from greenfed.ddpm import (
    CheckpointError,
    NoiseSchedule,
    build_model,
    get_state_arrays,
    load_checkpoint,
    preset,
    save_checkpoint,
    set_state_arrays,
    state_nbytes,
    tensor_names,
)


def test_round_trip(tmp_path: Path) -> None:
    cfg = preset("pi-small", in_channels=3, image_size=16)
    model, sched = build_model(cfg, seed=4), NoiseSchedule(300, "linear")
    ema = {k: v + 1 for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "m.pt", model, sched, ema=ema, meta={"round": 3})
    ck = load_checkpoint(tmp_path / "m.pt")
    assert ck.config == cfg and ck.schedule.config == sched.config and ck.meta == {"round": 3}
    assert ck.ema is not None and torch.equal(ck.ema["conv_in.weight"], ema["conv_in.weight"])
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(ck.model(x, t), model.eval()(x, t))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")


def test_state_arrays_round_trip_and_order() -> None:
    a, b = build_model(preset("pi-small"), seed=1), build_model(preset("pi-small"), seed=2)
    arrays = get_state_arrays(a)
    assert list(arrays) == tensor_names(a) == tensor_names(b)
    assert all(v.dtype == np.float32 for v in arrays.values())
    assert sum(v.nbytes for v in arrays.values()) == state_nbytes(a)
    arrays["conv_in.weight"][...] = 0.25  # a copy: the model is untouched
    assert not torch.all(a.conv_in.weight == 0.25)
    set_state_arrays(b, arrays)
    assert torch.all(b.conv_in.weight == 0.25)
    assert torch.equal(b.conv_out.weight, a.conv_out.weight)
    bad = dict(arrays)
    bad.pop("conv_in.bias")
    with pytest.raises(CheckpointError, match="missing"):
        set_state_arrays(b, bad)
    bad = dict(arrays, **{"conv_in.bias": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="shape"):
        set_state_arrays(b, bad)


def test_failed_save_leaves_previous_checkpoint_and_no_temp(tmp_path, monkeypatch) -> None:
    import pytest as _pytest
    import torch as _torch

    from greenfed.ddpm import NoiseSchedule, build_model, load_checkpoint, preset, save_checkpoint

    model = build_model(preset("pi-small"))
    path = tmp_path / "round.pt"
    save_checkpoint(path, model, NoiseSchedule(num_steps=10))
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_torch, "save", full_disk)
    with _pytest.raises(OSError, match="No space"):
        save_checkpoint(path, model, NoiseSchedule(num_steps=10))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))
    assert load_checkpoint(path).config == model.config
