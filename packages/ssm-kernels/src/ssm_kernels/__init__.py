"""sashimi-ssm-kernels.

S4 (DPLR) and S4D (diagonal) state-space kernels: HiPPO initialisations, discretisation, the
convolutional mode used for training and the recurrent mode used for generation, exactly
equivalent.

Importing the package costs no torch; the modules that need it load on first use::

    from ssm_kernels import S4Block, DPLRKernel  # imports torch here
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import S4Config, S4DConfig

if TYPE_CHECKING:
    from .block import S4Block
    from .builders import build_block, build_kernel
    from .kernels import DiagKernel, DPLRKernel, SSMKernel
    from .protocol import Kernel, Recurrent, StepMode

_LAZY = {
    "S4Block": "block",
    "build_block": "builders",
    "build_kernel": "builders",
    "DiagKernel": "kernels",
    "DPLRKernel": "kernels",
    "SSMKernel": "kernels",
    "Kernel": "protocol",
    "Recurrent": "protocol",
    "StepMode": "protocol",
}

__all__ = [
    "DPLRKernel",
    "DiagKernel",
    "Kernel",
    "Recurrent",
    "S4Block",
    "S4Config",
    "S4DConfig",
    "SSMKernel",
    "StepMode",
    "build_block",
    "build_kernel",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
