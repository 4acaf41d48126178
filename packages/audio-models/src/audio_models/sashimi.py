"""SaShiMi: a multi-scale stack of S4 residual layers (Goel et al. 2022, arXiv 2202.09729).

Tiers run at lengths ``L``, ``L / p1``, ``L / (p1 p2)``, ... with widths ``d``, ``d e``,
``d e^2``, ...; every layer is pre-norm residual (an S4 block or a feed-forward block).
Down-pooling folds ``p`` consecutive steps into one (reshape + linear); up-pooling unfolds
one step into ``p`` (linear + reshape) *one pooled step later*, so that a fine-scale output
never sees the coarse summary of a frame it belongs to. The module tree and the skip
connections are the reference implementation's, so its checkpoints map onto ours key for key:

- ``unet=False`` (the paper's SaShiMi, the reference's ``Sashimi``): ``d_layers`` holds only
  the weight-normalised down-pools; ``c_layers`` the centre's layers, whose input is added
  back to their output; ``u_layers[i]`` an up-pool followed by the tier's layers, with the
  tier's input added after the up-pool and the up-pool's sum added back after the layers.
- ``unet=True`` (the reference's ``SequenceUNet``): ``d_layers`` is flat, each tier's layers
  then a plain linear down-pool; ``u_layers`` is flat, an up-pool then the tier's layers; the
  input of every down layer is added to the output of its mirror image on the way up.

The S4 blocks come from a factory (``block(width, length)``), so any kernel a plugin
registers can be used; only :mod:`audio_models.builders` reads configs.

Recurrent mode steps every tier at its own rate: the outer tier at each sample, the next one
each ``p1`` samples (when a down-pool frame is complete), and so on. All buffers are
fixed-shape tensors updated in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import FeedForward, NormKind, Residual, linear, make_norm

#: Makes the sequence layer (an S4 block) of a tier: ``block(width, length)``, where
#: ``length`` is the tier's training length (S4 parametrises its kernel at it).
BlockFactory = Callable[[int, int], nn.Module]


def fold(x: Tensor, pool: int) -> Tensor:
    """``(B, L, d) -> (B, L / p, d p)`` with feature index ``h p + s`` (the reference's
    ``'... h (l s) -> ... (h s) l'``)."""
    B, L, d = x.shape
    return x.reshape(B, L // pool, pool, d).transpose(-1, -2).reshape(B, L // pool, d * pool)


def unfold(y: Tensor, pool: int) -> Tensor:
    """The inverse of :func:`fold`: ``(B, F, d p) -> (B, F p, d)``."""
    B, frames, dp = y.shape
    d = dp // pool
    return y.reshape(B, frames, d, pool).transpose(-1, -2).reshape(B, frames * pool, d)


class DownPool(nn.Module):
    """``(B, L, d) -> (B, L / p, e d)``: fold ``p`` steps, then a linear map (weight-normalised
    in the paper's SaShiMi, plain in its U-Net)."""

    def __init__(self, d_model: int, *, expand: int, pool: int, weight_norm: bool) -> None:
        super().__init__()
        self.pool = pool
        self.linear = linear(d_model * pool, d_model * expand, weight_norm=weight_norm)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.linear(fold(x, self.pool))
        return out


class UpPool(nn.Module):
    """``(B, L / p, e d) -> (B, L, d)``: a linear map, unfold into ``p`` steps, and (when
    ``causal``) delay by one pooled step, zeros first."""

    def __init__(
        self, d_model: int, *, expand: int, pool: int, weight_norm: bool, causal: bool = True
    ) -> None:
        super().__init__()
        self.pool, self.d_model, self.causal = pool, d_model, causal
        self.linear = linear(d_model * expand, d_model * pool, weight_norm=weight_norm)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        if self.causal:
            y = F.pad(y[:, :-1], (0, 0, 1, 0))  # delay by one pooled step
        return unfold(y, self.pool)

    def frame(self, x: Tensor) -> Tensor:
        """One pooled step ``(B, e d)`` -> the ``(B, p, d)`` outputs of the next ``p`` steps."""
        return unfold(self.linear(x).unsqueeze(1), self.pool)


@dataclass
class SaShiMiState:
    """Recurrent state of :class:`SaShiMi`; every tensor keeps its shape for the whole run.

    Attributes:
        t: samples consumed so far.
        layers: one state per recurrent residual layer, in module order (``None`` for none).
        down: per pooling step (outermost first), the ``(B, p, d)`` inputs of the frame being
            filled.
        up: per pooling step, the ``(B, p, d)`` up-pooled outputs for the current frame.
    """

    t: int
    layers: list[Any]
    down: list[Tensor]
    up: list[Tensor]


class SaShiMi(nn.Module):
    """The backbone: ``(batch, length, d_model) -> (batch, length, d_model)``.

    Args:
        d_model: width of the outermost tier.
        n_layers: residual S4 layers per tier (each followed by a feed-forward layer when
            ``ff > 0``).
        pool: pooling factor of each tier boundary, outermost first.
        expand: width multiplier at each pooling step.
        ff: expansion of the feed-forward layers (``0``: none).
        block: makes each tier's S4 blocks, ``block(width, length)``.
        norm: ``scalar`` (the reference's norm for its audio models) or ``layer``.
        unet: the U-Net topology (see the module notes).
        causal: delay the up-pools (``False`` only for non-causal uses such as diffusion,
            with bidirectional blocks).
        dropout: dropout inside the feed-forward layers.
        l_max: training length in samples; tier ``i`` is given ``ceil(l_max / (p1 ... pi))``.

    Lengths that are not a multiple of the pooling product are padded at the end and cropped.
    """

    def __init__(
        self,
        d_model: int = 64,
        *,
        n_layers: int = 8,
        pool: Sequence[int] = (4, 4),
        expand: int = 2,
        ff: int = 2,
        block: BlockFactory,
        norm: NormKind = "scalar",
        unet: bool = False,
        causal: bool = True,
        dropout: float = 0.0,
        l_max: int = 16000,
    ) -> None:
        super().__init__()
        self.d_model, self.d_output = d_model, d_model
        self.pool, self.unet, self.causal = tuple(pool), unet, causal
        self.pool_product = 1
        for p in self.pool:
            self.pool_product *= p

        def tier(width: int, length: int) -> list[nn.Module]:
            layers: list[nn.Module] = []
            for _ in range(n_layers):
                layers.append(Residual(block(width, max(1, length)), make_norm(norm, width)))
                if ff > 0:
                    ffn = FeedForward(width, ff=ff, dropout=dropout)
                    layers.append(Residual(ffn, make_norm(norm, width)))
            return layers

        width, length = d_model, l_max
        self.widths: list[int] = []
        d_layers: list[nn.Module] = []
        for p in self.pool:
            self.widths.append(width)
            if unet:
                d_layers.extend(tier(width, length))
            d_layers.append(DownPool(width, expand=expand, pool=p, weight_norm=not unet))
            width, length = width * expand, -(-length // p)
        self.d_layers = nn.ModuleList(d_layers)
        self.c_layers = nn.ModuleList(tier(width, length))
        u_layers: list[nn.Module] = []
        for p in reversed(self.pool):
            width, length = width // expand, length * p
            up = UpPool(width, expand=expand, pool=p, weight_norm=not unet, causal=causal)
            if unet:
                u_layers.extend([up, *tier(width, length)])
            else:
                u_layers.append(nn.ModuleList([up, *tier(width, length)]))
        self.u_layers = nn.ModuleList(u_layers)
        self.norm = nn.LayerNorm(d_model)
        self._tiers = self._plan()
        for i, layer in enumerate(self.residual_layers()):
            layer.state_index = i  # its slot in SaShiMiState.layers

    # -- structure ---------------------------------------------------------------------------
    def _plan(self) -> list[tuple[list[Residual], DownPool, UpPool, list[Residual]]]:
        """Per tier, outermost first: its down layers, down-pool, up-pool and up layers."""
        tiers = []
        down = list(self.d_layers)
        ups: list[nn.Module] = (
            list(self.u_layers)
            if self.unet
            else [m for block in self.u_layers for m in cast(nn.ModuleList, block)]
        )
        per = (len(ups) // len(self.pool)) if self.pool else 0
        for i in range(len(self.pool)):
            j = len(self.pool) - 1 - i  # the up path runs innermost first
            up_part = ups[j * per : (j + 1) * per]
            d_count = per - 1 if self.unet else 0
            d_part = down[i * (d_count + 1) : i * (d_count + 1) + d_count]
            pool = down[i * (d_count + 1) + d_count]
            tiers.append(
                (
                    [cast(Residual, m) for m in d_part],
                    cast(DownPool, pool),
                    cast(UpPool, up_part[0]),
                    [cast(Residual, m) for m in up_part[1:]],
                )
            )
        return tiers

    def residual_layers(self) -> list[Residual]:
        """Every residual layer, in module order (the order of ``SaShiMiState.layers``)."""
        return [m for m in self.modules() if isinstance(m, Residual)]

    # -- convolutional mode ------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        L = x.shape[1]
        pad = -L % self.pool_product
        h = F.pad(x, (0, 0, 0, pad))
        h = self._unet(h) if self.unet else self._sashimi(h)
        out: Tensor = self.norm(h[:, :L])
        return out

    def _sashimi(self, x: Tensor) -> Tensor:
        outputs = [x]
        for pool in self.d_layers:
            x = pool(x)
            outputs.append(x)
        x = self._run(self.c_layers, x) + outputs.pop()
        for block in self.u_layers:
            up, *layers = cast(nn.ModuleList, block)
            x = up(x) + outputs.pop()
            x = self._run(layers, x) + x
        return x

    def _unet(self, x: Tensor) -> Tensor:
        outputs = []
        for layer in self.d_layers:
            outputs.append(x)
            x = layer(x)
        x = self._run(self.c_layers, x) + x
        for layer in self.u_layers:
            x = layer(x) + outputs.pop()
        return x

    @staticmethod
    def _run(layers: Iterable[nn.Module], x: Tensor) -> Tensor:
        for layer in layers:
            x = layer(x)
        return x

    # -- recurrent mode ----------------------------------------------------------------------
    def setup_step(self, mode: Any = "linear") -> None:
        """Prepare every S4 block's recurrence (``dense``, ``diagonal`` or ``linear``)."""
        if not self.causal:
            raise ValueError(
                "a non-causal SaShiMi has no recurrent mode (it looks at the future); "
                "build it with causal=True and unidirectional blocks to generate"
            )
        for layer in self.residual_layers():
            if layer.recurrent:
                layer.layer.setup_step(mode)  # type: ignore[operator]

    def setup_rnn(self, mode: Any = "linear") -> None:
        """:meth:`setup_step` under the reference's name (``setup_rnn('diagonal')`` too)."""
        self.setup_step(mode)

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> SaShiMiState:
        if not self.causal:
            raise ValueError("a non-causal SaShiMi has no recurrent state")
        dtype = dtype if dtype is not None else self.norm.weight.dtype
        device = device if device is not None else self.norm.weight.device
        layers = [
            layer.layer.default_state(*batch_shape, device=device, dtype=dtype)  # type: ignore[operator]
            if layer.recurrent
            else None
            for layer in self.residual_layers()
        ]
        shapes = list(zip(self.pool, self.widths, strict=True))  # one (B, p, d) buffer each
        return SaShiMiState(
            t=0,
            layers=layers,
            down=[torch.zeros(*batch_shape, p, w, device=device, dtype=dtype) for p, w in shapes],
            up=[torch.zeros(*batch_shape, p, w, device=device, dtype=dtype) for p, w in shapes],
        )

    def step(self, x: Tensor, state: SaShiMiState) -> tuple[Tensor, SaShiMiState]:
        """One sample: ``x (batch, d_model)`` -> ``(batch, d_model)``; ``state`` is updated in
        place and returned."""

        def run(layers: Iterable[nn.Module], h: Tensor) -> Tensor:
            for layer in layers:
                h = _step_layer(cast(Residual, layer), h, state)
            return h

        def tier(i: int, h: Tensor, t: int) -> Tensor:
            if i == len(self.pool):
                return run(self.c_layers, h) + h
            downs, pool, up, ups = self._tiers[i]
            p = pool.pool
            skips = [h]
            for layer in downs:
                h = _step_layer(layer, h, state)
                skips.append(h)
            s = state.up[i][..., t % p, :] + skips.pop()
            if self.unet:
                out = s
                for layer in ups:
                    out = _step_layer(layer, out, state) + skips.pop()
            else:
                out = run(ups, s) + s
            state.down[i][..., t % p, :] = h
            if t % p == p - 1:  # a frame is complete: the coarser tier takes one step
                inner = tier(i + 1, pool(state.down[i])[:, 0], t // p)
                state.up[i].copy_(up.frame(inner))
            return out

        y: Tensor = self.norm(tier(0, x, state.t))
        state.t += 1
        return y, state


def _step_layer(layer: Residual, h: Tensor, state: SaShiMiState) -> Tensor:
    i = layer.state_index
    h, new = layer.step(h, state.layers[i])
    if new is not None:
        state.layers[i].copy_(new)
    return h
