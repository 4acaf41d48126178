"""The kernel modules: parametrisation, lengths and rates, hints, gradients, errors.

One contract suite runs over every kernel configuration (no per-class branches).
"""

from __future__ import annotations

import math

import pytest
import torch

from audio_core.optim import OptimHint, param_groups
from ssm_kernels import S4Config, S4DConfig, build_kernel
from ssm_kernels import functional as fn
from ssm_kernels.kernels import DiagKernel, DPLRKernel, SSMKernel

CONFIGS = [
    S4Config(d_state=8),
    S4Config(d_state=8, init="legt", rank=2),
    S4Config(d_state=8, init="fout", n_ssm=2),
    S4Config(d_state=8, n_ssm=2, separate_q=True),
    S4DConfig(d_state=8),
    S4DConfig(d_state=8, init="diag-lin", discretization="bilinear"),
    S4DConfig(d_state=8, init="diag-legs", n_ssm=2),
]
IDS = [
    f"{type(c).__name__}-{c.init}" + ("-q" if getattr(c, "separate_q", False) else "")
    for c in CONFIGS
]


def make(config: S4Config | S4DConfig, H: int = 4, l_max: int = 64) -> SSMKernel:
    kernel = build_kernel(config, d_model=H, l_max=l_max).double()
    if isinstance(kernel, DPLRKernel) and kernel.separate_q:
        with torch.no_grad():  # a left factor of its own, not P's copy
            kernel.Q.add_(0.3 * torch.randn_like(kernel.Q))
    return kernel


def brute_force_kernel(kernel: SSMKernel, L: int, rate: float = 1.0) -> torch.Tensor:
    """``C A_bar^l B_bar`` by matrix powers, from the module's parameters."""
    dt = kernel.dt(rate)
    if isinstance(kernel, DPLRKernel):
        Lambda, P, B, _ = kernel.ssm()
        Q = torch.view_as_complex(kernel.Q) if kernel.separate_q else P
        # A = diag(Lambda) - P Q^* over both halves of the conjugate pairs, by hand
        Pf, Qf = fn.conj_full(P), fn.conj_full(Q)
        A = torch.diag_embed(fn.conj_full(Lambda)) - torch.einsum("rhn,rhm->hnm", Pf, Qf.conj())
        Abar, Bbar = fn.bilinear(A, fn.conj_full(B), dt)
        return fn.ssm_kernel_ref(Abar, Bbar, kernel.output_matrix(), L)
    assert isinstance(kernel, DiagKernel)
    A = kernel._expand(torch.complex(-torch.exp(kernel.A_real), -kernel.A_imag), 0)
    B = kernel._expand(torch.view_as_complex(kernel.B)[0], 0)
    discretise = fn.zoh if kernel.discretization == "zoh" else fn.bilinear
    Abar, Bbar = discretise(torch.diag_embed(fn.conj_full(A)), fn.conj_full(B), dt)
    return fn.ssm_kernel_ref(Abar, Bbar, fn.conj_full(torch.view_as_complex(kernel.C)), L)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize(("L", "rate"), [(64, 1.0), (20, 1.0), (100, 1.0), (50, 0.5), (40, 2.0)])
def test_kernel_equals_brute_force_at_any_length_and_rate(
    config: S4Config | S4DConfig, L: int, rate: float
) -> None:
    kernel = make(config)
    k, _ = kernel(L, rate=rate)
    assert k.shape == (1, 4, L)
    assert (k - brute_force_kernel(kernel, L, rate)).abs().max().item() <= 1e-10


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_state_kernel_is_what_the_state_adds(config: S4Config | S4DConfig) -> None:
    kernel = make(config)
    kernel.setup_step("linear")
    state = torch.randn(3, 4, 4, dtype=torch.complex128)
    _, k_state = kernel(16, state=state)
    assert k_state is not None
    assert k_state.shape == (3, 1, 4, 16)
    # Stepping zeros from that state yields exactly the state's contribution.
    zeros = torch.zeros(3, 4, dtype=torch.float64)
    for l in range(16):  # noqa: E741
        y, state = kernel.step(zeros, state)
        assert torch.allclose(y, k_state[..., l], atol=1e-10)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_sizes_start_log_uniform_in_range(config: S4Config | S4DConfig) -> None:
    kernel = build_kernel(config, d_model=4096, l_max=8)
    assert kernel.inv_dt.shape == (4096, 1)
    log_dt = torch.log(kernel.dt().detach().double())
    lo, hi = math.log(config.dt_min), math.log(config.dt_max)
    assert lo - 1e-6 <= log_dt.min().item()
    assert log_dt.max().item() <= hi + 1e-6
    # Uniform on [lo, hi]: mean and variance within 5 standard errors.
    n = log_dt.numel()
    assert abs(log_dt.mean().item() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * n)
    assert log_dt.var().item() == pytest.approx((hi - lo) ** 2 / 12, rel=0.1)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_decay_stays_negative_whatever_the_parameters(config: S4Config | S4DConfig) -> None:
    kernel = make(config)
    with torch.no_grad():
        for param in kernel.parameters():
            param.uniform_(-30, 30)
    assert torch.all(kernel.diagonal().real < 0)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_optimizer_hints_cap_the_ssm_learning_rate(config: S4Config | S4DConfig) -> None:
    kernel = make(config)
    hints = kernel.optim_hints()
    ssm = {"A_real", "A_imag", "P", "B", "inv_dt"}
    if isinstance(kernel, DPLRKernel) and kernel.separate_q:
        ssm.add("Q")
    if isinstance(kernel, DiagKernel):
        ssm = {"A_real", "A_imag", "B", "inv_dt"}
    assert set(hints) == ssm
    assert all(h == OptimHint(lr_max=0.001, weight_decay=0.0) for h in hints.values())
    model = torch.nn.Sequential(kernel, torch.nn.Linear(4, 4))
    groups = param_groups(model, lr=0.004, weight_decay=0.1)
    optimizer = torch.optim.AdamW(groups, lr=0.004, weight_decay=0.1)
    by_name = {n: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for n in g["names"]}
    assert by_name == {
        **{f"0.{n}": (0.001, 0.0) for n in ssm},
        "0.C": (0.004, 0.1),
        "1.weight": (0.004, 0.1),
        "1.bias": (0.004, 0.1),
    }
    # A base rate below the cap wins.
    low = param_groups(model, lr=1e-4, weight_decay=0.0)
    assert {g["lr"] for g in low} == {1e-4}


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_gradients_reach_every_parameter(config: S4Config | S4DConfig) -> None:
    kernel = make(config, H=2, l_max=8)
    state = torch.randn(1, 2, 4, dtype=torch.complex128)
    params = dict(kernel.named_parameters())

    def run(*values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.func.functional_call(
            kernel, dict(zip(params, values, strict=True)), (8,), {"state": state}
        )
        return out[0], out[1]

    inputs = tuple(p.detach().clone().requires_grad_() for p in params.values())
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-5)


def test_step_before_setup_is_refused() -> None:
    kernel = make(S4Config(d_state=4))
    with pytest.raises(RuntimeError, match=r"call setup_step\(\) before step\(\)"):
        kernel.step(torch.zeros(1, 4, dtype=torch.float64), kernel.default_state(1))


@pytest.mark.parametrize("config", [S4Config(d_state=4), S4DConfig(d_state=4)])
def test_unknown_step_mode_is_named(config: S4Config | S4DConfig) -> None:
    with pytest.raises(ValueError, match="mode must be one of dense, diagonal, linear; got 'fast'"):
        make(config).setup_step("fast")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d_state": 5}, "d_state must be an even integer >= 2; got 5"),
        ({"n_ssm": 3}, "n_ssm must divide d_model=4; got n_ssm=3"),
        ({"dt_min": 0.2}, "need 0 < dt_min <= dt_max; got dt_min=0.2, dt_max=0.1"),
        ({"discretization": "euler"}, "discretization must be zoh or bilinear; got 'euler'"),
    ],
)
def test_bad_kernel_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiagKernel(4, **kwargs)  # type: ignore[arg-type]


def test_the_kernel_base_class_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="abstract"):
        SSMKernel(4)  # type: ignore[abstract]


def test_a_separate_left_factor_is_a_different_system() -> None:
    """With ``separate_q`` the kernel follows ``Q``: equal to ``P`` it is S4's kernel, moved
    it is another one (and the brute-force twin above follows it)."""
    shared = make(S4Config(d_state=8))
    own = build_kernel(S4Config(d_state=8, separate_q=True), d_model=4, l_max=64).double()
    own.load_state_dict(shared.state_dict() | {"Q": own.Q.detach()}, strict=True)
    with torch.no_grad():
        own.Q.copy_(shared.P.expand(-1, 4, -1, -1))
    assert (own(64)[0] - shared(64)[0]).abs().max().item() <= 1e-12
    with torch.no_grad():
        own.Q[:, 0].mul_(1.5)
    moved = (own(64)[0] - shared(64)[0]).abs().amax(dim=-1)[0]
    assert moved[0] > 1e-3
    assert moved[1:].max().item() <= 1e-12  # Q is per channel
    assert own.Q.shape == (1, 4, 4, 2)


@pytest.mark.parametrize("config", [c for c in CONFIGS if isinstance(c, S4Config)])
def test_the_output_matrix_solves_c_times_one_minus_the_power_equals_c_tilde(
    config: S4Config,
) -> None:
    # The complex formula by hand (the module computes it on real and imaginary parts).
    kernel = make(config)
    assert isinstance(kernel, DPLRKernel)
    Lambda, P, B, C_tilde = kernel.ssm()
    Q = torch.view_as_complex(kernel.Q) if kernel.separate_q else P
    A, _ = fn.dplr_dense(Lambda, P, B, Q)
    Abar, _ = fn.bilinear(A, fn.conj_full(B), kernel.dt())
    C = kernel.output_matrix()
    eye = torch.eye(kernel.N, dtype=C.dtype)
    back = torch.einsum("chn,hnm->chm", C, eye - torch.linalg.matrix_power(Abar, kernel._l))
    assert torch.allclose(back, fn.conj_full(C_tilde), atol=1e-11)
