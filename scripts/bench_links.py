#!/usr/bin/env python3
"""Measure shaped links: bulk goodput against the configured rate, TCP RTT against the delay.

    sudo .venv/bin/python scripts/bench_links.py [--rates 2,5,20] [--rtts 10,40,100] [--seconds 3]

Builds one testbed (coordinator/links/shaped.py), one link per rate and per RTT, measures each
over real sockets (coordinator/links/measure.py) and prints configured and measured side by
side with their ratio, the machine and the command. Needs root and iproute2.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coordinator.links import LinkProfile, ShapedLinks, kernel
from coordinator.links.measure import bulk_goodput, tcp_round_trips


def floats(text: str) -> List[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", type=floats, default=[2.0, 5.0, 20.0], help="Mbit/s")
    p.add_argument("--rtts", type=floats, default=[10.0, 40.0, 100.0], help="ms (at 20 Mbit/s)")
    p.add_argument("--seconds", type=float, default=3.0, help="bulk transfer length")
    p.add_argument("--impair", default="auto", choices=["auto", "netem", "delay-line"])
    args = p.parse_args(argv)
    caps = kernel.probe()
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}")
    print(caps.summary())
    if not caps.shaped:
        return 2
    with tempfile.TemporaryDirectory() as tmp, ShapedLinks(Path(tmp), impair=args.impair) as links:
        for mbps in args.rates:
            links.attach(f"rate-{mbps:g}", LinkProfile(rate_mbps=mbps))
        for rtt in args.rtts:
            links.attach(f"rtt-{rtt:g}", LinkProfile(rate_mbps=20.0, rtt_ms=rtt))
        print(f"\n{'link':<16} {'configured':>12} {'measured':>12} {'ratio':>7}")
        for mbps in args.rates:
            d = f"rate-{mbps:g}"
            g = bulk_goodput(links.hub, links.namespace_of(d), links.hub_address(d),
                             int(mbps * 1e6 / 8 * args.seconds))  # fmt: skip
            print(f"{d:<16} {mbps:>7.3g} Mbit/s {g.mbps:>7.3f} Mbit/s {g.mbps / mbps:>7.3f}")
        for rtt in args.rtts:
            d = f"rtt-{rtt:g}"
            r = tcp_round_trips(links.hub, links.namespace_of(d), links.hub_address(d))
            topology = links.links[d].detail.split(",")[0]
            print(f"{d:<16} {rtt:>9.3g} ms {r.median_ms:>9.2f} ms {r.median_ms / rtt:>7.3f}"
                  f"  (median of {len(r.samples_s)}, {topology})")  # fmt: skip
    print("\ngoodput: payload bytes x 8 / (receiver's last byte - sender's first), one TCP flow")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
