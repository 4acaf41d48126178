"""Stateless tensor functions: the maths of S4 and S4D, and slow reference twins.

Layout: an SSM has ``H`` channels (one step size each) and ``M = N / 2`` complex modes kept
out of ``N``; the other half of the modes are the complex conjugates (the system is real).
Shapes use ``H`` for channels, ``M`` for kept modes, ``L`` for sequence length and ``C`` for
output channels of a kernel.

Each fast function has a ``*_ref`` twin written straight from the definitions (explicit sums,
explicit matrix powers); the tests compare the two in float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

#: Elements of the largest temporary a chunked product materialises (2**24 complex64 values
#: are 128 MiB): memory stays bounded whatever the sequence length.
MAX_CHUNK_ELEMENTS = 2**24


def _broadcast(*shapes: torch.Size | tuple[int, ...]) -> torch.Size:
    return torch.broadcast_shapes(*shapes)  # type: ignore[no-untyped-call,no-any-return]


def conj_full(x: Tensor, dim: int = -1) -> Tensor:
    """Both halves of a conjugate-pair layout: ``x`` then ``conj(x)`` along ``dim``."""
    return torch.cat([x, x.conj()], dim=dim)


def _chunks(length: int, per_position: int) -> list[tuple[int, int]]:
    size = max(1, MAX_CHUNK_ELEMENTS // max(1, per_position))
    return [(start, min(length, start + size)) for start in range(0, length, size)]


def _cauchy_block(v: Tensor, w: Tensor, z: Tensor, s: Tensor | None) -> Tensor:
    z = z.unsqueeze(-2)  # (H, 1, l)
    w = w.unsqueeze(-1)  # (H, M, 1)
    w_bar = w.conj()
    if s is not None:
        w, w_bar = s.unsqueeze(-2) * w, s.unsqueeze(-2) * w_bar
    # The divisions are shared by every numerator; the sums over m are batched matrix
    # products (H, T, M) @ (H, M, l), which run at BLAS speed.
    near, far = torch.reciprocal(z - w), torch.reciprocal(z - w_bar)
    return torch.matmul(v, near) + torch.matmul(v.conj(), far)


def cauchy_conj(v: Tensor, z: Tensor, w: Tensor, s: Tensor | None = None) -> Tensor:
    """``sum_m v_m / (z_l - w_m) + conj(v_m) / (z_l - conj(w_m))``, chunked over ``l``.

    Args:
        v: ``(*T, H, M)`` complex numerators (any number of leading dimensions ``T``).
        z: ``(H, L)`` complex evaluation points (``H`` broadcasts).
        w: ``(H, M)`` complex poles.
        s: optional ``(H, L)`` complex scale of the poles: the denominators become
            ``z_l - s_l w_m`` and ``z_l - s_l conj(w_m)`` (a Cauchy sum at ``z / s``, divided
            by ``s``, computed without dividing by ``s``).

    Returns:
        ``(*T, H, L)`` complex. The reciprocals ``1 / (z - w)`` are formed once per chunk
        of ``l`` and shared by every numerator (the sums are batched matrix products); no
        temporary exceeds ``MAX_CHUNK_ELEMENTS`` elements. With autograd on, each chunk is
        recomputed in the backward pass instead of stored, so training memory is bounded too.
    """
    lead = v.shape[:-2]
    H = _broadcast(z.shape[:-1], w.shape[:-1], v.shape[-2:-1])[0]
    per_position = H * w.shape[-1]
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (v, z, w))
    # (H, T, M): one batched product per channel, no broadcast copies of the reciprocals.
    vt = v.expand(*lead, H, v.shape[-1]).reshape(-1, H, v.shape[-1]).transpose(0, 1)
    pieces = []
    for start, stop in _chunks(z.shape[-1], per_position):
        zc = z[..., start:stop]
        sc = s[..., start:stop] if s is not None else None
        if grad:
            piece = checkpoint(_cauchy_block, vt, w, zc, sc, use_reentrant=False)
            assert isinstance(piece, Tensor)
        else:
            piece = _cauchy_block(vt, w, zc, sc)
        pieces.append(piece)
    out = torch.cat(pieces, dim=-1)  # (H, T, L)
    return out.transpose(0, 1).reshape(*lead, H, -1)


def cauchy_conj_ref(v: Tensor, z: Tensor, w: Tensor, s: Tensor | None = None) -> Tensor:
    """Reference for :func:`cauchy_conj`: the explicit sum over both halves."""
    vf, wf = conj_full(v), conj_full(w)
    s = torch.ones_like(z) if s is None else s
    return (vf.unsqueeze(-1) / (z.unsqueeze(-2) - s.unsqueeze(-2) * wf.unsqueeze(-1))).sum(-2)


def exp_progression(log_x: Tensor, start: int, step: int, count: int) -> Tensor:
    """``exp(log_x (start + step k))`` for ``k < count``, a new last axis.

    A complex exponential costs about 15 times a complex product, so the powers are built as
    products of two grids, ``exp(log_x (start + step k2)) exp(log_x step c k1)`` with
    ``k = c k1 + k2`` and ``c ~ sqrt(count)``: ``2 sqrt(count)`` exponentials per entry of
    ``log_x``, each product exact to a unit in the last place.
    """
    c = max(1, math.isqrt(max(count - 1, 0)) + 1)
    n_coarse = -(-count // c)
    real = log_x.real.dtype
    fine = torch.arange(c, device=log_x.device, dtype=real) * step + start
    coarse = torch.arange(n_coarse, device=log_x.device, dtype=real) * (step * c)
    x = log_x.unsqueeze(-1)
    grid = torch.exp(x * coarse).unsqueeze(-1) * torch.exp(x * fine).unsqueeze(-2)
    return grid.flatten(-2)[..., :count]


def vandermonde_conj(
    v: Tensor,
    log_x: Tensor,
    L: int,
    offset: int = 0,
    *,
    dtype: torch.dtype | None = None,
    left: Tensor | None = None,
) -> Tensor:
    """``2 Re sum_m v_m x_m^(l + offset)`` for ``l < L``, with ``x = exp(log_x)``.

    Args:
        v: ``(*T, H, M)`` complex. log_x: ``(H, M)`` complex; the powers are computed in its
            precision. dtype: complex precision of the product (default: ``v``'s).
        left: optional ``(A, H, M)`` complex factors: the sums are then taken for every
            numerator ``left_a v`` (an outer product that is never materialised).

    Returns:
        ``(*T, H, L)`` real (``(A, *T, H, L)`` with ``left``). Positions are split as
        ``l = S t + j`` with ``S ~ sqrt(L)``, so ``x^l = (x^S)^t x^j`` and the whole product
        is one batched matrix product of an ``(S, M)`` and an ``(M, S)`` factor:
        ``O(M sqrt L)`` exponentials, no ``(M, L)`` tensor. Only the real part is wanted, and
        ``Re(a b) = Re a Re b - Im a Im b``: the product is a real one over ``2 M``
        interleaved (re, im) terms, half the work of a complex product, forward and backward.
    """
    S = max(1, math.isqrt(max(L - 1, 0)) + 1)
    rows = -(-L // S)
    work = dtype if dtype is not None else v.dtype
    X = exp_progression(log_x, offset, 1, S)  # (H, M, S): x^(j + offset)
    Y = exp_progression(log_x, 0, S, rows).transpose(-1, -2)  # (H, rows, M): x^(S t)
    a = Y if left is None else left.unsqueeze(-2) * Y  # ([A,] H, rows, M)
    b = (v.unsqueeze(-1) * X).to(work)  # (*T, H, M, S)
    a_re = torch.view_as_real(a.to(work)).flatten(-2)  # ([A,] H, rows, 2M): re, im, re, ...
    b_re = torch.stack([2 * b.real, -2 * b.imag], dim=-2).flatten(-3, -2)  # (*T, H, 2M, S)
    if left is None:
        out = torch.matmul(a_re, b_re)  # (*T, H, rows, S)
        return out.flatten(-2)[..., :L]
    # One product per numerator t, each (A, H, rows, S) and contiguous: cheaper than a
    # broadcast product (which copies both factors A x T times) or a permuted output.
    T = b_re.shape[:-3]
    parts = [torch.matmul(a_re, part).flatten(-2)[..., :L] for part in b_re.flatten(0, -4)]
    return torch.stack(parts, dim=1).reshape(a_re.shape[0], *T, a_re.shape[1], L)


def vandermonde_conj_ref(v: Tensor, x: Tensor, L: int, offset: int = 0) -> Tensor:
    """Reference for :func:`vandermonde_conj`: explicit integer powers of ``x``."""
    out = torch.zeros(*_broadcast(v.shape, x.shape)[:-1], L, dtype=v.real.dtype)
    for l in range(L):  # noqa: E741 - l is the paper's time index
        out[..., l] = 2 * (v * x ** (l + offset)).sum(-1).real
    return out


#: Below this ``min |1 - a^L|`` :func:`dplr_kernel` evaluates the Cauchy sums directly.
MIN_TRUNCATION_GAP = 1e-3


def _bilinear_log(w: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """``(2/dt - w, log a)`` in complex128, ``a = (2/dt + w) / (2/dt - w)``."""
    two_dt = (2.0 / dt.double()).unsqueeze(-1)  # (H, 1)
    w64 = w.to(torch.complex128)
    denom = two_dt - w64
    return denom, torch.log((two_dt + w64) / denom)


def truncation_gap(w: Tensor, dt: Tensor, L: int) -> float:
    """``min |1 - a^L|`` over the modes, ``a = (2/dt + w) / (2/dt - w)``: how far the
    discretised modes are from repeating after ``L`` steps. :func:`cauchy_roots_conj`
    divides by it."""
    with torch.no_grad():
        _, log_a = _bilinear_log(w.detach(), dt.detach())
        return float(torch.expm1(L * log_a).abs().min())


def cauchy_roots_conj(
    v: Tensor, w: Tensor, dt: Tensor, L: int, *, left: Tensor | None = None
) -> Tensor:
    """The sums ``sum_m v_m / (2/dt (1 - z) - (1 + z) w_m) + (conjugate half)`` at the
    ``L``-th roots of unity ``torch.fft.rfft`` uses, without any ``(M, L)`` Cauchy tensor.

    With ``a = (2/dt + w) / (2/dt - w)`` (the bilinear discretisation of ``w``), each term is
    ``1 / (2/dt - w) * 1 / (1 - a z)``, and at ``z^L = 1``
    ``1 / (1 - a z) = sum_{k<L} (a z)^k / (1 - a^L)``. So the sums are the real FFT of the
    real sequence ``2 Re sum_m c_m a_m^k`` (``k < L``), ``c = v / ((2/dt - w) (1 - a^L))``:
    one Vandermonde product and one FFT, ``O(M L)`` multiply-adds in a matrix product instead
    of ``O(M L)`` complex divisions. The powers of ``a`` and the coefficients are computed in
    float64 (phases ``k arg a`` up to ``L`` radians lose float32 precision); the product and
    the FFT run in the inputs' precision. Needs ``1 - a^L`` away from 0
    (:func:`truncation_gap`).

    Args:
        v: ``(*T, H, M)`` complex. w: ``(H, M)`` complex. dt: ``(H,)`` real. L: the length.
        left: optional ``(A, H, M)`` complex: the sums for every numerator ``left_a v``
            (see :func:`vandermonde_conj`).

    Returns:
        ``(*T, H, L // 2 + 1)`` complex (``(A, *T, H, L // 2 + 1)`` with ``left``), equal to
        ``cauchy_conj(v, 2/dt (1 - z), w, 1 + z)``.
    """
    out_dtype = torch.promote_types(v.dtype, w.dtype)
    if left is not None:
        out_dtype = torch.promote_types(out_dtype, left.dtype)
    denom, log_a = _bilinear_log(w, dt)
    scale = 1 / (denom * -torch.expm1(L * log_a))
    if left is None:
        c, left_c = v.to(torch.complex128) * scale, None
    else:  # the scale goes to the smaller factor
        c, left_c = v.to(torch.complex128), left.to(torch.complex128) * scale
    powers = vandermonde_conj(c, log_a, L, dtype=out_dtype, left=left_c)
    sums: Tensor = real_fft(powers)
    return sums


def roots_of_unity(L: int, *, dtype: torch.dtype, device: torch.device | None = None) -> Tensor:
    """``exp(-2 pi i j / L)`` for ``j = 0 .. L // 2``: the points ``torch.fft.rfft`` uses."""
    j = torch.arange(L // 2 + 1, device=device, dtype=torch.float64)
    angle = -2 * math.pi * j / L
    return torch.polar(torch.ones_like(angle), angle).to(dtype)


def dplr_kernel(
    Lambda: Tensor,
    P: Tensor,
    B: Tensor,
    C_tilde: Tensor,
    dt: Tensor,
    L: int,
    state: Tensor | None = None,
    Q: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """The convolution kernel of a bilinear-discretised DPLR SSM, from its generating function.

    The SSM is ``x' = A x + B u``, ``y = C x`` with ``A = diag(Lambda) - P Q^*`` (conjugate
    halves implied; ``Q = P`` unless given), discretised with step ``dt``:
    ``A_bar = (I - dt/2 A)^-1 (I + dt/2 A)``,
    ``B_bar = (I - dt/2 A)^-1 dt B``. Its kernel ``K_l = C A_bar^l B_bar`` (``l < L``) has
    the truncated generating function ``C (I - A_bar^L) (I - A_bar z)^-1 B_bar``; at the
    ``L``-th roots of unity ``z^L = 1``, so with ``C_tilde = C (I - A_bar^L)``

        K_hat(z) = 2 / (1 + z) * C_tilde (g(z) - A)^-1 B,   g(z) = 2 / dt * (1 - z) / (1 + z),

    and the Woodbury identity turns ``(g - diag(Lambda) + P P^*)^-1`` into four Cauchy sums.
    ``g`` is infinite at ``z = -1``, so every resolvent is scaled by ``1 + z``: the sums have
    denominators ``2 / dt (1 - z) - (1 + z) lambda``, finite everywhere, and no value
    overflows single precision however small ``dt`` is. The sums are evaluated as FFTs of
    Vandermonde products (:func:`cauchy_roots_conj`), as fast as S4D's kernel. The kernel is
    the inverse real FFT of ``K_hat``.

    Args:
        Lambda: ``(H, M)`` complex. P: ``(r, H, M)`` complex. B: ``(H, M)`` complex.
        C_tilde: ``(C, H, M)`` complex, ``C (I - A_bar^L)`` for this ``L``.
        dt: ``(H,)`` real step sizes.
        L: kernel length.
        state: optional ``(batch, H, M)`` complex initial state ``x_{-1}``.
        Q: optional ``(r, H, M)`` complex left factor of the low-rank term (default ``P``:
            S4's symmetric ``P P^*``; the reference's oldest kernels train them apart).

    Returns:
        ``k`` of shape ``(C, H, L)`` and, when ``state`` is given, ``k_state`` of shape
        ``(batch, C, H, L)`` with ``k_state[l] = C A_bar^(l + 1) x_{-1}``: what the initial
        state adds to output ``l``.
    """
    r = P.shape[0]
    Q = P if Q is None else Q
    n_out = C_tilde.shape[0]
    z = roots_of_unity(L, dtype=torch.complex128, device=Lambda.device)  # (Lf,)
    plus = (1 + z).to(Lambda.dtype)  # (Lf,)
    rights = [B.unsqueeze(0)]
    if state is not None:
        # C A_bar^(l+1) x = the kernel of the input vector (I + dt/2 A) x / dt in place of B.
        Px = 2 * torch.einsum("rhm,bhm->brh", Q.conj(), state).real
        Ax = Lambda * state - torch.einsum("rhm,brh->bhm", P, Px.to(state.dtype))
        rights.append(state / dt.unsqueeze(-1) + Ax / 2)
    right = torch.cat([*rights, P], dim=0)  # (n_in + r, H, M)
    left = torch.cat([C_tilde, Q.conj()], dim=0)  # (C + r, H, M)
    # The choice reads the parameters' values, which a traced graph (torch.compile with
    # fullgraph=True) cannot branch on: traced, the direct sums are always right.
    if not torch.compiler.is_compiling() and truncation_gap(Lambda, dt, L) > MIN_TRUNCATION_GAP:
        # (C + r, n_in + r, H, Lf), each / (1 + z)
        r_all = cauchy_roots_conj(right, Lambda, dt, L, left=left)
    else:  # some mode barely decays over L steps (or traced): the Cauchy sums directly
        v = left.unsqueeze(1) * right.unsqueeze(0)  # (C + r, n_in + r, H, M)
        numer = ((2.0 / dt.double()).unsqueeze(-1) * (1 - z)).to(Lambda.dtype)  # (H, Lf)
        r_all = cauchy_conj(v, numer, Lambda, plus)
    n_in = right.shape[0] - r
    # split, not slices: the backward of a split is one concatenation, that of each slice a
    # zero-filled tensor of the whole size
    top, bottom = torch.split(r_all, [n_out, r])
    k00, k01 = torch.split(top, [n_in, r], dim=1)  # (C, n_in, H, Lf), (C, r, H, Lf)
    k10, k11 = torch.split(bottom, [n_in, r], dim=1)  # (r, n_in, H, Lf), (r, r, H, Lf)
    if r == 1:
        k_hat = k00 - plus * k01 * k10 / (1 + plus * k11)
    else:
        eye = torch.eye(r, dtype=k11.dtype, device=k11.device)
        inner = eye + (plus * k11).permute(2, 3, 0, 1)  # (H, Lf, r, r)
        solved = torch.linalg.solve(inner, k10.permute(2, 3, 0, 1))  # (H, Lf, r, n_in)
        k_hat = k00 - plus * torch.einsum("crhf,hfri->cihf", k01, solved)
    k_hat = 2 * k_hat
    k_all = torch.fft.irfft(k_hat, n=L)  # (C, n_in, H, L)
    k = k_all[:, 0]
    k_state = k_all[:, 1:].transpose(0, 1) if state is not None else None
    return k, k_state


def dplr_dense(
    Lambda: Tensor, P: Tensor, B: Tensor, Q: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The full ``(H, N, N)`` complex ``A = diag(Lambda) - P Q^*`` (``Q = P`` unless given)
    and ``(H, N)`` ``B``."""
    Lf = conj_full(Lambda)
    Pf = conj_full(P)  # (r, H, N)
    Qf = Pf if Q is None else conj_full(Q)
    A = torch.diag_embed(Lf) - torch.einsum("rhn,rhm->hnm", Pf, Qf.conj())
    return A, conj_full(B)


def pairs_real(A: Tensor) -> Tensor:
    """A dense ``(..., N, N)`` complex matrix on conjugate-pair coordinates ``(s, conj(s))``
    (``dplr_dense``'s layout: its lower half of rows is the conjugate of its upper half, the
    halves of columns swapped) as the real ``(..., N, N)`` matrix of the same map on ``(Re s,
    Im s)``: ``T A T^-1`` with ``T = [[I, I], [-i I, i I]] / 2``. Products and solves of real
    matrices cost a quarter of complex ones."""
    M = A.shape[-1] // 2
    a, c = A[..., :M, :M], A[..., :M, M:]
    top = torch.cat([a.real + c.real, c.imag - a.imag], dim=-1)
    bottom = torch.cat([a.imag + c.imag, a.real - c.real], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def rows_to_pairs(C: Tensor) -> Tensor:
    """Row vectors on conjugate-pair coordinates (``(..., N)``, complex) as row vectors on
    ``(Re s, Im s)``: ``C T^-1`` (see :func:`pairs_real`), so that ``C A = (C T^-1) (T A
    T^-1) T``."""
    M = C.shape[-1] // 2
    c1, c2 = C[..., :M], C[..., M:]
    return torch.cat([c1 + c2, 1j * (c1 - c2)], dim=-1)


def rows_from_pairs(c: Tensor) -> Tensor:
    """The inverse of :func:`rows_to_pairs`: ``c T``."""
    M = c.shape[-1] // 2
    c1, c2 = c[..., :M], c[..., M:]
    return torch.cat([(c1 - 1j * c2) / 2, (c1 + 1j * c2) / 2], dim=-1)


def bilinear(A: Tensor, B: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinear (Tustin) discretisation of dense ``A (H, N, N)``, ``B (H, N)`` with ``dt (H,)``."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    half = (dt / 2).to(A.dtype)[:, None, None]
    backward = eye - half * A
    Abar = torch.linalg.solve(backward, eye + half * A)
    Bbar = torch.linalg.solve(backward, (dt.to(A.dtype)[:, None] * B).unsqueeze(-1)).squeeze(-1)
    return Abar, Bbar


def zoh(A: Tensor, B: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """Zero-order-hold discretisation of dense ``A (H, N, N)``, ``B (H, N)`` with ``dt (H,)``:
    ``A_bar = exp(dt A)``, ``B_bar = A^-1 (exp(dt A) - I) B``."""
    dtA = dt.to(A.dtype)[:, None, None] * A
    Abar = torch.linalg.matrix_exp(dtA)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    Bbar = torch.linalg.solve(A, ((Abar - eye) @ B.unsqueeze(-1))).squeeze(-1)
    return Abar, Bbar


def ssm_kernel_ref(Abar: Tensor, Bbar: Tensor, C: Tensor, L: int) -> Tensor:
    """``Re(C A_bar^l B_bar)`` for ``l < L`` by explicit matrix powers.

    Args:
        Abar: ``(H, N, N)``. Bbar: ``(H, N)``. C: ``(C, H, N)``.

    Returns:
        ``(C, H, L)`` real.
    """
    out = []
    x = Bbar
    for _ in range(L):
        out.append(torch.einsum("chn,hn->ch", C, x).real)
        x = torch.einsum("hnm,hm->hn", Abar, x)
    return torch.stack(out, dim=-1)


def krylov_final_state(
    Abar: Tensor, Bbar: Tensor, u: Tensor, state: Tensor, block: int = 256
) -> Tensor:
    """``x_{L-1} = A_bar^L x_{-1} + sum_j A_bar^(L-1-j) B_bar u_j`` for a dense transition.

    Works block by block: the vectors ``A_bar^t B_bar`` (``t < block``) are computed once, each
    block adds one contraction, and the carried state is advanced by ``A_bar^block``. Memory is
    ``O(H block N)`` whatever ``L``.

    Args:
        Abar: ``(H, N, N)``. Bbar: ``(H, N)``. u: ``(batch, H, L)`` real. state: ``(batch, H, N)``.
    """
    L = u.shape[-1]
    block = max(1, min(block, L))
    krylov = [Bbar]
    for _ in range(block - 1):
        krylov.append(torch.einsum("hnm,hm->hn", Abar, krylov[-1]))
    K = torch.stack(krylov, dim=1)  # (H, block, N): K[:, t] = A_bar^t B_bar
    power = torch.linalg.matrix_power(Abar, block)
    x = state
    for start in range(0, L, block):
        stop = min(L, start + block)
        n = stop - start
        step_power = power if n == block else torch.linalg.matrix_power(Abar, n)
        reversed_k = K[:, :n].flip(1)  # A_bar^(n-1-t) B_bar
        x = torch.einsum("hnm,bhm->bhn", step_power, x) + torch.einsum(
            "bht,htn->bhn", u[..., start:stop].to(K.dtype), reversed_k
        )
    return x


def _half_spectrum_weights(n: int, like: Tensor) -> Tensor:
    """``1`` at frequency 0 (and ``n / 2`` for even ``n``), ``1 / 2`` at the others."""
    w = torch.full((n // 2 + 1,), 0.5, dtype=like.real.dtype, device=like.device)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


class _RealFFT(torch.autograd.Function):
    """``torch.fft.rfft(x)`` whose backward is one inverse real FFT. (Autograd's own rfft
    backward zero-pads the gradient to the full spectrum and runs a complex FFT: twice the
    work, and a full-size zero fill.)"""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.n = x.shape[-1]
        out: Tensor = torch.fft.rfft(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        # d loss / d x_t = Re sum_f g_f exp(2 pi i f t / n) over the half spectrum, which is
        # n * irfft(g w) with the interior frequencies halved (irfft doubles them).
        n = ctx.n
        out: Tensor = torch.fft.irfft(grad * _half_spectrum_weights(n, grad), n=n) * n
        return out


def real_fft(x: Tensor) -> Tensor:
    """``torch.fft.rfft(x)`` over the last axis, with a backward pass half as costly."""
    out: Tensor = _RealFFT.apply(x)  # type: ignore[no-untyped-call]
    return out


class _FFTConv(torch.autograd.Function):
    """``irfft(rfft(u, n) rfft(k, n), n)[..., :L]`` with a backward of three real FFTs: the
    gradients are correlations with the saved spectra, ``irfft(rfft(g, n) conj(K), n)`` for
    ``u`` and the same with ``conj(U)``, summed over the batch before its inverse FFT, for
    ``k``. (Autograd's own graph runs two complex FFTs of length ``n`` and zero-fills
    full-size buffers.)"""

    @staticmethod
    def forward(ctx: Any, u: Tensor, k: Tensor, n: int) -> Tensor:
        U, K = torch.fft.rfft(u, n=n), torch.fft.rfft(k, n=n)
        ctx.save_for_backward(U, K)
        ctx.n, ctx.u_shape, ctx.Lk = n, u.shape, k.shape[-1]
        y: Tensor = torch.fft.irfft(U * K, n=n)
        return y[..., : u.shape[-1]]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        U, K = ctx.saved_tensors
        n = ctx.n
        G = torch.fft.rfft(grad, n=n)
        grad_u = grad_k = None
        if ctx.needs_input_grad[0]:  # summed over the channels a broadcast u shared
            grad_u = torch.fft.irfft(G * K.conj(), n=n)[..., : ctx.u_shape[-1]]
            grad_u = grad_u.sum_to_size(ctx.u_shape)
        if ctx.needs_input_grad[1]:  # summed over the batch in the frequency domain
            GU = (G * U.conj()).sum_to_size(K.shape)
            grad_k = torch.fft.irfft(GU, n=n)[..., : ctx.Lk]
        return grad_u, grad_k, None


def fft_conv(u: Tensor, k: Tensor, *, bidirectional: bool = False) -> Tensor:
    """Causal (or, with ``bidirectional``, two-sided) convolution by FFT.

    Args:
        u: ``(..., H, L)`` real input.
        k: ``(H, L)`` causal kernel, or ``(2, H, L)`` when ``bidirectional``: ``k[0]`` acts on
            the past and present, ``k[1]`` (flipped) on the strict future.

    Returns:
        ``(..., H, L)``: ``y_t = sum_{j <= t} k0[t - j] u_j (+ sum_{j > t} k1[j - t - 1] u_j)``.
    """
    L = u.shape[-1]
    if bidirectional:
        k = F.pad(k[0], (0, L)) + F.pad(k[1].flip(-1), (L, 0))
    y: Tensor = _FFTConv.apply(u, k, 2 * L)  # type: ignore[no-untyped-call]
    return y


def conv_ref(u: Tensor, k: Tensor) -> Tensor:
    """Reference for causal :func:`fft_conv`: the explicit sum."""
    L = u.shape[-1]
    y = torch.zeros_like(u)
    for t in range(L):
        y[..., t] = (u[..., : t + 1] * k[..., : t + 1].flip(-1)).sum(-1)
    return y
