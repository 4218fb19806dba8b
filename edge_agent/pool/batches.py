"""The round's batches, drawn identically on every member from the round's seed.

Every member holds the pool's data set and draws the same sequence as
:func:`greenfed.ddpm.train_local` does on one board (one seeded generator: an epoch's
permutation, then per step the timesteps and the noise), so a pool trains exactly the round a
single board would: a data-parallel member keeps its rows of each batch, a pipeline's first
stage feeds the noised images and its last stage scores against the noise, with nothing but
activations on the wire. The loss of a part of a batch is the sum of its samples' mean squared
errors divided by the *whole* batch size, so parts add up to the batch's mean exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch

from greenfed.ddpm.schedule import NoiseSchedule


@dataclass
class Batch:
    """One step's batch: noised images ``x_t``, timesteps ``t``, target ``noise``."""

    x_t: torch.Tensor
    t: torch.Tensor
    noise: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.t.shape[0])

    def rows(self, lo: int, hi: int) -> Batch:
        return Batch(self.x_t[lo:hi], self.t[lo:hi], self.noise[lo:hi])


class SharedBatches:
    """``next()`` gives the same batches as ``train_local`` with the same seed draws."""

    def __init__(
        self, data: torch.Tensor, batch_size: int, seed: int, schedule: NoiseSchedule
    ) -> None:
        self.data = data
        self.n = int(data.shape[0])
        self.bs = min(batch_size, self.n)
        self.schedule = schedule
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(self.n, generator=self.gen)
        self.pos = 0

    def next(self) -> Batch:
        if self.pos + self.bs > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        x0 = self.data[self.perm[self.pos : self.pos + self.bs]]
        self.pos += self.bs
        t = torch.randint(0, self.schedule.num_steps, (self.bs,), generator=self.gen)
        noise = torch.randn(x0.shape, generator=self.gen)
        return Batch(self.schedule.add_noise(x0, noise, t), t, noise)


def part_loss(eps: torch.Tensor, noise: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Sum over this part's samples of their mean squared error, / the whole batch size."""
    return ((eps - noise) ** 2).mean(dim=tuple(range(1, eps.ndim))).sum() / batch_size


def split_rows(total: int, parts: int) -> Tuple[Tuple[int, int], ...]:
    """``[lo, hi)`` row ranges of ``parts`` near-equal parts (as ``torch.tensor_split``)."""
    base, extra = divmod(total, parts)
    out, lo = [], 0
    for p in range(parts):
        hi = lo + base + (1 if p < extra else 0)
        out.append((lo, hi))
        lo = hi
    return tuple(out)
