"""sashimi-audio-models.

SaShiMi (the paper's model and its U-Net variant, any registered kernel), WaveNet and
SampleRNN as the reference implementation builds them (its checkpoints load key for key), a
language model over any registered backbone, exact-likelihood sampling with a fused C step on
the CPU, and the reference's experiments as presets.

Importing the package costs no torch; :func:`Sashimi` (the reference's standalone usage)
loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .standalone import Sashimi

__all__ = ["Sashimi"]


def __getattr__(name: str) -> Any:
    if name == "Sashimi":
        from .standalone import Sashimi

        return Sashimi
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
