"""The estimated model: board class detection, P(u), the radio term, the label."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.sensing import (
    BOARD_CLASSES,
    PowerMonitor,
    SensingConfig,
    SourceUnavailable,
    detect_board_class,
)
from edge_agent.sensing.estimated import EstimatedSource

from .conftest import FIXTURES, FakeClock


@pytest.mark.parametrize(
    ("tree_name", "cls"),
    [
        ("orin_nano_jp6", "jetson-orin-nano"),
        ("agx_orin", "jetson-agx-orin"),
        ("nano_jp4", "jetson-nano"),
        ("xavier_nx_jp5", "jetson-xavier-nx"),
        ("agx_xavier_jp4", "jetson-agx-xavier"),
        ("tx2_jp4", "jetson-tx2"),
        ("rpi5", "rpi5"),
        ("rpi4", "rpi4"),
        ("laptop_battery", "x86-laptop"),
        ("bare", "generic"),
    ],
)
def test_board_class_from_device_tree_or_dmi(tree_name: str, cls: str) -> None:
    assert detect_board_class(FIXTURES / tree_name) == cls


def test_a_carrier_named_model_falls_back_to_the_modules_part_number(tree: Any) -> None:
    root = tree("xavier_nx_jp5")
    (root / "proc/device-tree/model").write_bytes(b"Some Vendor Carrier Board\0")
    assert detect_board_class(root) == "jetson-xavier-nx"  # nvidia,p3668 in compatible


def test_configured_board_class_wins_and_unknown_is_rejected() -> None:
    assert detect_board_class(FIXTURES / "bare", "rpi4") == "rpi4"
    with pytest.raises(SourceUnavailable, match="unknown board_class"):
        detect_board_class(FIXTURES / "bare", "cray-1")


def test_every_class_has_sane_constants_and_a_basis() -> None:
    for b in BOARD_CLASSES.values():
        assert 0 < b.idle_w < b.max_w and b.radio_w > 0 and b.basis


def test_linear_model_and_radio_term_in_communicate_windows() -> None:
    util = [0.5]
    board = BOARD_CLASSES["rpi4"]
    src = EstimatedSource(board, 0.1, utilisation=lambda: util[0])
    assert src.power_at(0.0) == board.idle_w
    assert src.power_at(1.0) == board.max_w
    assert src.power_at(0.5) == pytest.approx((board.idle_w + board.max_w) / 2)
    clock = FakeClock()
    mon = PowerMonitor(src, clock=clock)
    assert mon.idle_power_w == board.idle_w  # the model's idle is the default
    mon.begin_window("compute")
    clock.advance(2.0)
    c = mon.end_window("compute")
    mon.begin_window("communicate")
    clock.advance(2.0)
    u = mon.end_window("communicate")
    p = board.idle_w + (board.max_w - board.idle_w) * 0.5
    assert c.energy_j == pytest.approx(2 * p)
    assert u.energy_j == pytest.approx(2 * (p + board.radio_w))
    assert c.estimated and u.estimated and "estimated" in u.scope
    assert src.read().power_w == pytest.approx(p)  # radio off again after the window


def test_configured_radio_power_and_real_utilisation_reader() -> None:
    from edge_agent.sensing import make_context

    src = EstimatedSource.open(make_context(SensingConfig(radio_power_w=1.25), FIXTURES / "bare"))
    assert src.radio_w == 1.25 and src.board.name == "generic"
    p = src.read().power_w
    assert src.board.idle_w <= p <= src.board.max_w
