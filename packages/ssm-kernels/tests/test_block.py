"""S4Block: recurrent == convolutional for every step mode, state forwarding, causality."""

from __future__ import annotations

import copy

import pytest
import torch

from ssm_kernels import S4Block, S4Config, S4DConfig, build_block, build_kernel
from ssm_kernels.block import PairedS4Block
from ssm_kernels.kernels import STEP_MODES, StepMode

CONFIGS = [
    S4Config(d_state=8),
    S4Config(d_state=8, init="legt", rank=2),
    S4Config(d_state=8, init="fout"),
    S4DConfig(d_state=8),
    S4DConfig(d_state=8, init="diag-legs", discretization="bilinear"),
]
IDS = [f"{type(c).__name__}-{c.init}" for c in CONFIGS]
L = 512


def rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Max absolute error relative to the RMS of ``expected``."""
    return float((actual - expected).abs().max() / expected.square().mean().sqrt())


def stepped(block: S4Block, u: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    ys = []
    for t in range(u.shape[1]):
        y, state = block.step(u[:, t], state)
        ys.append(y)
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("mode", STEP_MODES)
def test_recurrence_reproduces_the_convolution_in_float64(
    config: S4Config | S4DConfig, mode: StepMode
) -> None:
    block = build_block(config, d_model=4, l_max=L).double()
    u = torch.randn(2, L, 4, dtype=torch.float64)
    y, _ = block(u)
    block.setup_step(mode)
    assert (stepped(block, u, block.default_state(2)) - y).abs().max().item() <= 1e-8


# fout's modes have almost no decay (1e-4); in float32 its kernel reaches ~1e-4 relative error
# at L = 512, the contract's limit, so the float32 check uses the well-conditioned inits.
@pytest.mark.parametrize(
    "config", [CONFIGS[0], CONFIGS[1], CONFIGS[3], CONFIGS[4]], ids=IDS[:2] + IDS[3:]
)
@pytest.mark.parametrize("mode", STEP_MODES)
def test_recurrence_reproduces_the_convolution_in_float32(
    config: S4Config | S4DConfig, mode: StepMode
) -> None:
    block = build_block(config, d_model=4, l_max=L)
    u = torch.randn(2, L, 4)
    with torch.no_grad():
        y, _ = block(u)
        block.setup_step(mode)
        assert rel_rms(stepped(block, u, block.default_state(2)), y) <= 1e-4


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("mode", [None, *STEP_MODES])
def test_forwarding_the_state_equals_one_pass(
    config: S4Config | S4DConfig, mode: StepMode | None
) -> None:
    block = build_block(config, d_model=4, l_max=L).double()
    if mode is not None:
        block.setup_step(mode)
    x = torch.randn(2, 300, 4, dtype=torch.float64)
    start = block.default_state(2)
    with torch.no_grad():  # a random start state, in the mode's own layout
        start = block.kernel.forward_state(torch.randn(2, 4, 50, dtype=torch.float64), start)
    whole, end = block(x, start)
    first, mid = block(x[:, :120], start)
    second, end2 = block(x[:, 120:], mid)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-9)
    assert end is not None
    assert end2 is not None
    assert torch.allclose(end2, end, atol=1e-8)
    if mode is not None:  # and stepping on from the forwarded state continues the same sequence
        assert torch.allclose(stepped(block, x[:, 120:], mid), second, atol=1e-8)


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[3]], ids=[IDS[0], IDS[3]])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_depend_only_on_the_past_unless_bidirectional(
    config: S4Config | S4DConfig, bidirectional: bool
) -> None:
    block = build_block(config, d_model=4, l_max=64, bidirectional=bidirectional).double()
    u = torch.randn(1, 64, 4, dtype=torch.float64, requires_grad=True)
    y, _ = block(u)
    (grad,) = torch.autograd.grad(y[0, 30].sum(), u)
    future = grad[0, 31:].abs().max().item()
    past = grad[0, :31].abs().max().item()
    assert past > 1e-3
    if bidirectional:
        assert future > 1e-3 * past
    else:  # zero up to the FFT's rounding
        assert future <= 1e-12 * past


def test_a_bidirectional_block_refuses_to_step() -> None:
    block = build_block(S4Config(d_state=4), d_model=4, l_max=16, bidirectional=True)
    message = "a bidirectional S4Block has no recurrent mode"
    for call in (lambda: block.setup_step("dense"), lambda: block.default_state(1)):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match="a bidirectional S4Block has no state"):
        block(torch.zeros(1, 16, 4), torch.zeros(1, 4, 2, dtype=torch.complex64))


def test_transposed_layout_is_the_same_map() -> None:
    block = build_block(S4DConfig(d_state=4), d_model=4, l_max=32).double()
    flipped = copy.deepcopy(block)
    flipped.transposed = True
    u = torch.randn(2, 32, 4, dtype=torch.float64)
    assert torch.allclose(flipped(u.transpose(1, 2))[0].transpose(1, 2), block(u)[0])


def test_without_glu_the_output_is_a_plain_projection() -> None:
    import torch.nn.functional as F

    block = build_block(S4DConfig(d_state=4), d_model=4, l_max=16, glu=False).double()
    assert block.output.weight.shape == (4, 4)
    u = torch.randn(1, 16, 4, dtype=torch.float64)
    k, _ = block.kernel(16)
    from ssm_kernels.functional import fft_conv

    x = u.transpose(1, 2)
    inner = (fft_conv(x, k[0]) + block.D.unsqueeze(-1) * x).transpose(1, 2)
    assert torch.allclose(block(u)[0], block.output(F.gelu(inner)))


@pytest.mark.parametrize("config", [S4Config(d_state=4), S4DConfig(d_state=4)])
def test_bf16_autocast_keeps_the_ssm_in_float32(config: S4Config | S4DConfig) -> None:
    block = build_block(config, d_model=8, l_max=64)
    u = torch.randn(2, 64, 8)
    reference, _ = block(u)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = block(u)
    assert y.dtype == torch.bfloat16  # the output projection ran in bf16
    assert torch.allclose(y.float(), reference, atol=0.05)  # bf16 rounding only


def test_batch_elements_are_independent() -> None:
    block = build_block(S4Config(d_state=4), d_model=4, l_max=32).double()
    u = torch.randn(3, 32, 4, dtype=torch.float64)
    together, _ = block(u)
    alone = torch.cat([block(u[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-12)


@pytest.mark.parametrize("config", [S4Config(d_state=4), S4DConfig(d_state=4)])
def test_gradcheck_through_inputs_and_parameters(config: S4Config | S4DConfig) -> None:
    block = build_block(config, d_model=2, l_max=6).double()
    params = dict(block.named_parameters())
    u = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)

    def run(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(block, dict(zip(params, values, strict=True)), (x,))
        return out[0]

    inputs = (u, *(p.detach().clone().requires_grad_() for p in params.values()))
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", STEP_MODES)
def test_recurrence_follows_a_separate_left_factor(mode: StepMode) -> None:
    block = build_block(S4Config(d_state=8, separate_q=True), d_model=4, l_max=L).double()
    with torch.no_grad():
        block.kernel.Q.add_(0.3 * torch.randn_like(block.kernel.Q))
    u = torch.randn(2, L, 4, dtype=torch.float64)
    y, _ = block(u)
    block.setup_step(mode)
    assert (stepped(block, u, block.default_state(2)) - y).abs().max().item() <= 1e-8


def paired(H: int = 3, L: int = 24) -> PairedS4Block:
    kernels = [build_kernel(S4Config(d_state=8), d_model=H, l_max=L) for _ in range(2)]
    return PairedS4Block(H, *kernels).double()


def test_paired_block_is_its_documented_sum() -> None:
    import torch.nn.functional as F

    H, n = 3, 24
    block = paired(H, n)
    u = torch.randn(2, n, H, dtype=torch.float64)
    kf, kb = block.forward_kernel(n)[0][0], block.backward_kernel(n)[0][0]
    x = u.transpose(1, 2)  # (B, H, L)
    forward = torch.zeros_like(x)
    backward = torch.zeros_like(x)
    for t in range(n):
        for s in range(t + 1):
            forward[..., t] += kf[:, s] * x[..., t - s]
        for s in range(n - t):
            backward[..., t] += kb[:, s] * x[..., t + s]
    skip = block.D.unsqueeze(-1) * x
    both = torch.cat([forward + skip, backward + skip], dim=1).transpose(1, 2)  # forward first
    expected = F.linear(F.gelu(both), block.output.weight, block.output.bias)
    assert block.output.weight.shape == (H, 2 * H)
    assert (block(u)[0] - expected).abs().max().item() <= 1e-10
    transposed = copy.deepcopy(block)
    transposed.transposed = True
    assert torch.allclose(transposed(x)[0].transpose(1, 2), block(u)[0], atol=1e-12)


def test_paired_kernels_are_cached_and_refuse_state() -> None:
    from ssm_kernels.block import cached_kernels

    block = paired()
    u = torch.randn(1, 24, 3, dtype=torch.float64)
    with torch.no_grad():
        plain = block(u)[0]
        with cached_kernels(block):
            assert torch.equal(block(u)[0], plain)
            assert block._kernels is not None
            assert len(block._kernels) == 1
            assert torch.equal(block(u)[0], plain)
    assert block._kernels is None
    with pytest.raises(ValueError, match="a PairedS4Block has no state"):
        block(u, torch.zeros(1))
    two = build_kernel(S4Config(d_state=8), d_model=3, l_max=8, channels=2)
    one = build_kernel(S4Config(d_state=8), d_model=3, l_max=8)
    with pytest.raises(ValueError, match="the backward kernel must be a Kernel with H=3 and"):
        PairedS4Block(3, one, two)


def test_kernel_channels_must_match_the_direction() -> None:
    from ssm_kernels import build_kernel

    kernel = build_kernel(S4DConfig(d_state=4), d_model=4, l_max=8)
    with pytest.raises(ValueError, match=r"kernel must be a Kernel with H=4 and channels=2"):
        S4Block(4, kernel, bidirectional=True)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\); got 1.5"):
        S4Block(4, kernel, dropout=1.5)
