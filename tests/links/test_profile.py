"""Link profiles, their text form, and what the emulated fallback hands an agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.links import EmulatedLinks, LinkProfile, ProfileError, parse_link_spec
from coordinator.links.profile import trace_path
from edge_agent.config import AgentConfig, LinkConfig
from edge_agent.link import ScheduledBucket
from edge_agent.link_record import LinkRecord


def test_spec_round_trip_and_description() -> None:
    p = parse_link_spec("rate=5, rtt=40, jitter=2, loss=1")
    assert p == LinkProfile(rate_mbps=5.0, rtt_ms=40.0, jitter_ms=2.0, loss_pct=1.0)
    assert p.describe() == "5 Mbit/s, RTT 40 ms, jitter 2 ms, loss 1%"
    assert parse_link_spec(p.to_spec()) == p and p.impaired
    t = parse_link_spec("trace=lte-walk@120,rtt=50")
    assert (t.trace, t.trace_offset_s, t.rate_mbps) == ("lte-walk", 120.0, None)
    assert t.describe().startswith("trace lte-walk from 120 s (mean 12.0 Mbit/s), RTT 50 ms")
    assert not LinkProfile(rate_mbps=2).impaired


def test_steady_version_of_a_trace_keeps_its_mean() -> None:
    t = parse_link_spec("trace=congested,rtt=80,loss=0.5")
    s = t.steady()
    assert s.trace is None and s.rate_mbps == pytest.approx(2.46, abs=0.01)
    assert (s.rtt_ms, s.loss_pct) == (80.0, 0.5)
    assert t.initial_mbps() == pytest.approx(3.0, abs=1.0)  # the trace's first row


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rtt=40", "needs a rate"),
        ("rate=5,trace=lte-walk", "not both"),
        ("rate=-1", "rate must be"),
        ("rate=5,loss=100", "loss must be"),
        ("rate=5,jitter=5", "jitter must be"),
        ("rate=5,speed=3", "unknown key 'speed'"),
        ("rate=fast", "not a number"),
        ("rate", "expected key=value"),
        ("trace=no-such-trace", "neither a shipped trace"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_link_spec(spec)


def test_a_csv_file_is_a_trace(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("time_s,mbps\n0,4\n10,1\n")
    p = parse_link_spec(f"trace={csv}")
    assert trace_path(p.trace or "") == csv.resolve() and p.initial_mbps() == 4.0
    csv.write_text("time_s,mbps\n3,4\n")
    with pytest.raises(ProfileError, match="time 0"):
        p.describe()


def test_emulated_links_configure_the_agents_token_bucket(tmp_path: Path) -> None:
    links = EmulatedLinks("test")
    steady = links.attach("a", LinkProfile(rate_mbps=5.0, rtt_ms=40.0))
    assert steady.label == "emulated link (in-process)" and steady.coordinator_host == "127.0.0.1"
    assert steady.agent_values["uplink_mbps"] == 5.0
    # What cannot be emulated in-process is said in the profile every report carries.
    assert steady.agent_values["link"]["profile"] == (
        "5 Mbit/s, RTT 40 ms (RTT not applied: in-process emulation)"
    )
    traced = links.attach("b", parse_link_spec("trace=congested"))
    table = traced.agent_values["link"]
    assert table["kind"] == "emulated" and table["trace_t0_unix"] == links.t0_unix
    cfg = AgentConfig(
        device_id="b",
        uplink_mbps=traced.agent_values["uplink_mbps"],
        link=LinkConfig(**{**table, "trace": Path(table["trace"])}),
    )
    record = LinkRecord(cfg, wall=lambda: links.t0_unix + 30.0)
    assert isinstance(record.bucket, ScheduledBucket) and record.kind == "emulated"
    trace = parse_link_spec("trace=congested").load_trace()
    assert trace is not None
    expected = trace.schedule(links.t0_unix).mean_mbps(links.t0_unix + 10, links.t0_unix + 20)
    assert record.configured_mbps(links.t0_unix + 10, links.t0_unix + 20) == pytest.approx(expected)
    links.close()
    assert not links.links
