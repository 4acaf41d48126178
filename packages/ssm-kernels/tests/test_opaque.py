"""S4's kernel as an opaque operator under ``torch.compile``: the same kernel and gradients as
eager code, for every S4 configuration, through the AOT autograd path that TorchInductor
uses (``backend="aot_eager"``: the same graphs, no code generation)."""

from __future__ import annotations

import pytest
import torch

from ssm_kernels import S4Config, build_kernel, opaque
from ssm_kernels.kernels import DPLRKernel

CONFIGS = {  # (config, output channels)
    "legs": (S4Config(d_state=8), 1),
    "legt-rank2": (S4Config(d_state=8, init="legt", rank=2), 1),
    "fout-n_ssm2": (S4Config(d_state=8, init="fout", n_ssm=2), 1),
    "separate-q-exp-dt": (S4Config(d_state=8, separate_q=True, dt_transform="exp"), 1),
    "two-channels": (S4Config(d_state=8), 2),
}


def _kernel(name: str, dtype: torch.dtype) -> DPLRKernel:
    config, channels = CONFIGS[name]
    kernel = build_kernel(config, d_model=4, l_max=48, channels=channels).to(dtype)
    assert isinstance(kernel, DPLRKernel)
    with torch.no_grad():  # parameters away from their initial symmetries
        for p in kernel.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return kernel


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_compiled_kernel_and_its_gradients_equal_eager(name: str, dtype: torch.dtype) -> None:
    kernel = _kernel(name, dtype)
    weights = torch.randn(kernel.channels, kernel.H, 48, dtype=dtype)

    def loss(L: int) -> torch.Tensor:
        return (kernel(L)[0] * weights[..., :L]).sum()

    torch._dynamo.reset()
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    for L in (48, 40):  # the tuned length, and a shorter one (a truncation)
        params = list(kernel.parameters())
        want = torch.autograd.grad(loss(L), params)
        got = torch.autograd.grad(compiled(L), params)
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        for a, b in zip(want, got, strict=True):
            assert float((a - b).abs().max()) <= tol * max(1.0, float(a.abs().max()))
        with torch.no_grad():
            assert torch.allclose(compiled(L), loss(L), rtol=tol, atol=0)


def test_the_graph_holds_one_kernel_operator_and_no_complex_tensor() -> None:
    """What TorchInductor is handed: the operator as a black box, nothing complex around it
    (torch 2.11's Triton code generation fails on complex buffers)."""
    kernel = _kernel("legt-rank2", torch.float32)
    graphs = []

    def backend(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(lambda: kernel(48)[0], backend=backend, fullgraph=True)()
    (gm,) = graphs
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert [n.target for n in calls] == [torch.ops.ssm_kernels.dplr_kernel.default]
    for node in gm.graph.nodes:
        value = node.meta.get("example_value")
        assert not (isinstance(value, torch.Tensor) and value.is_complex()), node


def test_the_operator_passes_torch_library_checks() -> None:
    kernel = _kernel("legs", torch.float64)
    params = [p.detach().requires_grad_(True) for p in kernel.parameters()]
    torch.library.opcheck(opaque.dplr_kernel, (opaque.spec(kernel), 48, params))


def test_eager_code_does_not_go_through_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the operator ran outside torch.compile")

    monkeypatch.setattr(opaque, "dplr_kernel", refuse)
    kernel = _kernel("legs", torch.float32)
    assert kernel(48)[0].shape == (1, 4, 48)
