"""Every hook and record field is documented, in its docstring and in the package README."""

from __future__ import annotations

import inspect
from pathlib import Path

import attrs
import pytest

from audio_core import hookspecs
from audio_core.specs import SPEC_CLASSES, Spec

README = (Path(__file__).parents[1] / "README.md").read_text()
HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
]


def test_the_hooks_are_the_ones_the_design_names() -> None:
    assert sorted(HOOKS) == [
        "register_backbones",
        "register_commands",
        "register_datasets",
        "register_kernels",
        "register_metrics",
        "register_models",
        "register_presets",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_has_a_docstring_and_a_readme_entry(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc is not None, f"hookspec {hook} has no docstring"
    assert len(doc) > 40, f"hookspec {hook} has no real docstring: {doc!r}"
    assert f"`{hook}" in README, f"hookspec {hook} is not documented in audio-core's README"


@pytest.mark.parametrize("field", [a.name for a in attrs.fields(Spec)])
def test_each_record_field_is_documented(field: str) -> None:
    assert f"{field}:" in (Spec.__doc__ or ""), f"Spec.{field} is missing from its docstring"
    assert f"`{field}`" in README, f"record field {field} is not documented in the README"


@pytest.mark.parametrize("spec_cls", SPEC_CLASSES.values())
def test_each_record_class_is_documented(spec_cls: type[Spec]) -> None:
    assert spec_cls.__doc__
    assert f"`{spec_cls.__name__}`" in README
