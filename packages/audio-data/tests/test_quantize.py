"""Quantisation: the reference's scheme bit for bit against codes its own dataloaders produced,
and the standard scheme against closed forms and torchaudio."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.functional as AF
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_core.testing import reference_dir
from audio_data import quantize as q

BITS = st.integers(2, 16)


# -- the reference's scheme -----------------------------------------------------------------
@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    path = reference_dir(__file__, "s4", "tiny", "quantizers.golden.pt")
    return torch.load(path)  # type: ignore[no-any-return]


def test_reference_encoders_are_bit_exact(golden: dict[str, torch.Tensor]) -> None:
    """Four clips: unclipped noise, a sine, silence, clipped noise with exact -1, 0, 1."""
    audio = golden["audio"]
    assert torch.equal(q.encode(audio, quantization="mu-law"), golden["mu_law_encode"])
    assert torch.equal(q.encode(audio, quantization="linear"), golden["linear_encode"])
    assert torch.equal(q.reference_minmax(audio, -1.0, 1.0), golden["minmax_scale_pm1"])
    assert torch.equal(q.reference_minmax(audio, 0.0, 1.0), golden["minmax_scale_01"])
    # its SC09 dataset's targets are these codes; its inputs the codes shifted, 128 first
    assert torch.equal(golden["sc09_y"][..., 0], golden["mu_law_encode"])
    assert golden["sc09_x"][:, 0].tolist() == [q.q_zero(8)] * 4


def test_reference_decoders_are_bit_exact(golden: dict[str, torch.Tensor]) -> None:
    codes = golden["codes"]
    assert torch.equal(q.decode(codes, quantization="mu-law"), golden["mu_law_decode_table"])
    assert torch.equal(q.decode(codes, quantization="linear"), golden["linear_decode_table"])
    encoded = golden["mu_law_encode"]
    assert torch.equal(q.decode(encoded, quantization="mu-law"), golden["mu_law_decode_of_encode"])


def test_the_reference_edge_cases() -> None:
    """Silence encodes to code 0 (a zero min-max span), and in a clip spanning exactly
    [-1, 1] the value 0 lands on 127 (truncation), not 128."""
    assert q.encode(torch.zeros(1, 10), quantization="mu-law").unique().tolist() == [0]
    span = torch.tensor([[-1.0, 0.0, 1.0]])
    assert q.encode(span, quantization="mu-law").tolist() == [[0, 127, 255]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=2, max_size=64),
    st.sampled_from(["mu-law", "linear"]),
    BITS,
)
def test_reference_codes_are_in_range_and_monotone(
    values: list[float], kind: str, bits: int
) -> None:
    x = torch.tensor([values])
    codes = q.encode(x, quantization=kind, bits=bits)  # type: ignore[arg-type]
    assert int(codes.min()) >= 0 and int(codes.max()) < 2**bits  # noqa: PT018
    order = torch.argsort(x[0])
    assert torch.all(codes[0][order].diff() >= 0)  # a larger sample never gets a lower code


# -- the standard scheme --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mu-law", "linear"])
@pytest.mark.parametrize("bits", [1, 2, 8, 16])
def test_standard_end_points_and_zero_are_exact(kind: str, bits: int) -> None:
    codes = q.encode(torch.tensor([-1.0, 0.0, 1.0]), quantization=kind, bits=bits,  # type: ignore[arg-type]
                     scheme="standard")  # fmt: skip
    assert codes.tolist() == [0, 2 ** (bits - 1), 2**bits - 1]
    back = q.decode(torch.tensor([0, 2**bits - 1]), quantization=kind, bits=bits,  # type: ignore[arg-type]
                    scheme="standard")  # fmt: skip
    assert back.tolist() == [-1.0, 1.0]


def test_standard_mu_law_equals_torchaudio() -> None:
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
def test_standard_mu_law_round_trip_is_within_one_step(bits: int, value: float) -> None:
    mu = 2**bits - 1
    code = q.mu_law_encode(torch.tensor([value]), bits)
    back = q.mu_law_decode(code, bits).double().item()
    companded = math.copysign(math.log1p(mu * abs(value)) / math.log1p(mu), value)
    again = math.copysign(math.log1p(mu * abs(back)) / math.log1p(mu), back)
    assert abs(again - companded) <= 1 / mu + 1e-6


@settings(max_examples=60, deadline=None)
@given(bits=BITS, value=st.floats(-1, 1))
def test_standard_linear_round_trip_is_within_half_a_step(bits: int, value: float) -> None:
    back = q.linear_decode(q.linear_encode(torch.tensor([value]), bits), bits).double().item()
    assert abs(back - value) <= 1 / (2**bits - 1) + 1e-6


@pytest.mark.parametrize("kind", ["mu-law", "linear"])
@pytest.mark.parametrize("bits", [3, 8, 12])
def test_standard_codes_survive_decode_then_encode(kind: str, bits: int) -> None:
    codes = torch.arange(2**bits)
    back = q.decode(codes, quantization=kind, bits=bits, scheme="standard")  # type: ignore[arg-type]
    again = q.encode(back, quantization=kind, bits=bits, scheme="standard")  # type: ignore[arg-type]
    assert torch.equal(again, codes)


def test_standard_out_of_range_input_is_clamped() -> None:
    assert q.mu_law_encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
    assert q.linear_encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: q.encode(torch.zeros(1), quantization="alaw"),  # type: ignore[arg-type]
            "quantization must be one of mu-law, linear; got 'alaw'",
        ),
        (
            lambda: q.encode(torch.zeros(1), quantization="linear", scheme="exact"),  # type: ignore[arg-type]
            "scheme must be one of reference, standard; got 'exact'",
        ),
        (lambda: q.mu_law_encode(torch.zeros(1), 17), r"bits must be in \[1, 16\]; got 17"),
    ],
)
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
