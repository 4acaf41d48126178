"""The typed protocols of recurrent mode, shared by every layer and backbone that has one.

``Recurrent`` is what generation needs from a layer or a backbone: prepare the recurrence,
make the state before the first step, and step. A layer's state is a typed record (or one
tensor for a leaf layer such as :class:`~ssm_kernels.S4Block`); it keeps its shapes for a
whole run, so a generation state can be copied (``copy.deepcopy``) and resumed.

``Kernel`` is what :class:`~ssm_kernels.S4Block` needs from a convolution kernel: S4's and
S4D's kernels implement it, and so can a kernel registered by a plugin.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypeVar, get_args, runtime_checkable

import torch
from torch import Tensor

#: S4's step modes: ``dense`` (the discretised ``N x N`` transition), ``diagonal`` (its
#: eigendecomposition) and ``linear`` (the DPLR structure, ``O(N r)`` per step). Layers whose
#: recurrence has one form accept every mode.
StepMode = Literal["dense", "diagonal", "linear"]
STEP_MODES: tuple[StepMode, ...] = get_args(StepMode)

StateT = TypeVar("StateT")


@runtime_checkable
class Recurrent(Protocol[StateT]):
    """A sequence map with an exactly equivalent step-by-step mode.

    After ``setup_step(mode)``, calling ``step`` on each time step from ``default_state``
    yields the outputs of the convolutional (whole-sequence) forward pass.
    """

    def setup_step(self, mode: StepMode = "linear") -> None:
        """Prepare the recurrence; call again after the parameters change."""
        ...

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> StateT:
        """The state before the first step, for a batch of shape ``batch_shape``."""
        ...

    def step(self, x: Tensor, state: StateT) -> tuple[Tensor, StateT]:
        """One time step: ``x (batch, d)`` -> ``(y, next_state)``."""
        ...


@runtime_checkable
class Kernel(Protocol):
    """A state-space convolution kernel over ``H`` channels with ``channels`` outputs.

    Attributes:
        H: the number of input channels. channels: output channels (2 when bidirectional).
    """

    H: int
    channels: int

    def __call__(
        self, L: int, state: Tensor | None = None, rate: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """The ``(channels, H, L)`` kernel and, given an initial state ``(batch, H, ...)``,
        what that state adds to each output, ``(batch, channels, H, L)``."""
        ...

    def forward_state(self, u: Tensor, state: Tensor) -> Tensor:
        """The state after the input ``u (batch, H, L)`` starting from ``state``."""
        ...

    def setup_step(self, mode: StepMode = "linear") -> None: ...

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor: ...

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``u (batch, H)`` -> ``y (batch, channels, H)`` and the next state."""
        ...
