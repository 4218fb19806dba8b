"""FLEET.json validation: every malformed or impossible value names its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from coordinator.allocator import FleetError, fleet_to_dict, parse_fleet
from coordinator.allocator.model import default_header_bytes

EXAMPLE = Path(__file__).resolve().parents[2] / "coordinator" / "examples" / "fleet.json"


def example():
    return json.loads(EXAMPLE.read_text())


def test_example_parses_and_round_trips():
    fleet = parse_fleet(example())
    assert len(fleet.devices) == 5 and fleet.tensors == 40
    assert fleet.resolved_header_bytes == default_header_bytes(40)
    again = parse_fleet(fleet_to_dict(fleet))
    assert again.devices == fleet.devices
    arrays = fleet.to_arrays()
    assert arrays.f_steps_hz.shape == (5, 13)
    assert not arrays.has_steps[4] and arrays.f_top_hz[4] == 3.6e9
    np.testing.assert_allclose(arrays.weights.sum(), 1.0)


def _mutate(path, value):
    obj = example()
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("devices", 2, "f_min_hz"), 5e9, "devices[2].f_min_hz: must be <= f_max_hz"),
        (("devices", 0, "kappa"), -1.0, "devices[0].kappa: must be >= 0"),
        (("devices", 1, "cycles"), 0, "devices[1].cycles: must be > 0"),
        (("devices", 0, "uplink_bytes_per_s"), KeyError, "devices[0].uplink_bytes_per_s: missing"),
        (("devices", 3, "bits_max"), 17, "devices[3].bits_max: must be in 1..16"),
        (("devices", 3, "bits_min"), 0, "devices[3].bits_min: must be in 1..16"),
        (("devices", 3, "bits_min"), 2.5, "devices[3].bits_min: must be an integer"),
        (("devices", 1, "bits_min"), 13, "devices[1].bits_min: must be <= bits_max"),
        (("devices", 0, "samples"), "many", "devices[0].samples: must be a number"),
        (("devices", 0, "weight_range"), float("nan"), "devices[0].weight_range: must be finite"),
        (("devices", 0, "f_steps_hz"), [1e8], "devices[0].f_steps_hz[0]: must lie within"),
        (("devices", 0, "f_steps_hz"), [], "devices[0].f_steps_hz: must be a non-empty list"),
        (("devices", 0, "kapa"), 1.0, "devices[0].kapa: unknown field"),
        (("devices", 1, "id"), "rpi4-a", "devices[1].id: duplicate of devices[0].id"),
        (("deadline_s",), -3, "deadline_s: must be > 0"),
        (("error_budget",), KeyError, "error_budget: missing"),
        (("params",), 1.5, "params: must be a positive integer"),
        (("devices",), [], "devices: must be a non-empty list"),
        (("header_bytes",), -1, "header_bytes: must be >= 0"),
    ],
)
def test_errors_name_the_field(path, value, message):
    with pytest.raises(FleetError) as info:
        parse_fleet(_mutate(path, value))
    assert str(info.value).startswith(message), str(info.value)


def test_top_level_must_be_an_object():
    with pytest.raises(FleetError, match="must be a JSON object"):
        parse_fleet([1, 2])
    obj = copy.deepcopy(example())
    obj["devices"][0] = "rpi"
    with pytest.raises(FleetError, match=r"devices\[0\]: must be an object"):
        parse_fleet(obj)
