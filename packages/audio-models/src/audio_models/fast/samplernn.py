"""The ``compiled`` engine for SampleRNN: its step with every weight prepared once.

SampleRNN's eager step (:meth:`~audio_models.samplernn.SampleRNN.step`) recomputes each
weight-normalised weight on every call, tens of millions of values per sample at the SC09
size. This engine folds them once when generation starts: the effective weights of every
tier (input expansion, GRU, up-sampling), and, for the sample-level MLP, one table per input
tap holding the embedding times that tap's weights (so its first layer becomes ``f_0`` row
lookups). The step is then the same schedule as the eager one, with plain matrix products
in the model's precision: its logits equal the eager step's to float32 rounding (tested to
1e-4 of their RMS) and to 1e-9 for float64 models. It runs on any device.

:data:`COMPILED_SAMPLERNN` is the engine record the builders attach to SampleRNN; ``--engine
auto`` picks it everywhere (it is never slower than the eager step).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from audio_models.sampling import EngineSpec, EngineUnavailable, Stepper, StepperFactory


def _copy(x: Tensor | None) -> Tensor:
    assert x is not None  # SampleRNN's layers with biases always have them
    return x.detach().clone()


class _Tier:
    def __init__(self, tier: Any) -> None:
        self.n, self.f = tier.n_samples, tier.frame_size
        self.expand_w = tier.input_expand.weight[..., 0].detach().clone()  # (H, n)
        self.expand_b = _copy(tier.input_expand.bias)
        rnn = tier.rnn
        self.layers = [
            tuple(getattr(rnn, f"{name}_l{k}").detach().clone()
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for k in range(rnn.num_layers)
        ]  # fmt: skip
        weight = tier.upsampling.conv_t.weight.detach()  # (H in, H out, f)
        self.up_w = weight.permute(0, 2, 1).reshape(weight.shape[0], -1).clone()  # (in, f out)
        self.up_b = tier.upsampling.bias.detach().t().reshape(-1).clone()  # (f out)


class FoldedSampleRNN:
    """A SampleRNN's weights, folded for stepping (copied at construction).

    Raises:
        EngineUnavailable: the model is not a SampleRNN.
    """

    def __init__(self, model: Any) -> None:
        from audio_models.samplernn import SampleRNN

        if not isinstance(model, SampleRNN):
            raise EngineUnavailable(
                f"the compiled SampleRNN engine runs SampleRNNs, not {type(model).__name__}"
            )
        self.model = model
        with torch.no_grad():
            self.tiers = [_Tier(t) for t in model._tiers()]
            mlp = model.sample_level_mlp
            emb = mlp.embedding.weight.detach()  # (V, d_model)
            w_in = mlp.input.weight.detach()  # (H, d_model, f0)
            # table[j, token] = emb[token] @ w_in[:, :, j].T: tap j's contribution
            self.table = torch.einsum("vd,hdj->jvh", emb, w_in).contiguous()
            self.hidden_w = mlp.hidden.weight[..., 0].detach().t().contiguous()
            self.hidden_b = _copy(mlp.hidden.bias)
            self.out_w = mlp.output.weight[..., 0].detach().t().contiguous()
            self.out_b = _copy(mlp.output.bias)
        self.f0 = model.frame_sizes[0]
        self.taps = torch.arange(self.f0, device=emb.device)


def _gru(x: Tensor, h: Tensor, weights: tuple[Tensor, ...]) -> Tensor:
    w_ih, w_hh, b_ih, b_hh = weights
    out: Tensor = torch._VF.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
    return out


class FoldedSampleRNNStepper(Stepper):
    def __init__(self, folded: FoldedSampleRNN, batch: int, device: torch.device) -> None:
        self.c = folded
        self.state = folded.model.default_state(batch, device=device)
        self.hidden = [[h[k] for k in range(h.shape[0])] for h in self.state.rnn]
        self.cond = [c.reshape(batch, -1) for c in self.state.cond]  # (B, f H): position-major

    @torch.no_grad()
    def step(self, prev: Tensor) -> Tensor:
        c, s = self.c, self.state
        t = s.t
        s.history = torch.cat([s.history[:, 1:], prev.long().unsqueeze(1)], 1)
        H = c.hidden_b.shape[0]
        for i in reversed(range(len(c.tiers))):
            tier = c.tiers[i]
            if t % tier.n:
                continue
            real = c.model._real(s.history[:, -tier.n :])
            x = torch.addmm(tier.expand_b, real, tier.expand_w.t())
            if i + 1 < len(c.tiers):
                index = (t // tier.n) % c.tiers[i + 1].f
                x = x + self.cond[i + 1][:, index * H : (index + 1) * H]
            for k, weights in enumerate(tier.layers):
                x = self.hidden[i][k] = _gru(x, self.hidden[i][k], weights)
            self.cond[i] = torch.addmm(tier.up_b, x, tier.up_w)
        window = s.history[:, -c.f0 :]
        j = t % c.f0
        x = c.table[c.taps, window].sum(1) + self.cond[0][:, j * H : (j + 1) * H]
        x = F.relu(torch.addmm(c.hidden_b, F.relu(x), c.hidden_w))
        logits: Tensor = torch.addmm(c.out_b, x, c.out_w)
        s.t += 1
        return logits


def _prepare(model: Any, batch: int, device: torch.device) -> StepperFactory:
    folded = FoldedSampleRNN(model)
    return lambda size: FoldedSampleRNNStepper(folded, size, device)


def _auto(model: Any, batch: int, device: torch.device) -> str | None:
    return None


#: The engine record the builders attach to SampleRNN.
COMPILED_SAMPLERNN = EngineSpec(
    name="compiled", label="compiled (weights folded once)", prepare=_prepare, auto=_auto
)
