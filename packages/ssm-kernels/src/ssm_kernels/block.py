"""``S4Block``: an SSM convolution layer with skip term, GELU, dropout and a GLU output.

The layout is the reference implementation's S4 block (its ``S4Block`` around an
``FFTConv``): ``y = output(dropout(GELU(k * u + D u)))`` where ``output`` is a linear map to
``2 H`` followed by a GLU (``glu=True``, the reference's ``final_act: glu``) or a plain linear
map. ``forward`` convolves with the kernel by FFT (training); ``step`` runs the same map one
time step at a time (generation). Both produce the same numbers.
"""

from __future__ import annotations

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
            k, k_state = self.kernel(L, state=state)
            kernel = k if self.bidirectional else k[0]
            y = fn.fft_conv(xs, kernel, bidirectional=self.bidirectional)
            y = y + self.D[0].unsqueeze(-1) * xs
            if k_state is not None:
                y = y + k_state[:, 0]
            next_state = self.kernel.forward_state(xs, state) if state is not None else None
        y = self._head(y.transpose(-1, -2))
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
