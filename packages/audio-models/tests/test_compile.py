"""The training forward traces as one graph: ``torch.compile(fullgraph=True)`` checked with
``backend="eager"`` (a graph break or a branch on a tensor's value fails it, no compiler
needed), and the traced loss and gradients equal the eager ones."""

from __future__ import annotations

import pytest
import torch

from audio_models.builders import build_sashimi
from audio_models.config import SaShiMiModelConfig
from audio_models.testing import kernel


@pytest.mark.parametrize("name", ["s4", "s4d"])
@pytest.mark.parametrize("unet", [False, True])
def test_the_sashimi_training_forward_traces_without_graph_breaks(name: str, unet: bool) -> None:
    torch.manual_seed(0)
    config = SaShiMiModelConfig(
        d_model=16, n_layers=1, pool=(2, 2), bits=4, l_max=64, unet=unet,
        kernel=kernel(name, d_state=8),
    )  # fmt: skip
    model = build_sashimi(config)
    x = torch.randint(0, 16, (2, 64), generator=torch.Generator().manual_seed(1))

    def loss(inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model.forward_inputs(inputs).logsumexp(-1).mean()
        return out

    torch._dynamo.reset()
    traced = torch.compile(loss, backend="eager", fullgraph=True)
    eager_loss = loss(x)
    eager_grads = torch.autograd.grad(eager_loss, list(model.parameters()))
    traced_loss = traced(x)
    traced_grads = torch.autograd.grad(traced_loss, list(model.parameters()))
    # Traced, S4's kernel is one opaque operator (ssm_kernels.opaque) running the eager code.
    assert float(traced_loss.detach()) == pytest.approx(float(eager_loss.detach()), rel=1e-5)
    for a, b in zip(eager_grads, traced_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-6)
