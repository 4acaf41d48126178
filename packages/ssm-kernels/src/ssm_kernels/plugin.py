"""The ``sashimi-ssm-kernels`` plugin, loaded through its ``audio_run`` entry point.

It registers the ``s4`` (alias ``dplr``) and ``s4d`` (alias ``diag``) kernels. Only the torch-free
config module is imported here; the builders load when a run builds a kernel. The records are
module constants so that configs can name them as defaults (``[model.kernel]`` of SaShiMi).
"""

from __future__ import annotations

from collections.abc import Iterator

from audio_core import KernelSpec, hookimpl

from .config import S4Config, S4DConfig

S4 = KernelSpec(
    name="s4",
    config_cls=S4Config,
    target="ssm_kernels.builders:build_kernel",
    summary="S4: HiPPO state matrix in normal-plus-low-rank form, Cauchy kernel",
    aliases=("dplr",),
)
S4D = KernelSpec(
    name="s4d",
    config_cls=S4DConfig,
    target="ssm_kernels.builders:build_kernel",
    summary="S4D: diagonal state matrix, Vandermonde kernel",
    aliases=("diag",),
)


@hookimpl
def register_kernels() -> Iterator[KernelSpec]:
    yield S4
    yield S4D
