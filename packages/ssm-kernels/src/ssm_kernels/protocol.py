"""The one recurrent-mode protocol every layer with a recurrent mode follows."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Recurrent(Protocol):
    """A sequence map with an exactly equivalent step-by-step mode.

    ``forward(u, state)`` runs a whole sequence; after ``setup_step(mode)``, ``step`` called
    on each time step from ``default_state(batch)`` yields the same outputs.
    """

    def forward(self, u: Tensor, state: Any = None) -> tuple[Tensor, Any]: ...
    def setup_step(self, mode: Any = ...) -> None: ...
    def default_state(self, *batch_shape: int, device: torch.device | None = None) -> Any: ...
    def step(self, u: Tensor, state: Any) -> tuple[Tensor, Any]: ...
