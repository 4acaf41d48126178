"""Optimizer hints become parameter groups, without torch (duck-typed modules)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from audio_core.optim import HasOptimHints, OptimHint, collect_hints, param_groups


class Param:
    def __init__(self, requires_grad: bool = True) -> None:
        self.requires_grad = requires_grad


class Module:
    """The two methods of ``torch.nn.Module`` that ``param_groups`` uses."""

    def __init__(self, params: dict[str, Param], children: dict[str, Module] | None = None):
        self.params, self.children = params, children or {}

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Any]]:
        yield from self.params.items()
        if recurse:
            for name, child in self.children.items():
                for sub, param in child.named_parameters():
                    yield f"{name}.{sub}", param


class SSM(Module):
    def optim_hints(self) -> Mapping[str, OptimHint]:
        return {"A": OptimHint(lr_max=0.001), "dt": OptimHint(lr_max=0.01, weight_decay=0.5)}


def model() -> Module:
    ssm = SSM({"A": Param(), "dt": Param(), "C": Param()})
    return Module({"head": Param(), "frozen": Param(requires_grad=False)}, {"layer": ssm})


def test_hinted_parameters_get_their_own_groups() -> None:
    groups = param_groups(model(), lr=0.004, weight_decay=0.1)
    summary = {tuple(g["names"]): (g["lr"], g["weight_decay"]) for g in groups}
    assert summary == {
        ("head", "layer.C"): (0.004, 0.1),
        ("layer.A",): (0.001, 0.0),
        ("layer.dt",): (0.004, 0.5),  # the cap is above the base rate: the base rate wins
    }
    assert all(len(g["params"]) == len(g["names"]) for g in groups)


def test_collect_hints_uses_full_names() -> None:
    assert isinstance(model().children["layer"], HasOptimHints)
    assert set(collect_hints(model())) == {"layer.A", "layer.dt"}


def test_a_hint_for_a_missing_parameter_is_an_error() -> None:
    class Broken(Module):
        def optim_hints(self) -> Mapping[str, OptimHint]:
            return {"B": OptimHint(lr_max=0.1)}

    with pytest.raises(ValueError, match=r"Broken.optim_hints\(\) names 'B', which is not one of"):
        collect_hints(Module({}, {"x": Broken({"A": Param()})}))


def test_hints_reject_negative_values() -> None:
    with pytest.raises(ValueError, match=r"'lr_max' must be >= 0\.0"):
        OptimHint(lr_max=-1.0)
