"""One Scheme value: parsing, the codec configuration it implies, bits per value."""

from __future__ import annotations

import pytest

from coordinator.allocator.errors import SchemeError
from coordinator.allocator.schemes import FIXED, FP32, ON_DEMAND, Scheme
from greenfed.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "kind", "fixed", "canonical"),
    [
        ("on-demand", ON_DEMAND, None, "on-demand"),
        (" FP32 ", FP32, None, "fp32"),
        ("fixed-8", FIXED, 8, "fixed-8"),
        ("fixed-b3", FIXED, 3, "fixed-3"),
        ("fixed-16", FIXED, 16, "fixed-16"),
    ],
)
def test_parse_and_print(text: str, kind: str, fixed: object, canonical: str) -> None:
    s = Scheme.parse(text)
    assert (s.kind, s.fixed_bits, str(s)) == (kind, fixed, canonical)
    assert Scheme.parse(str(s)) == s


@pytest.mark.parametrize("text", ["", "fixed-0", "fixed-17", "fixed-x", "fp16", "ondemand"])
def test_unknown_names_say_what_is_allowed(text: str) -> None:
    with pytest.raises(SchemeError, match="on-demand, fp32 or fixed-B"):
        Scheme.parse(text)


def test_scheme_errors_are_config_errors_and_value_errors() -> None:
    assert issubclass(SchemeError, ConfigError) and issubclass(SchemeError, ValueError)
    with pytest.raises(SchemeError):
        Scheme(FIXED)  # fixed needs its bits
    with pytest.raises(SchemeError):
        Scheme(FP32, 8)


def test_codec_configuration_and_bits_follow_from_the_codec() -> None:
    fp32, fixed, auto = Scheme(FP32), Scheme(FIXED, 5), Scheme(ON_DEMAND)
    assert (fp32.uniform_bits, fixed.uniform_bits, auto.uniform_bits) == (32, 5, None)
    assert fp32.codec_config(7).mode == "fp32" and fp32.assigned_bits(7) == 32
    assert auto.codec_config(7, block_size=4096).block_size == 4096
    assert auto.assigned_bits(7) == 7 and auto.codec_mode == "stochastic"
    assert (fixed.header_bits, auto.header_bits) == (5, 8)
