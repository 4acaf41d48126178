"""HiPPO matrices and their NPLR form, against the definitions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssm_kernels.functional import conj_full
from ssm_kernels.hippo import MEASURE_RANK, MEASURES, diagonal_init, hippo, low_rank, nplr


def test_legs_matches_its_closed_form() -> None:
    A, B = hippo("legs", 4)
    r = [math.sqrt(2 * n + 1) for n in range(4)]
    for n in range(4):
        assert B[n] == pytest.approx(r[n])
        for k in range(4):
            expected = -r[n] * r[k] if n > k else (-(n + 1) if n == k else 0.0)
            assert A[n, k] == pytest.approx(expected)


@pytest.mark.parametrize("measure", MEASURES)
def test_low_rank_correction_makes_the_matrix_normal(measure: str) -> None:
    A, _ = hippo(measure, 16)  # type: ignore[arg-type]
    P = low_rank(measure, 16)  # type: ignore[arg-type]
    assert P.shape[0] == MEASURE_RANK[measure]
    S = A + P.T @ P
    assert torch.allclose(S @ S.T, S.T @ S, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(measure=st.sampled_from(MEASURES), half=st.integers(1, 24), extra=st.integers(0, 2))
def test_nplr_reconstructs_the_hippo_system(measure: str, half: int, extra: int) -> None:
    N = 2 * half
    rank = MEASURE_RANK[measure] + extra
    A, B = hippo(measure, N)  # type: ignore[arg-type]
    s = nplr(measure, N, rank)  # type: ignore[arg-type]
    assert s.Lambda.shape == (half,)
    assert s.P.shape == (rank, half)
    assert s.B.shape == (half,)
    V = s.V
    assert torch.allclose(V.conj().T @ V, torch.eye(N, dtype=V.dtype), atol=1e-10)
    Pf = conj_full(s.P)
    A_rec = V @ (torch.diag(conj_full(s.Lambda)) - Pf.T @ Pf.conj()) @ V.conj().T
    scale = A.abs().max().item()
    assert (A_rec - A).abs().max().item() <= 1e-11 * scale * N
    assert (V @ conj_full(s.B) - B).abs().max().item() <= 1e-11 * N
    assert (A_rec.imag.abs().max().item()) <= 1e-11 * scale * N


def test_nplr_keeps_the_upper_half_plane_in_order() -> None:
    s = nplr("legs", 32)
    assert torch.allclose(s.Lambda.real, torch.full((16,), -0.5, dtype=torch.float64))
    assert torch.all(s.Lambda.imag[:-1] >= s.Lambda.imag[1:])
    assert torch.all(s.Lambda.imag > 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hippo("legx", 4), "measure must be one of legs, legt, fout; got 'legx'"),  # type: ignore[arg-type]
        (lambda: hippo("legs", 5), "state size N must be an even integer >= 2; got 5"),
        (lambda: nplr("legt", 4, rank=1), "measure 'legt' needs rank >= 2; got rank=1"),
        (lambda: diagonal_init("diag-x", 4), "init must be one of diag-inv"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()  # type: ignore[operator]


def test_s4d_initialisations_match_the_paper() -> None:
    N = 8
    lin, b = diagonal_init("diag-lin", N)
    assert torch.allclose(
        lin, torch.tensor([-0.5 + 1j * math.pi * n for n in range(4)], dtype=lin.dtype)
    )
    assert torch.all(b == 1)
    inv, _ = diagonal_init("diag-inv", N)
    expected = [-0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1) for n in range(4)]
    assert torch.allclose(inv, torch.tensor(expected, dtype=torch.complex128))
    legs, b_legs = diagonal_init("diag-legs", N)
    assert torch.allclose(legs, nplr("legs", N).Lambda)
    assert torch.allclose(b_legs, nplr("legs", N).B)
