"""The server's fair shares and what its status messages may carry."""

from __future__ import annotations

import pytest

from coordinator.errors import TooManyStreams
from coordinator.limits import CallLimits, StreamSlots
from coordinator.servicer import public_message


@pytest.mark.parametrize("workers", [16, 128, 256, 1000])
def test_long_lived_calls_always_leave_a_reserve(workers: int) -> None:
    lim = CallLimits.for_workers(workers)
    assert lim.polls + lim.downloads + lim.uploads + lim.reserve <= workers
    assert lim.reserve >= 4 and lim.polls >= 1
    assert lim.polls_per_device == 1 and lim.streams_per_device == 2


def test_the_documented_sizing_polls_for_every_device() -> None:
    for devices in (8, 64, 72, 500):
        assert CallLimits.for_workers(2 * devices + 16).polls >= devices


def test_slots_refuse_per_device_then_overall_and_give_back() -> None:
    slots = StreamSlots("WaitAssignment long polls", total=2, per_device=1)
    give_back = slots.take("a")
    with pytest.raises(TooManyStreams, match="device a already has 1 WaitAssignment long polls"):
        slots.take("a")
    slots.take("b")
    with pytest.raises(TooManyStreams, match="has 2 WaitAssignment long polls open, its limit"):
        slots.take("c")
    give_back()
    give_back()  # idempotent
    slots.take("c")
    assert slots.open_count() == 2


def test_status_messages_carry_no_server_paths() -> None:
    text = (
        "[Errno 2] No such file or directory: '/tmp/pytest-of-x/hostile0/state/spool/0-a.part'"
        " or ../../etc/passwd"
    )
    out = public_message(text)
    assert "/tmp" not in out and "etc/passwd" not in out and out.count("<path>") == 2
    plain = "uplink 1 MB/s assumed; 10/20 bytes; J/B; resume from byte 5"
    assert public_message(plain) == plain
    assert len(public_message("x" * 5000)) == 1000
