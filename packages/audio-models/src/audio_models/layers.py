"""Small layers shared by the models: the reference implementation's norm, weight-normalised
linear maps, the feed-forward block and the pre-norm residual wrapper.

Each has the reference's parameter names (``m`` / ``s``, ``weight_g`` / ``weight_v``), so its
checkpoints map onto ours one to one.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormKind = Literal["scalar", "layer"]
NORMS: tuple[NormKind, ...] = get_args(NormKind)


class ScalarLayerNorm(nn.Module):
    """The reference's ``TransposedLN`` (``scalar=True``): normalise over channels with one
    learnt shift ``m`` and one learnt scale ``s`` for all of them.

    ``y = s / std(x) * (x - mean(x) + m)``, statistics over the last axis (biased variance),
    no epsilon (a constant input gives a non-finite output, as in the reference: ``inf`` there,
    ``nan`` here). Parameters ``m (1,)``
    and ``s (1,)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(1))
        self.s = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = _ScalarNorm.apply(x, self.m, self.s)  # type: ignore[no-untyped-call]
        return out


def scalar_layer_norm_ref(x: Tensor, m: Tensor, s: Tensor) -> Tensor:
    """:class:`ScalarLayerNorm` written as its definition (autograd through ``std_mean``): the
    slow twin the tests compare it with."""
    std, mean = torch.std_mean(x, dim=-1, unbiased=False, keepdim=True)
    out: Tensor = (s / std) * (x - mean + m)
    return out


class _ScalarNorm(torch.autograd.Function):
    """``s r (x - mu + m)`` over the last axis (``r = 1 / std``) with statistics from torch's
    fused layer norm and a backward of two row sums and two fused multiply-adds: autograd
    through ``std_mean`` took 5x longer on SaShiMi's activations."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, m: Tensor, s: Tensor) -> Tensor:
        normed, mean, rstd = torch.native_layer_norm(x, (x.shape[-1],), None, None, 0.0)
        ctx.save_for_backward(x, mean, rstd, m, s)
        return torch.addcmul(rstd * (s * m), normed, s)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # With a = s r, g1 = mean(g), g2 = mean(g x) per row and
        # beta = r (g2 - mu g1 + m g1): dx = a g - a r beta x + a (r beta mu - g1),
        # ds = H sum(beta), dm = H sum(a g1).
        x, mean, rstd, m, s = ctx.saved_tensors
        # Under autocast the input may be bf16 and the gradient float32: work in the wider one.
        work = torch.promote_types(grad.dtype, x.dtype)
        in_dtype, grad, x = x.dtype, grad.to(work), x.to(work)
        H = x.shape[-1]
        g1 = grad.mean(-1, keepdim=True)
        g2 = torch.linalg.vecdot(grad, x, dim=-1).unsqueeze(-1) / H
        a = s * rstd
        beta = rstd * (g2 - mean * g1 + m * g1)
        grad_x = torch.addcmul(
            torch.addcmul(a * (rstd * beta * mean - g1), x, -a * rstd * beta), grad, a
        )
        grad_s = (beta.sum() * H).reshape(s.shape)
        grad_m = ((a * g1).sum() * H).reshape(m.shape)
        return grad_x.to(in_dtype), grad_m, grad_s


def make_norm(kind: NormKind, d_model: int) -> nn.Module:
    """``scalar`` (:class:`ScalarLayerNorm`, the reference's audio models) or ``layer``
    (``nn.LayerNorm(d_model)``)."""
    if kind == "scalar":
        return ScalarLayerNorm()
    if kind == "layer":
        return nn.LayerNorm(d_model)
    raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {kind!r}")


class WeightNormLinear(nn.Module):
    """A linear map with weight normalisation (Salimans & Kingma 2016), as
    ``torch.nn.utils.weight_norm(nn.Linear(...))`` stores it: ``weight = weight_g *
    weight_v / ||weight_v||`` (norm of each output row). Parameters ``weight_g (out, 1)``,
    ``weight_v (out, in)``, ``bias (out,)``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        linear = nn.Linear(in_features, out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(linear.weight.detach().clone())
        self.weight_g = nn.Parameter(linear.weight.detach().norm(dim=1, keepdim=True))
        self.bias = nn.Parameter(linear.bias.detach().clone())

    @property
    def weight(self) -> Tensor:
        """The effective ``(out, in)`` weight."""
        weight: Tensor = self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True)
        return weight

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


def linear(in_features: int, out_features: int, *, weight_norm: bool) -> nn.Module:
    """``WeightNormLinear`` or ``nn.Linear``."""
    if weight_norm:
        return WeightNormLinear(in_features, out_features)
    return nn.Linear(in_features, out_features)


def effective_weight(module: nn.Module) -> tuple[Tensor, Tensor]:
    """``(weight (out, in), bias (out,))`` of an ``nn.Linear`` or :class:`WeightNormLinear`."""
    weight: Any = module.weight
    bias: Any = module.bias
    if bias is None:
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    return weight, bias


class FeedForward(nn.Module):
    """Position-wise ``Linear(d, ff d) -> GELU -> dropout -> Linear(ff d, d)`` (the reference's
    ``ffn`` layer: its ``ff.0.0`` is ``up``, its ``ff.2`` is ``down``)."""

    def __init__(self, d_model: int, *, ff: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, ff * d_model)
        self.dropout = nn.Dropout(dropout)
        self.down = nn.Linear(ff * d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.down(self.dropout(F.gelu(self.up(x))))
        return out


class Residual(nn.Module):
    """Pre-norm residual block ``x + layer(norm(x))`` (the reference's
    ``SequenceResidualBlock`` with ``prenorm: true``, ``residual: R``).

    ``layer`` is either position-wise (a :class:`FeedForward`) or a sequence layer with a
    recurrent mode (``step``; an S4 block, whose ``forward`` returns ``(y, state)``). ``step``
    runs one time step; for a position-wise layer the state is ``None``.
    """

    def __init__(self, layer: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.layer, self.norm = layer, norm
        self.recurrent = hasattr(layer, "step")
        self.state_index = 0  # set by the backbone: this layer's slot in its state record

    def forward(self, x: Tensor) -> Tensor:
        y = self.layer(self.norm(x))
        if isinstance(y, tuple):
            y = y[0]
        return x + y  # type: ignore[no-any-return]

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        if not self.recurrent:
            return x + self.layer(self.norm(x)), None
        y, state = self.layer.step(self.norm(x), state)  # type: ignore[operator]
        return x + y, state
