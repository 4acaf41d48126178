"""``S4Block``: an SSM convolution layer with skip term, GELU, dropout and a GLU output.

The layout is the reference implementation's S4 block (its ``S4Block`` around an
``FFTConv``): ``y = output(dropout(GELU(k * u + D u)))`` where ``output`` is a linear map to
``2 H`` followed by a GLU (``glu=True``, the reference's ``final_act: glu``) or a plain linear
map. ``forward`` convolves with the kernel by FFT (training); ``step`` runs the same map one
time step at a time (generation). Both produce the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as fn
from .protocol import Kernel, StepMode


class S4Block(nn.Module):
    """``y = GLU(Linear(dropout(GELU(k * u + D u))))`` over ``(batch, length, d_model)``.

    Parameters: ``D (1, H)`` (the reference's ``layer.D``), the kernel's, and
    ``output.weight`` / ``output.bias`` (its ``output_linear.0``).

    Args:
        d_model: ``H``, channels in and out.
        kernel: a kernel over ``H`` channels (:class:`~ssm_kernels.protocol.Kernel`: S4's, S4D's
            or a plugin's), with 2 output channels when ``bidirectional`` and 1 otherwise
            (``ssm_kernels.builders.build_block`` makes one).
        bidirectional: convolve with a causal kernel and a second, flipped one over the
            strict future. Such a layer has no recurrent mode.
        dropout: dropout probability after the activation.
        transposed: inputs and outputs are ``(batch, d_model, length)`` instead.
        glu: project to ``2 d_model`` and gate with a GLU (default) or project linearly.
    """

    def __init__(
        self,
        d_model: int,
        kernel: nn.Module,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        transposed: bool = False,
        glu: bool = True,
    ) -> None:
        super().__init__()
        want = 2 if bidirectional else 1
        H, channels = getattr(kernel, "H", None), getattr(kernel, "channels", None)
        if not isinstance(kernel, Kernel) or d_model != H or channels != want:
            raise ValueError(
                f"kernel must be a Kernel with H={d_model} and channels={want} "
                f"(bidirectional={bidirectional}); got a {type(kernel).__name__} with "
                f"H={H}, channels={channels}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.d_model, self.bidirectional, self.transposed = d_model, bidirectional, transposed
        self.kernel = kernel
        self.D = nn.Parameter(torch.randn(1, d_model))
        self.dropout = nn.Dropout(dropout)
        self.glu = glu
        self.output = nn.Linear(d_model, 2 * d_model if glu else d_model)
        self._kernels: dict[tuple[int, torch.dtype], Tensor] | None = None

    def _head(self, y: Tensor) -> Tensor:  # (..., H) -> (..., H)
        y = self.output(self.dropout(F.gelu(y)))
        return F.glu(y, dim=-1) if self.glu else y

    def forward(self, u: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Map ``u`` of shape ``(batch, L, H)`` (``(batch, H, L)`` if ``transposed``).

        Args:
            state: optional initial state (``default_state(batch)`` is zeros). Given one, the
                final state comes back too, so ``forward(x2, forward(x1, s)[1])`` equals the
                second part of ``forward(cat(x1, x2), s)``.

        Returns:
            ``(y, next_state)``; ``next_state`` is ``None`` when no state was passed.
        """
        if state is not None and self.bidirectional:
            raise ValueError("a bidirectional S4Block has no state: it looks at the future")
        x = u if self.transposed else u.transpose(-1, -2)  # (B, H, L)
        L = x.shape[-1]
        # The SSM maths stays in the parameters' precision under autocast (bf16 would ruin the
        # kernel, and FFTs do not take it); the position-wise head below may use it.
        with torch.autocast(x.device.type, enabled=False):
            xs = x.to(self.D.dtype)
            cached = self._kernels is not None and state is None
            key = (L, xs.dtype)
            if cached and key in self._kernels:  # type: ignore[operator]
                k, k_state = self._kernels[key], None  # type: ignore[index]
            else:
                k, k_state = self.kernel(L, state=state)
                if cached:
                    self._kernels[key] = k  # type: ignore[index]
            kernel = k if self.bidirectional else k[0]
            y = fn.fft_conv(xs, kernel, bidirectional=self.bidirectional)
            y = y + self.D[0].unsqueeze(-1) * xs
            if k_state is not None:
                y = y + k_state[:, 0]
            next_state = self.kernel.forward_state(xs, state) if state is not None else None
        # Contiguous before the activation: GELU's backward on a transposed view with a
        # contiguous gradient runs 6x slower than the copy costs.
        y = self._head(y.transpose(-1, -2).contiguous())
        return (y.transpose(-1, -2) if self.transposed else y), next_state

    def _no_recurrence(self) -> None:
        if self.bidirectional:
            raise ValueError(
                "a bidirectional S4Block has no recurrent mode (its output depends on the "
                "future); build it with bidirectional=False to step it"
            )

    def setup_step(self, mode: StepMode = "linear") -> None:
        """Prepare ``step`` (see ``SSMKernel.setup_step`` for the modes)."""
        self._no_recurrence()
        self.kernel.setup_step(mode)

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """The zero state for a batch of shape ``batch_shape``."""
        self._no_recurrence()
        state: Tensor = self.kernel.default_state(*batch_shape, device=device, dtype=dtype)
        return state

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One time step: ``u`` of shape ``(batch, H)`` -> ``(y (batch, H), next_state)``."""
        self._no_recurrence()
        y, state = self.kernel.step(u, state)
        return self._head(y[..., 0, :] + self.D[0] * u), state


class PairedS4Block(nn.Module):
    """The reference's first bidirectional S4 layer (its ``checkpoints`` branch, the code of
    the paper's released DiffWave + SaShiMi files): two kernels with their own step sizes,
    ``y = output(dropout(GELU([k_f * u + D u ; k_b (*) u + D u])))``, where ``k_f * u`` is the
    causal convolution, ``k_b (*) u`` the anti-causal one (``y_t = sum_s k_b[s] u_{t + s}``,
    the current sample included) and ``output`` a linear map from the ``2 H`` concatenated
    channels (forward first) to ``H``, with no GLU.

    Parameters: ``D (H,)``, ``forward_kernel.*``, ``backward_kernel.*`` (the reference's
    ``kernel.krylov``, ``kernel2.krylov``), ``output.weight (H, 2 H)``, ``output.bias``.
    The layer has no recurrent mode (it looks at the future).

    Args:
        d_model: ``H``.
        forward_kernel, backward_kernel: kernels over ``H`` channels with one output channel.
        dropout: dropout probability after the activation.
        transposed: inputs and outputs are ``(batch, d_model, length)``.
    """

    bidirectional = True

    def __init__(
        self,
        d_model: int,
        forward_kernel: nn.Module,
        backward_kernel: nn.Module,
        *,
        dropout: float = 0.0,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        for name, kernel in (("forward", forward_kernel), ("backward", backward_kernel)):
            H, channels = getattr(kernel, "H", None), getattr(kernel, "channels", None)
            if not isinstance(kernel, Kernel) or d_model != H or channels != 1:
                raise ValueError(
                    f"the {name} kernel must be a Kernel with H={d_model} and channels=1; got "
                    f"a {type(kernel).__name__} with H={H}, channels={channels}"
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.d_model, self.transposed = d_model, transposed
        self.forward_kernel, self.backward_kernel = forward_kernel, backward_kernel
        self.D = nn.Parameter(torch.randn(d_model))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * d_model, d_model)
        self._kernels: dict[tuple[int, torch.dtype], Tensor] | None = None

    def kernels(self, L: int) -> Tensor:
        """The forward and the backward kernel, ``(2, H, L)``."""
        key = (L, self.D.dtype)
        if self._kernels is not None and key in self._kernels:
            return self._kernels[key]
        k = torch.cat([self.forward_kernel(L)[0], self.backward_kernel(L)[0]])
        if self._kernels is not None:
            self._kernels[key] = k
        return k

    def forward(self, u: Tensor, state: Tensor | None = None) -> tuple[Tensor, None]:
        """Map ``u`` of shape ``(batch, L, H)`` (``(batch, H, L)`` if ``transposed``)."""
        if state is not None:
            raise ValueError("a PairedS4Block has no state: it looks at the future")
        x = u if self.transposed else u.transpose(-1, -2)  # (B, H, L)
        L = x.shape[-1]
        with torch.autocast(x.device.type, enabled=False):
            xs = x.to(self.D.dtype)
            k = self.kernels(L)
            skip = self.D.unsqueeze(-1) * xs
            forward = fn.fft_conv(xs, k[0]) + skip
            backward = fn.fft_conv(xs.flip(-1), k[1]).flip(-1) + skip
            y = torch.cat([forward, backward], dim=-2)  # (B, 2H, L)
        y = self.output(self.dropout(F.gelu(y.transpose(-1, -2).contiguous())))
        return (y.transpose(-1, -2) if self.transposed else y), None


@contextmanager
def cached_kernels(module: nn.Module) -> Iterator[None]:
    """Within the block, every :class:`S4Block` and :class:`PairedS4Block` of ``module``
    computes its convolution kernel once per length and reuses it: for repeated forward
    passes with fixed parameters (diffusion sampling runs the same network hundreds of
    times). Use under ``no_grad``."""
    blocks = [m for m in module.modules() if isinstance(m, S4Block | PairedS4Block)]
    for block in blocks:
        block._kernels = {}
    try:
        yield
    finally:
        for block in blocks:
            block._kernels = None
