"""The shared layers against their definitions."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_models.layers import ScalarLayerNorm, scalar_layer_norm_ref


@settings(max_examples=25, deadline=None)
@given(
    lead=st.sampled_from([(1,), (3,), (2, 5)]),
    width=st.integers(2, 17),
    seed=st.integers(0, 99),
)
def test_scalar_layer_norm_and_its_gradients_equal_the_definition(
    lead: tuple[int, ...], width: int, seed: int
) -> None:
    torch.manual_seed(seed)
    x = (3 * torch.randn(*lead, width, dtype=torch.float64) + 1).requires_grad_()
    m = torch.randn(1, dtype=torch.float64, requires_grad=True)
    s = torch.randn(1, dtype=torch.float64, requires_grad=True)
    norm = ScalarLayerNorm().double()
    with torch.no_grad():
        norm.m.copy_(m)
        norm.s.copy_(s)
    ours = norm(x)
    theirs = scalar_layer_norm_ref(x, m, s)
    assert torch.allclose(ours, theirs, atol=1e-12)
    g = torch.randn_like(ours)
    got = torch.autograd.grad(ours, (x, norm.m, norm.s), g)
    want = torch.autograd.grad(theirs, (x, m, s), g)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_scalar_layer_norm_passes_gradcheck() -> None:
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    m = torch.randn(1, dtype=torch.float64, requires_grad=True)
    s = torch.randn(1, dtype=torch.float64, requires_grad=True)
    norm = ScalarLayerNorm().double()

    def run(x: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(norm, {"m": m, "s": s}, (x,))

    assert torch.autograd.gradcheck(run, (x, m, s))


def test_scalar_layer_norm_in_float32_is_the_definition_to_rounding() -> None:
    torch.manual_seed(0)
    x = 3 * torch.randn(4, 50, 64) + 1
    norm = ScalarLayerNorm()
    with torch.no_grad():
        norm.m.fill_(0.3)
        norm.s.fill_(1.7)
        err = (norm(x) - scalar_layer_norm_ref(x, norm.m, norm.s)).abs().max()
    assert err < 1e-5


def test_a_constant_input_gives_a_non_finite_output_as_in_the_reference() -> None:
    norm = ScalarLayerNorm()
    x = torch.ones(1, 2, 4)
    with torch.no_grad():
        norm.m.fill_(0.5)
        assert not torch.isfinite(scalar_layer_norm_ref(x, norm.m, norm.s)).any()
        assert not torch.isfinite(norm(x)).any()


def test_scalar_layer_norm_backward_takes_a_bf16_input_from_autocast() -> None:
    # the runner's bf16 training: the forward under autocast, the backward outside it
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16).bfloat16().requires_grad_()
    x_ref = x.detach().float().requires_grad_()
    norm = ScalarLayerNorm()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(x)
    g = torch.randn(y.shape, dtype=y.dtype)
    y.backward(g)
    scalar_layer_norm_ref(x_ref, norm.m.detach(), norm.s.detach()).backward(g)
    assert x.grad is not None
    assert x.grad.dtype == torch.bfloat16
    assert x_ref.grad is not None
    assert torch.allclose(x.grad.float(), x_ref.grad, rtol=0.02, atol=0.02)
