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
