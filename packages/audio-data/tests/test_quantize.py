"""Quantisation against closed forms: exact end points, round trips, torchaudio's mu-law."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.functional as AF
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_data import quantize as q

BITS = st.integers(2, 16)


@pytest.mark.parametrize("scheme", ["mu-law", "linear"])
@pytest.mark.parametrize("bits", [1, 2, 8, 16])
def test_end_points_and_zero_are_exact(scheme: str, bits: int) -> None:
    codes = q.encode(torch.tensor([-1.0, 0.0, 1.0]), quantization=scheme, bits=bits)  # type: ignore[arg-type]
    assert codes.tolist() == [0, 2 ** (bits - 1), 2**bits - 1]
    back = q.decode(torch.tensor([0, 2**bits - 1]), quantization=scheme, bits=bits)  # type: ignore[arg-type]
    assert back.tolist() == [-1.0, 1.0]


def test_mu_law_equals_torchaudio() -> None:
    """Same definition; we compute in float64, torchaudio in float32, so a handful of values
    that sit on a code boundary may round to the neighbouring code."""
    x = torch.linspace(-1, 1, 100_001)
    diff = (q.mu_law_encode(x, 8) - AF.mu_law_encoding(x, 256)).abs()
    assert diff.max().item() <= 1
    assert diff.sum().item() <= 5
    codes = torch.arange(256)
    assert torch.allclose(q.mu_law_decode(codes, 8), AF.mu_law_decoding(codes, 256), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(bits=BITS, value=st.floats(-1, 1))
def test_mu_law_round_trip_is_within_one_step_of_the_companded_value(
    bits: int, value: float
) -> None:
    mu = 2**bits - 1
    code = q.mu_law_encode(torch.tensor([value]), bits)
    back = q.mu_law_decode(code, bits).double().item()
    companded = math.copysign(math.log1p(mu * abs(value)) / math.log1p(mu), value)
    again = math.copysign(math.log1p(mu * abs(back)) / math.log1p(mu), back)
    assert abs(again - companded) <= 1 / mu + 1e-6


@settings(max_examples=60, deadline=None)
@given(bits=BITS, value=st.floats(-1, 1))
def test_linear_round_trip_is_within_half_a_step(bits: int, value: float) -> None:
    back = q.linear_decode(q.linear_encode(torch.tensor([value]), bits), bits).double().item()
    assert abs(back - value) <= 1 / (2**bits - 1) + 1e-6


@pytest.mark.parametrize("scheme", ["mu-law", "linear"])
@pytest.mark.parametrize("bits", [3, 8, 12])
def test_codes_survive_decode_then_encode(scheme: str, bits: int) -> None:
    codes = torch.arange(2**bits)
    back = q.decode(codes, quantization=scheme, bits=bits)  # type: ignore[arg-type]
    assert torch.equal(q.encode(back, quantization=scheme, bits=bits), codes)  # type: ignore[arg-type]


def test_out_of_range_input_is_clamped() -> None:
    assert q.mu_law_encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
    assert q.linear_encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_minmax_variant_rescales_each_example() -> None:
    x = torch.tensor([[0.25, 0.5, 0.75], [0.0, 0.0, 0.0]])
    expected = torch.tensor([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(q.minmax_scale(x), expected, atol=1e-6)
    codes = q.encode(x, quantization="linear", minmax=True)
    assert codes.tolist() == [[0, 128, 255], [128, 128, 128]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: q.encode(torch.zeros(1), quantization="alaw"),
            "quantization must be one of mu-law, linear; got 'alaw'",
        ),  # type: ignore[arg-type]
        (lambda: q.mu_law_encode(torch.zeros(1), 17), r"bits must be in \[1, 16\]; got 17"),
    ],
)
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
