"""The stateless maths against slow reference twins and brute force, in float64."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssm_kernels import functional as fn
from ssm_kernels.hippo import MEASURE_RANK, MEASURES, diagonal_init, nplr

C128 = torch.complex128


def crandn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=C128)


@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 6), L=st.integers(1, 40), scaled=st.booleans(), seed=st.integers(0, 99))
def test_cauchy_equals_the_explicit_sum(M: int, L: int, scaled: bool, seed: int) -> None:
    torch.manual_seed(seed)
    v, w, z = crandn(3, 2, M), crandn(2, M), crandn(2, L)
    s = crandn(2, L) if scaled else None
    expected = fn.cauchy_conj_ref(v, z, w, s)
    assert torch.allclose(fn.cauchy_conj(v, z, w, s), expected, rtol=1e-10, atol=1e-10)


def test_chunking_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    v, w, z = crandn(4, 5), crandn(4, 5), crandn(4, 37)
    whole = fn.cauchy_conj(v, z, w)
    whole_v = fn.vandermonde_conj(v, 0.1 * w, 37)
    monkeypatch.setattr(fn, "MAX_CHUNK_ELEMENTS", 4 * 5 * 3)  # chunks of 3 positions
    assert len(fn._chunks(37, 4 * 5)) == 13
    assert torch.allclose(fn.cauchy_conj(v, z, w), whole, rtol=1e-13, atol=0)
    assert torch.allclose(fn.vandermonde_conj(v, 0.1 * w, 37), whole_v, rtol=1e-12)


def test_chunked_gradients_equal_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    v, w, z = (crandn(3, 4).requires_grad_() for _ in range(3))
    grads = []
    for limit in (fn.MAX_CHUNK_ELEMENTS, 3 * 4):
        monkeypatch.setattr(fn, "MAX_CHUNK_ELEMENTS", limit)
        out = fn.cauchy_conj(v, z, w)
        grads.append(torch.autograd.grad(out.abs().square().sum(), (v, w, z)))
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(M=st.integers(1, 5), L=st.integers(1, 30), offset=st.integers(0, 2))
def test_vandermonde_equals_explicit_powers(M: int, L: int, offset: int) -> None:
    v = crandn(2, M)
    x = torch.exp(crandn(2, M) * 0.2)
    expected = fn.vandermonde_conj_ref(v, x, L, offset)
    assert torch.allclose(fn.vandermonde_conj(v, torch.log(x), L, offset), expected, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(L=st.integers(1, 33), seed=st.integers(0, 99))
def test_fft_convolution_equals_the_causal_sum(L: int, seed: int) -> None:
    torch.manual_seed(seed)
    u = torch.randn(2, 3, L, dtype=torch.float64)
    k = torch.randn(3, L, dtype=torch.float64)
    assert torch.allclose(fn.fft_conv(u, k), fn.conv_ref(u, k), atol=1e-10)


def _autograd_fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The convolution as plain torch FFTs, differentiated by autograd itself."""
    n = 2 * u.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)
    return y[..., : u.shape[-1]]


@settings(max_examples=20, deadline=None)
@given(L=st.integers(1, 24), lead=st.sampled_from([(), (2,), (2, 1)]), seed=st.integers(0, 99))
def test_fft_convolution_gradients_equal_autograds_own(
    L: int, lead: tuple[int, ...], seed: int
) -> None:
    torch.manual_seed(seed)
    u = torch.randn(*lead, 3, L, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, L, dtype=torch.float64, requires_grad=True)
    g = torch.randn(*lead, 3, L, dtype=torch.float64)
    ours = torch.autograd.grad(fn.fft_conv(u, k), (u, k), g)
    theirs = torch.autograd.grad(_autograd_fft_conv(u, k), (u, k), g)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-10)


def test_fft_convolution_passes_gradcheck_causal_bidirectional_and_broadcast() -> None:
    u = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    u1 = torch.randn(2, 1, 7, dtype=torch.float64, requires_grad=True)  # one channel for all
    k = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    k2 = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn.fft_conv, (u, k))
    assert torch.autograd.gradcheck(fn.fft_conv, (u1, k))
    assert torch.autograd.gradcheck(lambda a, b: fn.fft_conv(a, b, bidirectional=True), (u, k2))
    # a gradient that only one input needs
    (grad_k,) = torch.autograd.grad(fn.fft_conv(u.detach(), k).sum(), (k,))
    assert torch.allclose(
        grad_k, torch.autograd.grad(_autograd_fft_conv(u.detach(), k).sum(), k)[0]
    )


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 33), seed=st.integers(0, 99))
def test_real_fft_gradient_equals_autograds_rfft(n: int, seed: int) -> None:
    torch.manual_seed(seed)
    x = torch.randn(2, n, dtype=torch.float64, requires_grad=True)
    g = crandn(2, n // 2 + 1)
    assert torch.equal(fn.real_fft(x), torch.fft.rfft(x))
    (ours,) = torch.autograd.grad(fn.real_fft(x), x, g)
    (theirs,) = torch.autograd.grad(torch.fft.rfft(x), x, g)
    assert torch.allclose(ours, theirs, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, 3), step=st.integers(1, 200), count=st.integers(1, 300))
def test_exponentials_of_a_progression_equal_direct_ones(start: int, step: int, count: int) -> None:
    log_x = torch.complex(-torch.rand(2, 3).double() * 0.01, torch.randn(2, 3).double())
    k = start + step * torch.arange(count, dtype=torch.float64)
    expected = torch.exp(log_x.unsqueeze(-1) * k)
    got = fn.exp_progression(log_x, start, step, count)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-13, atol=1e-300)


@settings(max_examples=20, deadline=None)
@given(M=st.integers(1, 5), L=st.integers(1, 30), offset=st.integers(0, 2), A=st.integers(1, 3))
def test_vandermonde_with_left_factors_equals_the_outer_product(
    M: int, L: int, offset: int, A: int
) -> None:
    v, left = crandn(2, 3, M), crandn(A, 3, M)
    x = torch.exp(crandn(3, M) * 0.2)
    expected = fn.vandermonde_conj_ref(left.unsqueeze(1) * v, x, L, offset)  # (A, 2, 3, L)
    got = fn.vandermonde_conj(v, torch.log(x), L, offset, left=left)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-10)


def test_vandermonde_gradients_pass_gradcheck() -> None:
    v, left = crandn(2, 3, 4).requires_grad_(), crandn(2, 3, 4).requires_grad_()
    log_x = (crandn(3, 4) * 0.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: fn.vandermonde_conj(a, b, 11, 1), (v, log_x))
    assert torch.autograd.gradcheck(
        lambda a, b, c: fn.vandermonde_conj(a, b, 11, 1, left=c), (v, log_x, left)
    )


def test_bidirectional_convolution_adds_the_flipped_future() -> None:
    L = 9
    u = torch.randn(2, 3, L, dtype=torch.float64)
    k = torch.randn(2, 3, L, dtype=torch.float64)
    expected = fn.conv_ref(u, k[0])
    for t in range(L):
        for j in range(t + 1, L):
            expected[..., t] += k[1, :, j - t - 1] * u[..., j]
    assert torch.allclose(fn.fft_conv(u, k, bidirectional=True), expected, atol=1e-10)


def dplr_system(
    measure: str, N: int, H: int, rank: int, channels: int = 1
) -> tuple[torch.Tensor, ...]:
    s = nplr(measure, N, rank)  # type: ignore[arg-type]
    Lambda = torch.complex(s.Lambda.real.clamp(max=-1e-3), s.Lambda.imag).expand(H, -1)
    P = s.P[:, None].expand(-1, H, -1) + 0.1 * crandn(rank, H, N // 2)
    B = s.B.expand(H, -1) + 0.1 * crandn(H, N // 2)
    C = crandn(channels, H, N // 2)
    dt = torch.exp(torch.empty(H, dtype=torch.float64).uniform_(-6, -1))
    return Lambda, P, B, C, dt


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("extra_rank", [0, 1])
@pytest.mark.parametrize("L", [1, 2, 31, 64])
def test_dplr_kernel_equals_brute_force_matrix_powers(
    measure: str, extra_rank: int, L: int
) -> None:
    N, H = 8, 3
    Lambda, P, B, C, dt = dplr_system(measure, N, H, MEASURE_RANK[measure] + extra_rank, 2)
    A, Bf = fn.dplr_dense(Lambda, P, B)
    Abar, Bbar = fn.bilinear(A, Bf, dt)
    Cf = fn.conj_full(C)
    C_tilde = Cf - torch.einsum("chn,hnm->chm", Cf, torch.linalg.matrix_power(Abar, L))
    state = crandn(4, H, N // 2)
    k, k_state = fn.dplr_kernel(Lambda, P, B, C_tilde[..., : N // 2], dt, L, state)
    assert (k - fn.ssm_kernel_ref(Abar, Bbar, Cf, L)).abs().max().item() <= 1e-10
    # What the initial state adds: C A_bar^(l + 1) x.
    assert k_state is not None
    x = torch.einsum("hnm,bhm->bhn", Abar, fn.conj_full(state))
    for l in range(L):  # noqa: E741
        expected = torch.einsum("chn,bhn->bch", Cf, x).real
        assert (k_state[..., l] - expected).abs().max().item() <= 1e-9
        x = torch.einsum("hnm,bhm->bhn", Abar, x)


@pytest.mark.parametrize("init", ["diag-inv", "diag-lin", "diag-legs"])
@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_diagonal_discretisations_equal_their_dense_definitions(init: str, method: str) -> None:
    from ssm_kernels.kernels import DiagKernel

    kernel = DiagKernel(3, d_state=8, init=init, discretization=method).double()  # type: ignore[arg-type]
    L = 40
    _log_Abar, _Bbar, C = kernel.discrete()
    Lambda = kernel.diagonal()
    B = kernel.input_matrix()
    dt = kernel.dt()
    discretise = fn.zoh if method == "zoh" else fn.bilinear
    Ad, Bd = discretise(torch.diag_embed(fn.conj_full(Lambda)), fn.conj_full(B), dt)
    expected = fn.ssm_kernel_ref(Ad, Bd, fn.conj_full(C), L)
    k, _ = kernel(L)
    assert (k - expected).abs().max().item() <= 1e-10


def test_diagonal_init_is_used() -> None:
    from ssm_kernels.kernels import DiagKernel

    kernel = DiagKernel(2, d_state=6, init="diag-lin").double()
    Lambda, _ = diagonal_init("diag-lin", 6)
    # Stored as the reference stores it: the half with negative imaginary parts, every
    # imaginary part at least 1e-4 away from zero.
    assert torch.allclose(-torch.exp(kernel.A_real[0]), Lambda.real)
    assert torch.allclose(kernel.A_imag[0], Lambda.imag.clamp(min=1e-4))
    assert torch.allclose(
        kernel.diagonal()[0], Lambda.conj().real + 1j * -Lambda.imag.clamp(min=1e-4)
    )


def test_krylov_final_state_equals_the_recurrence() -> None:
    H, N, L = 2, 4, 37
    Abar = 0.3 * crandn(H, N, N)
    Bbar, x0 = crandn(H, N), crandn(3, H, N)
    u = torch.randn(3, H, L, dtype=torch.float64)
    x = x0
    for t in range(L):
        x = torch.einsum("hnm,bhm->bhn", Abar, x) + Bbar * u[..., t, None]
    for block in (1, 5, 256):
        got = fn.krylov_final_state(Abar, Bbar, u, x0, block=block)
        assert torch.allclose(got, x, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 6), L=st.integers(1, 64), seed=st.integers(0, 99))
def test_cauchy_sums_at_the_roots_equal_the_vandermonde_form(M: int, L: int, seed: int) -> None:
    torch.manual_seed(seed)
    v = crandn(3, 2, M)
    w = torch.complex(-torch.rand(2, M, dtype=torch.float64) - 0.1, 5 * torch.randn(2, M).double())
    dt = torch.rand(2, dtype=torch.float64) * 0.1 + 0.01
    z = fn.roots_of_unity(L, dtype=C128)
    numer = (2 / dt).unsqueeze(-1) * (1 - z)
    expected = fn.cauchy_conj(v, numer, w, 1 + z)
    assume_gap = fn.truncation_gap(w, dt, L)
    assert assume_gap > 0
    got = fn.cauchy_roots_conj(v, w, dt, L)
    scale = expected.abs().max()
    assert torch.allclose(got, expected, rtol=0, atol=1e-9 * float(scale) / assume_gap)


def test_a_mode_that_barely_decays_takes_the_direct_cauchy_sums() -> None:
    # fout-like: real part 1e-4, so over 8 steps 1 - a^L is far below the threshold.
    w = torch.complex(torch.full((1, 2), -1e-4, dtype=torch.float64), torch.zeros(1, 2).double())
    assert (
        fn.truncation_gap(w, torch.tensor([0.01], dtype=torch.float64), 8) < fn.MIN_TRUNCATION_GAP
    )


def _conj_pair_matrix(M: int, H: int, r: int, seed: int) -> torch.Tensor:
    """A random dense DPLR matrix on conjugate-pair coordinates (``dplr_dense``'s layout)."""
    g = torch.Generator().manual_seed(seed)

    def c(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.complex128, generator=g)

    A, _ = fn.dplr_dense(c(H, M), c(r, H, M), c(H, M), c(r, H, M))
    return A


@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**16))
def test_pairs_real_is_the_same_map_on_real_and_imaginary_parts(
    M: int, H: int, r: int, seed: int
) -> None:
    A = _conj_pair_matrix(M, H, r, seed)
    eye = torch.eye(M, dtype=torch.complex128)
    T = torch.cat([torch.cat([eye, eye], 1), torch.cat([-1j * eye, 1j * eye], 1)]) / 2
    R = fn.pairs_real(A)
    assert R.dtype == torch.float64
    assert torch.allclose(R.to(A.dtype), T @ A @ torch.linalg.inv(T), atol=1e-12)
    # Row vectors: C A = rows_from_pairs(rows_to_pairs(C) R), and the two maps are inverses.
    g = torch.Generator().manual_seed(seed + 1)
    C = torch.randn(2, H, 2 * M, dtype=torch.complex128, generator=g)
    assert torch.allclose(fn.rows_from_pairs(fn.rows_to_pairs(C)), C, atol=1e-14)
    via = fn.rows_from_pairs(torch.einsum("chn,hnm->chm", fn.rows_to_pairs(C), R.to(C.dtype)))
    assert torch.allclose(via, torch.einsum("chn,hnm->chm", C, A), atol=1e-12)
