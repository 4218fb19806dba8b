"""The trace replayer applies each link's steps at their times (a fake clock, no kernel)."""

from __future__ import annotations

import threading
from typing import List, Tuple

from coordinator.links.replay import TraceReplayer
from greenfed.linktrace import RateSchedule


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_steps_are_applied_in_order_and_stale_ones_collapse() -> None:
    clock = Clock()
    applied: List[Tuple[str, float]] = []
    cond = threading.Condition()

    def apply(device: str, mbps: float) -> None:
        if device == "boom":
            raise RuntimeError("tc failed")
        with cond:
            applied.append((device, mbps))
            cond.notify_all()

    def wait_for(n: int) -> None:
        with cond:  # a hang guard only: the replayer wakes at least once a second
            assert cond.wait_for(lambda: len(applied) >= n, timeout=10.0), applied

    replay = TraceReplayer(apply, clock=clock)
    # The first step of a schedule is the link's initial rate, applied when it was built.
    replay.add("a", RateSchedule((100.0, 101.0, 102.0, 103.0), (20.0, 10.0, 5.0, 2.0)))
    replay.add("boom", RateSchedule((100.0, 101.0), (1.0, 2.0)))
    clock.t = 102.5  # the steps at 101 and 102 are both due: only the latest is applied
    replay.start()
    try:
        wait_for(1)
        clock.t = 103.0
        wait_for(2)
    finally:
        replay.stop()
    assert applied == [("a", 5.0), ("a", 2.0)]
    assert replay.failures == 1 and replay.applied == {"a": 2}
