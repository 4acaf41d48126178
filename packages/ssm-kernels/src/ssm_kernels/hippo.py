"""HiPPO matrices and their normal-plus-low-rank (NPLR) form.

Every measure here has a state matrix ``A`` that becomes *normal* after adding a low-rank term:
``A + P P^T = c I + K`` with ``K`` real skew-symmetric. A skew-symmetric matrix is unitarily
diagonalisable with imaginary eigenvalues, so ``A = V (Lambda - P' P'^*) V^*`` with
``Lambda = c + i lambda`` and ``P' = V^* P``: the DPLR form S4 computes its kernel with.

Conventions (state size ``N``, ``R_n = sqrt(2n + 1)``):

- ``legs`` (scaled Legendre): ``A_nk = -R_n R_k`` below the diagonal, ``-(n + 1)`` on it,
  ``0`` above; ``B_n = R_n``; rank-1 correction ``P_n = sqrt(n + 1/2)``, ``c = -1/2``.
- ``legt`` (translated Legendre, coefficients sign-flipped so that ``B = R``): ``A_nk = -R_n R_k``
  for ``n >= k`` and ``-(-1)^(n-k) R_n R_k`` for ``n < k``, then ``A`` and ``B`` halved;
  rank-2 correction (the even and the odd rows of ``R``, over sqrt 2), ``c = 0``.
- ``fout`` (translated Fourier): basis ``(cos 0, sin 0, cos 1, sin 1, ...)`` on a unit window,
  rotations ``2 pi n`` between each cosine and sine, minus ``B B^T`` where ``B`` is ``1`` for
  the constant, ``sqrt 2`` for the other cosines and ``0`` for the sines; rank 1, ``c = 0``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor

from .config import MEASURE_RANK, Measure

MEASURES: tuple[Measure, ...] = get_args(Measure)


def _check(measure: str, N: int) -> None:
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    if N < 2 or N % 2:
        raise ValueError(f"state size N must be an even integer >= 2; got {N!r}")


def hippo(measure: Measure, N: int) -> tuple[Tensor, Tensor]:
    """The real HiPPO system of ``measure``: ``A`` of shape ``(N, N)`` and ``B`` of shape
    ``(N,)``, in float64. ``N`` must be even (the conjugate-pair layout needs it)."""
    _check(measure, N)
    n = torch.arange(N, dtype=torch.float64)
    R = torch.sqrt(2 * n + 1)
    row, col = n[:, None], n[None, :]
    if measure == "legs":
        A = torch.where(row > col, -R[:, None] * R[None, :], torch.zeros(N, N, dtype=n.dtype))
        A = A - torch.diag(n + 1)
        return A, R.clone()
    if measure == "legt":
        sign = torch.where(row >= col, torch.ones(()), (-1.0) ** (row - col))
        return -0.5 * R[:, None] * R[None, :] * sign, 0.5 * R
    B = torch.zeros(N, dtype=torch.float64)
    B[0::2] = math.sqrt(2)
    B[0] = 1.0
    K = torch.zeros(N, N, dtype=torch.float64)
    freq = 2 * math.pi * torch.arange(N // 2, dtype=torch.float64)
    K[0::2, 1::2] = torch.diag(-freq)
    K[1::2, 0::2] = torch.diag(freq)
    return K - B[:, None] * B[None, :], B


def low_rank(measure: Measure, N: int) -> Tensor:
    """``P`` of shape ``(rank, N)`` such that ``A + P^T P`` is normal (see the module notes)."""
    _check(measure, N)
    n = torch.arange(N, dtype=torch.float64)
    if measure == "legs":
        return torch.sqrt(n + 0.5)[None]
    if measure == "legt":
        R = torch.sqrt(2 * n + 1) / math.sqrt(2)
        even = (n % 2 == 0).to(n.dtype)
        return torch.stack([R * even, R * (1 - even)])
    return hippo("fout", N)[1][None]


class NPLR(NamedTuple):
    """A HiPPO system in conjugate-pair DPLR form (``M = N / 2`` modes kept).

    ``A = V (diag(Lambda_full) - P_full P_full^*) V^*`` and ``B = V B_full`` where ``X_full``
    stacks ``X`` and ``conj(X)`` along the mode axis, and ``V = [V_half, conj(V_half)]`` is
    unitary.
    """

    Lambda: Tensor  # (M,) complex128, sorted by decreasing imaginary part
    P: Tensor  # (rank, M) complex128
    B: Tensor  # (M,) complex128
    V: Tensor  # (N, N) complex128


def nplr(measure: Measure, N: int, rank: int | None = None) -> NPLR:
    """Diagonalise the normal part of ``measure``'s HiPPO matrix, keeping one of each
    conjugate pair. ``rank`` may exceed the measure's own (extra rows of ``P`` are zero)."""
    _check(measure, N)
    need = MEASURE_RANK[measure]
    rank = need if rank is None else rank
    if rank < need:
        raise ValueError(f"measure {measure!r} needs rank >= {need}; got rank={rank}")
    A, B = hippo(measure, N)
    P = low_rank(measure, N)
    S = A + P.T @ P
    c = torch.diagonal(S).mean()
    K = S - c * torch.eye(N, dtype=S.dtype)
    asym = (K + K.T).abs().max().item()
    assert asym < 1e-9, f"{measure}: A + P^T P is not c I + skew (symmetric residue {asym})"
    # -iK is Hermitian: eigh gives real lambda with K v = i lambda v, and K conj(v) = -i lambda
    # conj(v). Keep lambda > 0; pair the null space (even-dimensional) by hand.
    lam, vec = torch.linalg.eigh(-1j * K.to(torch.complex128))
    tol = 1e-9 * max(1.0, lam.abs().max().item())
    positive = lam > tol
    null = lam.abs() <= tol
    order = torch.argsort(lam[positive], descending=True)
    V_half = [vec[:, positive][:, order]]
    lam_half = [lam[positive][order]]
    n_null = int(null.sum())
    if n_null:
        # A real orthonormal basis of the null space, paired as (e_a + i e_b) / sqrt 2.
        basis = torch.cat([vec[:, null].real, vec[:, null].imag], dim=1)
        U, s, _ = torch.linalg.svd(basis, full_matrices=False)
        real_basis = U[:, :n_null]
        assert int((s > 1e-9).sum()) == n_null, f"{measure}: null space basis is degenerate"
        pairs = (real_basis[:, 0::2] + 1j * real_basis[:, 1::2]) / math.sqrt(2)
        V_half.append(pairs)
        lam_half.append(torch.zeros(n_null // 2, dtype=lam.dtype))
    Vh = torch.cat(V_half, dim=1)
    M = N // 2
    assert Vh.shape == (N, M), f"{measure}: got {Vh.shape[1]} modes, expected {M}"
    V = torch.cat([Vh, Vh.conj()], dim=1)
    Lambda = c + 1j * torch.cat(lam_half)
    Pc = Vh.conj().T @ P.to(torch.complex128).T  # (M, need)
    P_out = torch.zeros(rank, M, dtype=torch.complex128)
    P_out[:need] = Pc.T
    return NPLR(Lambda, P_out, Vh.conj().T @ B.to(torch.complex128), V)


def diagonal_init(
    init: Literal["diag-inv", "diag-lin", "diag-legs"], N: int
) -> tuple[Tensor, Tensor]:
    """S4D initialisations: ``(Lambda, B)`` of ``N / 2`` complex modes (complex128).

    - ``diag-lin``: ``Lambda_n = -1/2 + i pi n``, ``B = 1``;
    - ``diag-inv``: ``Lambda_n = -1/2 + i (N / pi) (N / (2n + 1) - 1)``, ``B = 1``;
    - ``diag-legs``: the diagonal part of HiPPO-LegS's NPLR form and its projected ``B``.
    """
    if N < 2 or N % 2:
        raise ValueError(f"state size N must be an even integer >= 2; got {N!r}")
    n = torch.arange(N // 2, dtype=torch.float64)
    ones = torch.ones(N // 2, dtype=torch.complex128)
    if init == "diag-lin":
        return -0.5 + 1j * math.pi * n, ones
    if init == "diag-inv":
        return -0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1), ones
    if init == "diag-legs":
        system = nplr("legs", N)
        return system.Lambda, system.B
    raise ValueError(f"init must be one of diag-inv, diag-lin, diag-legs; got {init!r}")
