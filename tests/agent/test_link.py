from __future__ import annotations

import pytest

from edge_agent.link import TokenBucket, mbps_to_bytes_per_s, shaped


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def test_bucket_paces_to_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000.0, burst_bytes=100, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        bucket.consume(100)
    # 5000 bytes at 1000 B/s with a 100 B initial burst: 4.9 s of emulated time.
    assert clock.t == pytest.approx(4.9, rel=1e-6)


def test_shaped_preserves_bytes_and_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(mbps_to_bytes_per_s(8.0), burst_bytes=1000, clock=clock, sleep=clock.sleep)
    data = [bytes(range(256)) * 40, b"tail"]
    out = b"".join(shaped(data, bucket, piece=1000))
    assert out == b"".join(data)
    assert clock.t == pytest.approx((len(out) - 1000) / 1e6, rel=1e-6)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_scheduled_bucket_follows_its_trace() -> None:
    from edge_agent.link import ScheduledBucket

    clock = FakeClock()
    # 8 Mbit/s (1 MB/s) for the first 2 s of wall time, then 0.8 Mbit/s (100 kB/s).
    bucket = ScheduledBucket(
        lambda t: 8.0 if t < 2.0 else 0.8, burst_bytes=1, clock=clock, sleep=clock.sleep, wall=clock
    )
    for _ in range(20):
        bucket.consume(100_000)  # 2 MB in 2 s at the fast rate
    fast = clock.t
    for _ in range(10):
        bucket.consume(10_000)  # 100 kB at the slow one: about another second
    assert fast == pytest.approx(2.0, rel=1e-3) and clock.t - fast == pytest.approx(1.0, rel=0.01)


def test_link_record_of_each_kind(tmp_path) -> None:
    from edge_agent.config import AgentConfig, LinkConfig
    from edge_agent.link_record import LinkRecord

    own = LinkRecord(AgentConfig(device_id="a"))
    assert (own.kind, own.label, own.bucket, own.prior_mbps) == ("", "", None, 0.0)
    assert own.configured_mbps(0.0, 10.0) == 0.0
    emulated = LinkRecord(AgentConfig(device_id="a", uplink_mbps=5.0))
    assert emulated.kind == "emulated" and emulated.profile == "5 Mbit/s"
    assert emulated.bucket is not None and emulated.configured_mbps(0.0, 10.0) == 5.0
    log = tmp_path / "a.rates.csv"
    log.write_text("time_unix,mbps\n100,20\n110,2\n")
    shaped = LinkRecord(
        AgentConfig(
            device_id="a",
            link=LinkConfig(kind="shaped", profile="trace step", rate_mbps=20.0, rate_log=log),
        )
    )
    assert shaped.bucket is None and shaped.label == "shaped link (netns/tc)"
    assert shaped.prior_mbps == 20.0
    assert shaped.configured_mbps(105.0, 115.0) == pytest.approx(11.0)  # read from the log
    log.write_text("garbage")
    assert shaped.configured_mbps(105.0, 115.0) == 20.0  # unreadable log: the configured rate
