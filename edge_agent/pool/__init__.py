"""A pool of trusted boards training as one participant (docs/pools.md).

The leader (``greenfed-agent run`` with a ``[pool]`` table) admits members through its gate
(:mod:`.gate`, mutual TLS), plans each round (:func:`greenfed.pool.plan_pool`), opens a
process group on the pool's interface (:mod:`.comm`) and runs its rank of the round
(:mod:`.worker`: data parallel or a GPipe stage, :mod:`.engines`); members
(``greenfed-agent pool-member``, :mod:`.member`) run theirs and report their own measured
windows (:mod:`.meter`). Nothing here is imported by the plain agent unless it leads a pool:
torch.distributed is loaded on first use, and :mod:`.capability` says plainly when a torch
lacks it.
"""
