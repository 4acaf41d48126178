"""Helpers for tests (here, in the integration session and in plugins): small models."""

from __future__ import annotations

from typing import Any

from audio_core.config import KernelChoice
from ssm_kernels.config import S4Config, S4DConfig
from ssm_kernels.plugin import S4, S4D

from .config import SaShiMiModelConfig


def kernel(name: str = "s4", **options: Any) -> KernelChoice:
    """A built-in kernel part, made by hand (``kernel("s4d", d_state=4)``)."""
    if name == "s4":
        return KernelChoice(name="s4", config=S4Config(**options), spec=S4)
    if name == "s4d":
        return KernelChoice(name="s4d", config=S4DConfig(**options), spec=S4D)
    raise ValueError(f"kernel must be s4 or s4d here; got {name!r}")


def sashimi_config(
    *, kernel_name: str = "s4", d_state: int = 8, **fields: Any
) -> SaShiMiModelConfig:
    """A ``SaShiMiModelConfig`` with the kernel given by name and state size."""
    return SaShiMiModelConfig(kernel=kernel(kernel_name, d_state=d_state), **fields)
