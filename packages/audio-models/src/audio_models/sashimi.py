"""SaShiMi: a multi-scale stack of S4 residual layers (Goel et al. 2022, arXiv 2202.09729).

Tiers run at lengths ``L``, ``L / p1``, ``L / (p1 p2)``, ... with widths ``d``, ``d e``,
``d e^2``, ...; each layer is an S4 residual block followed by a feed-forward residual block,
both pre-norm. Down-pooling folds ``p`` consecutive steps into one (reshape + linear);
up-pooling unfolds one step into ``p`` (linear + reshape) *one pooled step later*, so that a
fine-scale output never sees the coarse summary of a frame it belongs to. With ``unet=False``
(the paper's model) only the way up carries layers; each tier's input is added back to the
up-pooled output (skip connection).

Recurrent mode steps every tier at its own rate: the outer tier at each sample, the next one
each ``p1`` samples (when a down-pool frame is complete), and so on. All buffers are
fixed-shape tensors updated in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssm_kernels import S4Block, S4Config, S4DConfig, build_block


class FeedForward(nn.Module):
    """Position-wise ``Linear(d, ff d) -> GELU -> dropout -> Linear(ff d, d)``."""

    def __init__(self, d_model: int, *, ff: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, ff * d_model)
        self.dropout = nn.Dropout(dropout)
        self.down = nn.Linear(ff * d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.down(self.dropout(F.gelu(self.up(x))))
        return out


class ResidualLayer(nn.Module):
    """``x + S4(LN(x))`` then ``x + FF(LN(x))``."""

    def __init__(self, d_model: int, s4: S4Block, *, ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.s4 = nn.LayerNorm(d_model), s4
        self.state_index = 0  # set by SaShiMi: this layer's slot in SaShiMiState.s4
        self.norm2, self.ff = nn.LayerNorm(d_model), FeedForward(d_model, ff=ff, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.s4(self.norm1(x))[0]
        out: Tensor = x + self.ff(self.norm2(x))
        return out

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        y, next_state = self.s4.step(self.norm1(x), state)
        x = x + y
        return x + self.ff(self.norm2(x)), next_state


class DownPool(nn.Module):
    """``(B, L, d) -> (B, L / p, e d)``: fold ``p`` steps, then a linear map."""

    def __init__(self, d_model: int, *, expand: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.linear = nn.Linear(d_model * pool, d_model * expand)

    def forward(self, x: Tensor) -> Tensor:
        B, L, d = x.shape
        return self.linear(x.reshape(B, L // self.pool, self.pool * d))  # type: ignore[no-any-return]


class UpPool(nn.Module):
    """``(B, L / p, e d) -> (B, L, d)``: a linear map, unfold into ``p`` steps, and delay by one
    pooled step (zeros first), which keeps the model causal."""

    def __init__(self, d_model: int, *, expand: int, pool: int) -> None:
        super().__init__()
        self.pool, self.d_model = pool, d_model
        self.linear = nn.Linear(d_model * expand, d_model * pool)

    def forward(self, x: Tensor) -> Tensor:
        y = F.pad(self.linear(x)[:, :-1], (0, 0, 1, 0))  # delay by one pooled step
        B, frames, _ = y.shape
        return y.reshape(B, frames * self.pool, self.d_model)

    def frame(self, x: Tensor) -> Tensor:
        """One pooled step ``(B, e d)`` -> the ``(B, p, d)`` outputs of the next ``p`` steps."""
        return self.linear(x).reshape(x.shape[0], self.pool, self.d_model)  # type: ignore[no-any-return]


@dataclass
class SaShiMiState:
    """Recurrent state of :class:`SaShiMi`; every tensor keeps its shape for the whole run.

    Attributes:
        t: samples consumed so far.
        s4: one state per S4 block, in module order.
        down: per pooling step, the ``(B, p, d)`` inputs of the frame being filled.
        up: per pooling step, the ``(B, p, d)`` up-pooled outputs for the current frame.
    """

    t: int
    s4: list[Tensor]
    down: list[Tensor]
    up: list[Tensor]


class SaShiMi(nn.Module):
    """The backbone: ``(batch, length, d_model) -> (batch, length, d_model)``.

    Args:
        d_model, n_layers, pool, expand, ff, glu, bidirectional, unet, dropout: see
            :class:`audio_models.config.SaShiMiConfig`.
        kernel: the S4 kernel config every block uses.
        l_max: training length in samples; tier ``i`` parametrises its kernels at
            ``ceil(l_max / (p1 ... pi))``.

    Lengths that are not a multiple of the pooling product are padded at the end and cropped.
    """

    def __init__(
        self,
        d_model: int = 64,
        *,
        n_layers: int = 8,
        pool: tuple[int, ...] = (4, 4),
        expand: int = 2,
        ff: int = 2,
        glu: bool = True,
        bidirectional: bool = False,
        unet: bool = False,
        dropout: float = 0.0,
        kernel: S4Config | S4DConfig | None = None,
        l_max: int = 16000,
    ) -> None:
        super().__init__()
        kernel = kernel if kernel is not None else S4Config()
        self.d_model, self.pool, self.bidirectional = d_model, tuple(pool), bidirectional
        self.pool_product = 1
        for p in self.pool:
            self.pool_product *= p

        def layers(width: int, length: int) -> nn.ModuleList:
            return nn.ModuleList(
                ResidualLayer(
                    width,
                    build_block(
                        kernel,
                        d_model=width,
                        l_max=max(1, length),
                        bidirectional=bidirectional,
                        dropout=dropout,
                        glu=glu,
                    ),
                    ff=ff,
                    dropout=dropout,
                )
                for _ in range(n_layers)
            )

        self.down_layers, self.down_pools = nn.ModuleList(), nn.ModuleList()
        self.up_layers, self.up_pools = nn.ModuleList(), nn.ModuleList()
        width, length = d_model, l_max
        self.widths: list[int] = []
        for p in self.pool:
            self.widths.append(width)
            self.down_layers.append(layers(width, length) if unet else nn.ModuleList())
            self.down_pools.append(DownPool(width, expand=expand, pool=p))
            self.up_pools.append(UpPool(width, expand=expand, pool=p))
            self.up_layers.append(layers(width, length))
            width, length = width * expand, -(-length // p)
        self.center = layers(width, length)
        self.norm = nn.LayerNorm(d_model)
        for i, layer in enumerate(self._s4_layers()):
            layer.state_index = i  # where its state lives in SaShiMiState.s4

    # -- convolutional mode ----------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        L = x.shape[1]
        pad = -L % self.pool_product
        h = F.pad(x, (0, 0, 0, pad))
        skips = []
        for i in range(len(self.pool)):
            for layer in self._layers(self.down_layers[i]):
                h = layer(h)
            skips.append(h)
            h = self.down_pools[i](h)
        for layer in self._layers(self.center):
            h = layer(h)
        for i in reversed(range(len(self.pool))):
            h = self.up_pools[i](h) + skips[i]
            for layer in self._layers(self.up_layers[i]):
                h = layer(h)
        return self.norm(h[:, :L])  # type: ignore[no-any-return]

    @staticmethod
    def _layers(layers: nn.Module) -> list[ResidualLayer]:
        return [cast(ResidualLayer, layer) for layer in cast(nn.ModuleList, layers)]

    # -- recurrent mode --------------------------------------------------------------------
    def _s4_layers(self) -> list[ResidualLayer]:
        return [m for m in self.modules() if isinstance(m, ResidualLayer)]

    def setup_step(self, mode: str = "linear") -> None:
        """Prepare every S4 block's recurrence (``dense``, ``diagonal`` or ``linear``)."""
        if self.bidirectional:
            raise ValueError(
                "a bidirectional SaShiMi has no recurrent mode (it looks at the future); "
                "build it with bidirectional=False to generate"
            )
        for layer in self._s4_layers():
            layer.s4.setup_step(mode)  # type: ignore[arg-type]

    def default_state(self, batch: int, *, device: torch.device | None = None) -> SaShiMiState:
        if self.bidirectional:
            raise ValueError("a bidirectional SaShiMi has no recurrent state")
        dtype = self.norm.weight.dtype
        device = device if device is not None else self.norm.weight.device
        return SaShiMiState(
            t=0,
            s4=[layer.s4.default_state(batch, device=device) for layer in self._s4_layers()],
            down=[
                torch.zeros(batch, p, w, device=device, dtype=dtype)
                for p, w in zip(self.pool, self.widths, strict=True)
            ],
            up=[
                torch.zeros(batch, p, w, device=device, dtype=dtype)
                for p, w in zip(self.pool, self.widths, strict=True)
            ],
        )

    def step(self, x: Tensor, state: SaShiMiState) -> tuple[Tensor, SaShiMiState]:
        """One sample: ``x (batch, d_model)`` -> ``(batch, d_model)``; ``state`` is updated in
        place and returned."""

        def run(layers: nn.Module, h: Tensor) -> Tensor:
            for layer in self._layers(layers):
                i = layer.state_index
                h, new = layer.step(h, state.s4[i])
                state.s4[i].copy_(new)
            return h

        def tier(i: int, h: Tensor, t: int) -> Tensor:
            if i == len(self.pool):
                return run(self.center, h)
            p = self.pool[i]
            h = run(self.down_layers[i], h)
            out = state.up[i][:, t % p] + h
            state.down[i][:, t % p] = h
            if t % p == p - 1:  # a frame is complete: the coarser tier takes one step
                frame = state.down[i].reshape(h.shape[0], -1)
                down = cast(DownPool, self.down_pools[i])
                inner = tier(i + 1, down.linear(frame), t // p)
                state.up[i].copy_(cast(UpPool, self.up_pools[i]).frame(inner))
            return run(self.up_layers[i], out)

        y = self.norm(tier(0, x, state.t))
        state.t += 1
        return y, state
