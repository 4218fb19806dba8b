"""Acceptance: a shaped link's goodput is within 10 % of its rate, its RTT within 10 % of the
configured delay. The kernel's rate, measured over real sockets (coordinator/links/measure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.links import LinkProfile, ShapedLinks, kernel
from coordinator.links.measure import bulk_goodput, tcp_round_trips
from tests.links.conftest import skip_unless_shaping

pytestmark = pytest.mark.slow

TRANSFER_S = 3.0  # bulk transfer length at the configured rate (slow start is a small part)


def test_goodput_and_rtt_of_shaped_links(shaped: ShapedLinks) -> None:
    for mbps in (2.0, 5.0, 20.0):
        shaped.attach(f"rate{mbps:g}", LinkProfile(rate_mbps=mbps))
    shaped.attach("rtt", LinkProfile(rate_mbps=20.0, rtt_ms=40.0))
    for mbps in (2.0, 5.0, 20.0):
        device = f"rate{mbps:g}"
        got = bulk_goodput(
            shaped.hub,
            shaped.namespace_of(device),
            shaped.hub_address(device),
            int(mbps * 1e6 / 8 * TRANSFER_S),
        )
        print(f"{mbps:g} Mbit/s: goodput {got.mbps:.3f} Mbit/s ({got.mbps / mbps:.3f})")
        assert got.mbps == pytest.approx(mbps, rel=0.10)
    # A short upload (an on-demand update's size) is metered packet by packet too: no burst
    # above the rate (GSO super-packets passed htb whole: 20.7-25.6 Mbit/s before).
    short = bulk_goodput(
        shaped.hub, shaped.namespace_of("rate20"), shaped.hub_address("rate20"), 122_360
    )
    print(f"20 Mbit/s, 122 kB: goodput {short.mbps:.3f} Mbit/s")
    assert short.mbps <= 20.0 * 1.02
    rtt = tcp_round_trips(shaped.hub, shaped.namespace_of("rtt"), shaped.hub_address("rtt"))
    print(f"RTT 40 ms: median {rtt.median_ms:.2f} ms over {len(rtt.samples_s)} round trips")
    assert rtt.median_ms == pytest.approx(40.0, rel=0.10)


def test_netem_delay_where_the_kernel_has_it(tmp_path: Path) -> None:
    skip_unless_shaping()
    if not kernel.probe().netem:
        pytest.skip("this kernel has no sch_netem: delay and loss use the user-space delay line")
    links = ShapedLinks(tmp_path / "testbed", impair="netem")
    try:
        links.attach("rtt", LinkProfile(rate_mbps=20.0, rtt_ms=40.0))
        rtt = tcp_round_trips(links.hub, links.namespace_of("rtt"), links.hub_address("rtt"))
        assert rtt.median_ms == pytest.approx(40.0, rel=0.10)
    finally:
        links.close()
