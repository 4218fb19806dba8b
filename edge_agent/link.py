"""An uplink shaper: a token bucket that paces uploads to an emulated link rate.

Used by ``--uplink-mbps`` so a laptop demo can stand in for boards on slow Wi-Fi, and as the
fallback of the coordinator's link testbed where the kernel cannot shape links (no root): with
``[link] trace`` the rate follows a bandwidth trace (:class:`ScheduledBucket`). Records of these
uploads say ``emulated link (in-process)``: the time is the emulated link's, the energy is what
this machine spent waiting, not what a radio would spend; delay and loss are not emulated.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, Optional


class TokenBucket:
    """Paces byte counts to ``rate_bytes_per_s`` with bursts of at most ``burst_bytes``."""

    def __init__(
        self,
        rate_bytes_per_s: float,
        burst_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_bytes_per_s <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate_bytes_per_s)
        self.burst = float(burst_bytes)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def consume(self, n: int) -> None:
        """Block until ``n`` bytes may pass.

        Tokens may go negative (a debt paid by sleeping): no loop, so no float edge case
        where a tiny sleep fails to advance the clock.
        """
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            self._sleep(-self._tokens / self.rate)


def shaped(
    chunks: Iterable[bytes], bucket: Optional[TokenBucket], piece: int = 16 * 1024
) -> Iterator[bytes]:
    """Yield ``chunks`` re-cut to ``piece`` bytes, paced by ``bucket`` (unpaced if None)."""
    for chunk in chunks:
        if bucket is None:
            yield chunk
            continue
        for off in range(0, len(chunk), piece):
            part = chunk[off : off + piece]
            bucket.consume(len(part))
            yield part


def mbps_to_bytes_per_s(mbps: float) -> float:
    return mbps * 1e6 / 8.0


class ScheduledBucket(TokenBucket):
    """A token bucket whose rate follows ``rate_mbps_at(time.time())`` (a bandwidth trace).

    The rate is re-read before every piece: an emulated link that replays a trace in-process.
    """

    def __init__(
        self,
        rate_mbps_at: Callable[[float], float],
        burst_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._rate_at = rate_mbps_at
        self._wall = wall
        super().__init__(mbps_to_bytes_per_s(rate_mbps_at(wall())), burst_bytes, clock, sleep)

    def consume(self, n: int) -> None:
        self.rate = mbps_to_bytes_per_s(self._rate_at(self._wall()))
        super().consume(n)
