"""The kernels are registered as records, and their configs validate and round-trip."""

from __future__ import annotations

import subprocess
import sys

import pytest

from audio_core import KernelSpec
from audio_core.manager import make_plugin_manager
from audio_core.registry import Registry
from audio_core.testing import check_spec
from ssm_kernels import S4Config, S4DConfig
from ssm_kernels.kernels import DiagKernel, DPLRKernel


def registry() -> Registry:
    return Registry.from_plugin_manager(make_plugin_manager(environ={}))


def test_s4_and_s4d_are_registered_with_their_aliases() -> None:
    kernels = registry().kernels
    assert set(kernels) >= {"s4", "s4d"}
    for name, alias, config_cls, built in [
        ("s4", "dplr", S4Config, DPLRKernel),
        ("s4d", "diag", S4DConfig, DiagKernel),
    ]:
        spec = registry().get("kernels", alias)
        assert isinstance(spec, KernelSpec)
        assert spec.name == name
        assert spec.config_cls is config_cls
        check_spec(spec)
        kernel = spec.load_target()(spec.config_cls(), d_model=4, l_max=16)
        assert isinstance(kernel, built)


def test_listing_the_kernels_imports_no_torch() -> None:
    code = (
        "import sys; from audio_core.manager import make_plugin_manager;"
        "from audio_core.registry import Registry;"
        "Registry.from_plugin_manager(make_plugin_manager(environ={}));"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: S4Config(d_state=7), "must be even"),
        (lambda: S4Config(init="legt"), "init 'legt' needs rank >= 2; got rank=1"),
        (lambda: S4Config(dt_min=0.5), r"dt_min \(0.5\) must not exceed dt_max \(0.1\)"),
        (lambda: S4DConfig(init="legs"), "'init' must be in"),
        (lambda: S4DConfig(discretization="euler"), "'discretization' must be in"),
    ],
)
def test_bad_configs_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]
