"""Spec records: validity rules and lazy target loading."""

from __future__ import annotations

import sys

import pytest
from attrs import frozen
from hypothesis import given
from hypothesis import strategies as st

from audio_core import KernelSpec, ModelSpec, TargetImportError
from audio_core.specs import NAME_PATTERN


@frozen(kw_only=True)
class Defaults:
    width: int = 8


@frozen(kw_only=True)
class NeedsValue:
    width: int


def spec(**changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "toy",
        "config_cls": Defaults,
        "target": "collections:OrderedDict",
        "summary": "a toy",
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_a_valid_spec_has_no_problems() -> None:
    assert spec().problems() == []
    assert spec(aliases=["t", "toy-2"]).aliases == ("t", "toy-2")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "Toy"}, "name 'Toy' is not a valid name"),
        ({"name": "-toy"}, "name '-toy' is not a valid name"),
        ({"name": "my toy"}, "name 'my toy' is not a valid name"),
        ({"aliases": ("ok", "Bad")}, "alias 'Bad' is not a valid name"),
        ({"config_cls": dict}, "is not an attrs class"),
        ({"config_cls": NeedsValue}, "fields without defaults (width)"),
        ({"target": "collections.OrderedDict"}, "is not of the form 'package.module:callable'"),
        ({"summary": ""}, "must be one non-empty line"),
        ({"summary": "two\nlines"}, "must be one non-empty line"),
    ],
)
def test_invalid_specs_say_what_is_wrong(changes: dict[str, object], fragment: str) -> None:
    problems = spec(**changes).problems()
    assert len(problems) == 1
    assert fragment in problems[0]


@given(st.from_regex(NAME_PATTERN, fullmatch=True))
def test_every_name_matching_the_rule_is_accepted(name: str) -> None:
    assert spec(name=name).problems() == []


@given(st.text(min_size=1).filter(lambda s: s != s.lower() or s[0] in "._-" or " " in s))
def test_names_with_capitals_spaces_or_leading_punctuation_are_refused(name: str) -> None:
    assert any("is not a valid name" in p for p in spec(name=name).problems())


def test_load_target_imports_only_when_asked(write_module) -> None:
    write_module("lazy_target", "def build(config):\n    return ('built', config.width)\n")
    record = spec(target="lazy_target:build")
    assert "lazy_target" not in sys.modules
    assert record.load_target()(Defaults(width=3)) == ("built", 3)


def test_load_target_reaches_nested_attributes() -> None:
    assert spec(target="collections:OrderedDict.fromkeys").load_target() is not None


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("no_such_module_xyz:build", "No module named 'no_such_module_xyz'"),
        ("collections:NoSuchThing", "collections has no attribute 'NoSuchThing'"),
    ],
)
def test_load_target_errors_name_the_record_and_target(target: str, fragment: str) -> None:
    record = KernelSpec(name="s9", config_cls=Defaults, target=target, summary="x")
    with pytest.raises(TargetImportError) as info:
        record.load_target()
    message = str(info.value)
    assert message.startswith(f"cannot import target {target!r} of kernel 's9'")
    assert fragment in message
