"""The S4 (DPLR) and S4D (diagonal) kernels: modules that own the SSM parameters.

Both share one interface (:class:`SSMKernel`):

- ``forward(L, state=None, rate=1.0) -> (k, k_state)``: the ``(C, H, L)`` convolution kernel
  and, given an initial state, what that state adds to each output;
- ``forward_state(u, state)``: the state after running the input ``u`` from ``state``;
- ``setup_step(mode)``, ``default_state(*batch)``, ``step(u, state) -> (y, next_state)``: the
  recurrent mode, exactly equivalent to the convolution.

The state a kernel hands out and accepts is always in the layout of its current step mode
(``default_state`` gives it), so ``forward`` with a state and ``step`` can be interleaved.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import get_args

import torch
from torch import Tensor, nn

from audio_core.optim import OptimHint

from . import functional as fn
from . import opaque
from .config import DiagInit, Discretization, DtTransform, Measure
from .hippo import diagonal_init, nplr
from .protocol import STEP_MODES, StepMode

DT_TRANSFORMS: tuple[DtTransform, ...] = get_args(DtTransform)

#: Real parts of ``A`` start at most this far below zero and imaginary parts at least this far
#: from it (``legt`` and ``fout`` have purely imaginary eigenvalues, and the parametrisation
#: stores a logarithm), as in the reference implementation.
MIN_DECAY = 1e-4


def _complex_param(x: Tensor) -> nn.Parameter:
    return nn.Parameter(torch.view_as_real(x.to(torch.complex64)).clone())


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def dt_from_param(inv_dt: Tensor, transform: DtTransform) -> Tensor:
    """Step sizes from their parameter: ``exp(inv_dt)`` or ``softplus(inv_dt)``."""
    if transform == "exp":
        return torch.exp(inv_dt)
    return torch.nn.functional.softplus(inv_dt)


def dt_to_param(dt: Tensor, transform: DtTransform) -> Tensor:
    """The parameter that gives step sizes ``dt`` (clamped to at least 1e-4) under
    ``transform``: the inverse of :func:`dt_from_param`."""
    dt = dt.clamp(min=1e-4)
    return torch.log(dt) if transform == "exp" else torch.log(torch.expm1(dt))


class SSMKernel(nn.Module, ABC):
    """What S4 and S4D kernels share: step sizes, the diagonal of ``A``, ``B`` and ``C``,
    shapes and the recurrent-mode plumbing.

    The parameters have the reference implementation's names and shapes, so its checkpoints
    load key for key: ``inv_dt (H, 1)`` (``dt = dt_transform(inv_dt)``), ``A_real (S, M)``
    and ``A_imag (S, M)`` (``A = -exp(A_real) - i A_imag``, so every mode decays whatever the
    training does), ``B (1, S, M, 2)`` and ``C (channels, H, M, 2)`` (complex numbers as real
    pairs). ``S = n_ssm`` copies of ``(A, B)`` are shared by the ``H`` channels (channel ``h``
    uses copy ``h % S``); ``M = N / 2`` modes are kept, the other half being their conjugates.

    Args:
        d_model: ``H``, the number of channels (one learnable step size each).
        d_state: ``N``, the state size of each SSM (even; ``N / 2`` complex modes are kept).
        channels: output channels of the kernel (2 for a bidirectional layer).
        n_ssm: how many distinct ``(A, B)`` pairs the ``H`` channels share (divides ``H``).
        dt_min, dt_max: range of the log-uniform initialisation of the step sizes.
        dt_transform: ``softplus`` (the reference's current default) or ``exp`` (its older
            V3 parametrisation, needed by checkpoints made with it).
        lr: learning-rate cap of ``A``, ``B`` and ``dt`` (see :meth:`optim_hints`).
    """

    step_mode: StepMode | None

    def __init__(
        self,
        d_model: int,
        *,
        d_state: int = 64,
        channels: int = 1,
        n_ssm: int = 1,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_transform: DtTransform = "softplus",
        lr: float = 0.001,
    ) -> None:
        super().__init__()
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even integer >= 2; got {d_state}")
        if n_ssm < 1 or d_model % n_ssm:
            raise ValueError(f"n_ssm must divide d_model={d_model}; got n_ssm={n_ssm}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1; got {channels}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max; got dt_min={dt_min}, dt_max={dt_max}")
        if dt_transform not in DT_TRANSFORMS:
            raise ValueError(f"dt_transform must be exp or softplus; got {dt_transform!r}")
        self.H, self.N, self.M = d_model, d_state, d_state // 2
        self.channels, self.n_ssm, self.lr = channels, n_ssm, lr
        self.dt_transform: DtTransform = dt_transform
        log_dt = torch.rand(d_model, 1) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.inv_dt = nn.Parameter(dt_to_param(torch.exp(log_dt), dt_transform))
        C = torch.randn(channels, d_model, self.M, dtype=torch.complex64)
        self.C = _complex_param(C)
        self.step_mode = None
        self._step: dict[str, Tensor] = {}

    def _init_diagonal(self, Lambda: Tensor, B: Tensor) -> None:
        """Store ``A_real``, ``A_imag`` and ``B`` from one half of the modes.

        The reference keeps the half with negative imaginary parts; ``Lambda`` and ``B`` may
        be either half (they are conjugated to that convention here).
        """
        if bool((Lambda.imag > 0).any()):
            Lambda, B = Lambda.conj(), B.conj()
        S = self.n_ssm
        real = torch.log((-Lambda.real).clamp(min=MIN_DECAY))
        imag = (-Lambda.imag).clamp(min=MIN_DECAY)
        self.A_real = nn.Parameter(real.float().expand(S, -1).clone())
        self.A_imag = nn.Parameter(imag.float().expand(S, -1).clone())
        self.B = _complex_param(B.expand(1, S, -1))

    # -- helpers ---------------------------------------------------------------------------
    def _expand(self, x: Tensor, dim: int) -> Tensor:
        """Tile an ``n_ssm`` axis to ``H``: channel ``h`` uses SSM ``h % n_ssm``."""
        index = torch.arange(self.H, device=x.device) % self.n_ssm
        return x.index_select(dim, index)

    def dt(self, rate: float = 1.0) -> Tensor:
        """The step sizes ``(H,)`` (times ``rate``)."""
        return dt_from_param(self.inv_dt[:, 0], self.dt_transform) * rate

    def diagonal(self) -> Tensor:
        """The diagonal of ``A`` (the diagonal part, for S4), ``(H, M)`` complex."""
        return self._expand(torch.complex(-torch.exp(self.A_real), -self.A_imag), 0)

    def input_matrix(self) -> Tensor:
        """``B`` as ``(H, M)`` complex."""
        return self._expand(torch.view_as_complex(self.B)[0], 0)

    @property
    def real_dtype(self) -> torch.dtype:
        return self.inv_dt.dtype

    @property
    def complex_dtype(self) -> torch.dtype:
        return _complex_dtype(self.real_dtype)

    @abstractmethod
    def ssm_parameter_names(self) -> tuple[str, ...]:
        """Local names of the parameters that define ``A``, ``B`` and ``dt``."""
        ...

    def optim_hints(self) -> dict[str, OptimHint]:
        """Per-parameter optimizer hints: ``A``, ``B`` and ``dt`` train with a learning rate
        of at most ``lr`` and no weight decay (the S4 recipe); ``C`` uses the defaults.
        ``audio_core.optim.param_groups`` turns these into optimizer groups."""
        hint = OptimHint(lr_max=self.lr, weight_decay=0.0)
        return {name: hint for name in self.ssm_parameter_names()}

    def _require_step(self) -> StepMode:
        if self.step_mode is None:
            raise RuntimeError("call setup_step() before step(); it prepares the recurrence")
        return self.step_mode

    def _to_canonical(self, state: Tensor) -> Tensor:
        return state

    def _from_canonical(self, state: Tensor) -> Tensor:
        return state

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Zeros of shape ``(*batch_shape, H, M)`` (``(*batch_shape, H, N)`` in the
        ``diagonal`` step mode of S4), complex. ``dtype`` names the real precision (the
        state is its complex counterpart); it defaults to the kernel's."""
        eigenbasis = self._eigenbasis_state()
        size = self.N if eigenbasis else self.M
        if eigenbasis:
            cdtype = torch.complex128
        else:
            cdtype = _complex_dtype(dtype) if dtype is not None else self.complex_dtype
        device = device if device is not None else self.inv_dt.device
        return torch.zeros(*batch_shape, self.H, size, dtype=cdtype, device=device)

    def _eigenbasis_state(self) -> bool:
        """Whether the step state holds all ``N`` modes in an eigenbasis, in complex128."""
        return False

    # -- interface implemented by subclasses -----------------------------------------------
    @abstractmethod
    def forward(
        self, L: int, state: Tensor | None = None, rate: float = 1.0
    ) -> tuple[Tensor, Tensor | None]: ...

    @abstractmethod
    def forward_state(self, u: Tensor, state: Tensor) -> Tensor: ...

    @abstractmethod
    def setup_step(self, mode: StepMode = "dense") -> None: ...

    @abstractmethod
    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]: ...


class DPLRKernel(SSMKernel):
    """S4's kernel: ``A = diag(Lambda) - P P^*`` from a HiPPO measure, bilinear discretisation.

    The learnt output vector is ``C_tilde = C (I - A_bar^l_kernel)``, as in S4: the kernel of
    length ``l_kernel`` then needs no matrix power. ``l_kernel`` is a buffer (the reference's
    name): the length ``C`` is tuned to, ``0`` meaning that ``C`` is the plain output vector
    (a reference checkpoint that never ran a forward pass). Lengths up to ``l_kernel``
    truncate the kernel; other lengths or ``rate != 1`` recover ``C`` by one dense solve
    (slower, exact). :meth:`retune` moves ``C_tilde`` to another length.

    Parameters beyond :class:`SSMKernel`'s: ``P (rank, S, M, 2)``, and with ``separate_q``
    ``Q (rank, H, M, 2)``.

    Args:
        init: HiPPO measure, ``legs``, ``legt`` or ``fout``.
        rank: rank of ``P`` (at least the measure's own: 1, 2, 1).
        separate_q: ``A = diag(Lambda) - P Q^*`` with a left factor ``Q`` of its own per
            channel (starting equal to ``P``), as the reference's oldest S4 kernels train it
            (the code of the paper's released DiffWave checkpoints); default ``Q = P``.
        l_max: the sequence length the kernel is trained at (the initial ``l_kernel``; the
            random initial ``C`` is taken as ``C_tilde`` for it).
        Others: see :class:`SSMKernel`.
    """

    l_kernel: Tensor

    def __init__(
        self,
        d_model: int,
        *,
        l_max: int,
        d_state: int = 64,
        init: Measure = "legs",
        rank: int = 1,
        channels: int = 1,
        n_ssm: int = 1,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_transform: DtTransform = "softplus",
        lr: float = 0.001,
        separate_q: bool = False,
    ) -> None:
        super().__init__(
            d_model,
            d_state=d_state,
            channels=channels,
            n_ssm=n_ssm,
            dt_min=dt_min,
            dt_max=dt_max,
            dt_transform=dt_transform,
            lr=lr,
        )
        if l_max < 0:
            raise ValueError(f"l_max must be >= 0; got {l_max}")
        system = nplr(init, d_state, rank)
        self.rank = system.P.shape[0]
        self._init_diagonal(system.Lambda, system.B)
        P = system.P.conj() if bool((system.Lambda.imag > 0).any()) else system.P
        self.P = _complex_param(P[:, None].expand(-1, n_ssm, -1))
        self.separate_q = separate_q
        if separate_q:
            self.Q = _complex_param(P[:, None].expand(-1, d_model, -1))
        self.register_buffer("l_kernel", torch.tensor(l_max, dtype=torch.int64))
        self._l = l_max
        self.register_load_state_dict_post_hook(_sync_l_kernel)  # type: ignore[no-untyped-call]

    @property
    def l_max(self) -> int:
        """The length ``C`` is tuned to (``l_kernel`` as a Python int; 0: plain ``C``)."""
        return self._l

    def ssm_parameter_names(self) -> tuple[str, ...]:
        return ("A_real", "A_imag", "P", "B", "inv_dt") + (("Q",) if self.separate_q else ())

    def ssm(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(Lambda (H, M), P (r, H, M), B (H, M), C_tilde (C, H, M))`` as complex tensors."""
        return (
            self.diagonal(),
            self._expand(torch.view_as_complex(self.P), 1),
            self.input_matrix(),
            torch.view_as_complex(self.C),
        )

    def left_factor(self) -> Tensor:
        """``Q (r, H, M)`` complex of ``A = diag(Lambda) - P Q^*`` (``P`` itself unless
        ``separate_q``)."""
        if self.separate_q:
            return torch.view_as_complex(self.Q)
        return self._expand(torch.view_as_complex(self.P), 1)

    def _dense(self, dt: Tensor) -> tuple[Tensor, Tensor]:
        Lambda, P, B, _ = self.ssm()
        A, Bf = fn.dplr_dense(Lambda, P, B, self.left_factor())
        return fn.bilinear(A, Bf, dt)

    def _eye_minus_power(self, dt: Tensor, L: int) -> Tensor:
        """``I - A_bar^L`` (bilinear ``A_bar``), real ``(H, N, N)`` on ``(Re s, Im s)``
        (:func:`~ssm_kernels.functional.pairs_real`): a quarter of the complex products."""
        Lambda, P, B, _ = self.ssm()
        Ar = fn.pairs_real(fn.dplr_dense(Lambda, P, B, self.left_factor())[0])
        eye = torch.eye(self.N, dtype=Ar.dtype, device=Ar.device)
        half = (dt / 2).to(Ar.dtype)[:, None, None]
        Abar = torch.linalg.solve(eye - half * Ar, eye + half * Ar)
        power: Tensor = torch.linalg.matrix_power(Abar, L)
        return eye - power

    def output_matrix(self) -> Tensor:
        """The true ``C = C_tilde (I - A_bar^l_kernel)^-1`` over all ``N`` modes:
        ``(C, H, N)`` (simply ``C`` and its conjugates when ``l_kernel`` is 0)."""
        Ct = fn.conj_full(torch.view_as_complex(self.C))
        if self._l == 0:
            return Ct
        # c X = c_tilde on (Re s, Im s), X real: the real and imaginary parts of the rows
        # are two right-hand sides of one real solve (X^T c^T = c_tilde^T).
        lhs = self._eye_minus_power(self.dt(), self._l).mT.unsqueeze(0)
        rhs = fn.rows_to_pairs(Ct)
        sol = torch.linalg.solve(lhs, torch.stack([rhs.real, rhs.imag], dim=-1))
        return fn.rows_from_pairs(torch.complex(sol[..., 0], sol[..., 1]))

    def _tilde(self, C: Tensor, dt: Tensor, L: int) -> Tensor:
        """``C (I - A_bar^L)`` for the full ``C (channels, H, N)``, conjugate half dropped."""
        c = fn.rows_to_pairs(C)
        X = self._eye_minus_power(dt, L).to(c.dtype)
        return fn.rows_from_pairs(torch.einsum("chn,hnm->chm", c, X))[..., : self.M]

    @torch.no_grad()
    def retune(self, L: int) -> None:
        """Re-express ``C`` as ``C_tilde`` for length ``L`` (computed in float64) and set
        ``l_kernel = L``: the kernel is unchanged, lengths up to ``L`` become cheap."""
        if L < 1:
            raise ValueError(f"L must be >= 1; got {L}")
        double = copy.deepcopy(self).double()
        C_tilde = double._tilde(double.output_matrix(), double.dt(), L)
        self.C.copy_(torch.view_as_real(C_tilde.to(self.complex_dtype)))
        self.l_kernel.fill_(L)
        self._l = L

    def forward(
        self, L: int, state: Tensor | None = None, rate: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Kernel ``(C, H, L)`` and, given an initial state, ``k_state (batch, C, H, L)``.

        Traced by ``torch.compile`` (and without a state), the kernel is one opaque operator
        that runs this method eagerly (:mod:`ssm_kernels.opaque`): the compiler sees no
        complex arithmetic, and the fast roots-of-unity sums stay available."""
        if state is None and rate == 1.0 and torch.compiler.is_compiling():
            return opaque.dplr_kernel(opaque.spec(self), L, list(self.parameters())), None
        Lambda, P, B, C_tilde = self.ssm()
        Q = self.left_factor() if self.separate_q else None
        dt = self.dt(rate)
        if state is not None:
            state = self._to_canonical(state)
        if rate == 1.0 and 0 < L <= self._l:
            k, k_state = fn.dplr_kernel(Lambda, P, B, C_tilde, dt, self._l, state, Q)
            return k[..., :L], (k_state[..., :L] if k_state is not None else None)
        C_tilde = self._tilde(self.output_matrix(), dt, L)
        return fn.dplr_kernel(Lambda, P, B, C_tilde, dt, L, state, Q)

    def forward_state(self, u: Tensor, state: Tensor) -> Tensor:
        """The state after ``u (batch, H, L)`` starting from ``state``."""
        Abar, Bbar = self._dense(self.dt())
        x = fn.krylov_final_state(Abar, Bbar, u, fn.conj_full(self._to_canonical(state)))
        return self._from_canonical(x[..., : self.M])

    @torch.no_grad()
    def setup_step(self, mode: StepMode = "dense") -> None:
        """Prepare ``step``: ``dense`` (the ``N x N`` discretised transition), ``diagonal``
        (its eigendecomposition; state in the eigenbasis, ``N`` modes) or ``linear`` (the
        DPLR structure, ``O(N r)`` per step). Computed in float64, stored in the module's
        dtype. Call it again after the parameters change."""
        if mode not in STEP_MODES:
            raise ValueError(f"mode must be one of {', '.join(STEP_MODES)}; got {mode!r}")
        double = self if self.real_dtype == torch.float64 else copy.deepcopy(self).double()
        tables = _dplr_step_tables(double, mode)
        if mode != "diagonal":
            cdtype = self.complex_dtype
            tables = {
                k: v.to(cdtype if v.is_complex() else self.real_dtype) for k, v in tables.items()
            }
        # The eigenbasis of a HiPPO matrix is ill-conditioned: its output is a sum of large
        # terms that cancel, which single precision cannot resolve (LegS, N = 8: 4e-3 relative
        # error in float32). The diagonal recurrence therefore always runs in complex128.
        self._step = tables
        self.step_mode = mode

    def _eigenbasis_state(self) -> bool:
        return self.step_mode == "diagonal"

    def _to_canonical(self, state: Tensor) -> Tensor:
        if self.step_mode != "diagonal":
            return state
        x = torch.einsum("hnm,...hm->...hn", self._step["V"], state)[..., : self.M]
        return x.to(self.complex_dtype)

    def _from_canonical(self, state: Tensor) -> Tensor:
        if self.step_mode != "diagonal":
            return state
        x = fn.conj_full(state).to(torch.complex128)
        return torch.einsum("hnm,...hm->...hn", self._step["V_inv"], x)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``u (batch, H)`` real -> ``y (batch, C, H)`` and the next state."""
        mode = self._require_step()
        t = self._step
        uc = u.to(state.dtype).unsqueeze(-1)
        if mode == "dense":
            x = (
                torch.einsum("hnm,...hm->...hn", t["A_hh"], state)
                + torch.einsum("hnm,...hm->...hn", t["A_hc"], state.conj())
                + t["B"] * uc
            )
            y = 2 * torch.einsum("chn,...hn->...ch", t["C"], x).real
        elif mode == "linear":
            Lambda, P, Q, dt = t["Lambda"], t["P"], t["Q"], t["dt"].unsqueeze(-1)
            Px = 2 * torch.einsum("rhm,...hm->...rh", Q.conj(), state).real
            w = (
                state
                + dt
                / 2
                * (Lambda * state - torch.einsum("rhm,...rh->...hm", P, Px.to(state.dtype)))
                + dt * t["B"] * uc
            )
            Dw = t["D"] * w
            PDw = 2 * torch.einsum("rhm,...hm->...rh", Q.conj(), Dw).real
            corr = torch.einsum("hrs,...sh->...rh", t["inner_inv"], PDw)
            x = 2 / dt * (Dw - t["D"] * torch.einsum("rhm,...rh->...hm", P, corr.to(state.dtype)))
            y = 2 * torch.einsum("chn,...hn->...ch", t["C"], x).real
        else:
            x = t["mu"] * state + t["B"] * uc
            y = torch.einsum("chn,...hn->...ch", t["C"], x).real
        return y.to(u.dtype), x


def _sync_l_kernel(module: nn.Module, incompatible: object) -> None:
    """After ``load_state_dict``: mirror the loaded ``l_kernel`` buffer as a Python int."""
    assert isinstance(module, DPLRKernel), f"hook registered on {type(module).__name__}"
    module._l = int(module.l_kernel)


def _dplr_step_tables(kernel: DPLRKernel, mode: StepMode) -> dict[str, Tensor]:
    dt = kernel.dt()
    Lambda, P, B, _ = kernel.ssm()
    Q = kernel.left_factor()
    C = kernel.output_matrix()
    M = kernel.M
    if mode == "linear":  # needs no dense N x N matrices
        D = 1 / (2 / dt.unsqueeze(-1) - Lambda)  # (H, M)
        inner = 2 * torch.einsum("rhm,hm,shm->hrs", Q.conj(), D, P).real
        eye = torch.eye(P.shape[0], dtype=inner.dtype, device=inner.device)
        return {
            "Lambda": Lambda,
            "P": P,
            "Q": Q,
            "B": B,
            "dt": dt,
            "D": D,
            "inner_inv": torch.linalg.inv(eye + inner),
            "C": C[..., :M],
        }
    A, Bf = fn.dplr_dense(Lambda, P, B, Q)
    Abar, Bbar = fn.bilinear(A, Bf, dt)
    if mode == "dense":
        return {
            "A_hh": Abar[:, :M, :M],
            "A_hc": Abar[:, :M, M:],
            "B": Bbar[:, :M],
            "C": C[..., :M],
        }
    mu, V = torch.linalg.eig(Abar)
    V_inv = torch.linalg.inv(V)
    return {
        "mu": mu,
        "B": torch.einsum("hnm,hm->hn", V_inv, Bbar),
        "C": torch.einsum("chn,hnm->chm", C, V),
        "V": V,
        "V_inv": V_inv,
    }


class DiagKernel(SSMKernel):
    """S4D's kernel: diagonal ``A``, ZOH or bilinear discretisation, Vandermonde product.

    ``K_l = 2 Re sum_m C_m B_bar_m A_bar_m^l``; the real part of ``A`` is ``-exp(A_real)``, so
    the recurrence decays whatever the training does. The parameters are
    :class:`SSMKernel`'s (the reference's ``SSMKernelDiag`` layout).

    Args:
        init: ``diag-inv``, ``diag-lin`` or ``diag-legs`` (see :func:`hippo.diagonal_init`).
        discretization: ``zoh`` or ``bilinear``.
        Others: see :class:`SSMKernel`.
    """

    def __init__(
        self,
        d_model: int,
        *,
        d_state: int = 64,
        init: DiagInit = "diag-inv",
        discretization: Discretization = "zoh",
        channels: int = 1,
        n_ssm: int = 1,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_transform: DtTransform = "softplus",
        lr: float = 0.001,
    ) -> None:
        super().__init__(
            d_model,
            d_state=d_state,
            channels=channels,
            n_ssm=n_ssm,
            dt_min=dt_min,
            dt_max=dt_max,
            dt_transform=dt_transform,
            lr=lr,
        )
        if discretization not in get_args(Discretization):
            raise ValueError(f"discretization must be zoh or bilinear; got {discretization!r}")
        self.discretization = discretization
        Lambda, B = diagonal_init(init, d_state)
        self._init_diagonal(Lambda, B)

    def ssm_parameter_names(self) -> tuple[str, ...]:
        return ("A_real", "A_imag", "B", "inv_dt")

    def discrete(self, rate: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
        """``(log A_bar, B_bar, C)``, each ``(H, M)`` / ``(C, H, M)`` complex."""
        A = self.diagonal()
        B = self.input_matrix()
        dt = self.dt(rate).unsqueeze(-1)
        dtA = dt * A
        if self.discretization == "zoh":
            log_Abar = dtA
            Bbar = torch.expm1(dtA) / A * B
        else:
            log_Abar = torch.log((1 + dtA / 2) / (1 - dtA / 2))
            Bbar = dt / (1 - dtA / 2) * B
        return log_Abar, Bbar, torch.view_as_complex(self.C)

    def forward(
        self, L: int, state: Tensor | None = None, rate: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Kernel ``(C, H, L)`` and, given an initial state, ``k_state (batch, C, H, L)``."""
        log_Abar, Bbar, C = self.discrete(rate)
        k = fn.vandermonde_conj(C * Bbar, log_Abar, L)
        if state is None:
            return k, None
        v = C * state.unsqueeze(-3)  # (batch, C, H, M)
        return k, fn.vandermonde_conj(v, log_Abar, L, offset=1)

    def forward_state(self, u: Tensor, state: Tensor) -> Tensor:
        """The state after ``u (batch, H, L)`` starting from ``state``."""
        log_Abar, Bbar, _ = self.discrete()
        L = u.shape[-1]
        x = state * torch.exp(L * log_Abar)
        per_position = u.shape[0] * self.H * self.M
        for start, stop in fn._chunks(L, per_position):
            powers = torch.arange(L - 1 - start, L - 1 - stop, -1, device=u.device)
            decay = torch.exp(log_Abar.unsqueeze(-1) * powers.to(u.dtype))  # (H, M, l)
            x = x + Bbar * torch.einsum("bhl,hml->bhm", u[..., start:stop].to(x.dtype), decay)
        return x

    @torch.no_grad()
    def setup_step(self, mode: StepMode = "diagonal") -> None:
        """Prepare ``step``. S4D's recurrence is diagonal whatever ``mode`` names; every mode
        is accepted so that code can set a whole model's mode at once."""
        if mode not in STEP_MODES:
            raise ValueError(f"mode must be one of {', '.join(STEP_MODES)}; got {mode!r}")
        log_Abar, Bbar, C = self.discrete()
        self._step = {"A": torch.exp(log_Abar), "B": Bbar, "C": C}
        self.step_mode = mode

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``u (batch, H)`` real -> ``y (batch, C, H)`` and the next state."""
        self._require_step()
        t = self._step
        x = t["A"] * state + t["B"] * u.to(state.dtype).unsqueeze(-1)
        return 2 * torch.einsum("chn,...hn->...ch", t["C"], x).real, x


opaque.use_module_class(DPLRKernel)
