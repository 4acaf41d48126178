"""The step tables are made on the kernel's device: checked on fake CUDA tensors (no GPU
needed), where a tensor made on the CPU by mistake fails the first operation that mixes it
with the kernel's (as it would on a GPU)."""

from __future__ import annotations

from torch._subclasses.fake_tensor import FakeTensorMode

from ssm_kernels.kernels import DPLRKernel, _dplr_step_tables


def test_the_linear_step_tables_of_s4_are_made_on_the_kernels_device() -> None:
    kernel = DPLRKernel(d_model=4, d_state=8, l_max=16)
    with FakeTensorMode(allow_non_fake_inputs=True):
        fake = kernel.to("cuda")
        tables = _dplr_step_tables(fake, "linear")
        assert {t.device.type for t in tables.values()} == {"cuda"}
