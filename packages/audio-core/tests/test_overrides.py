"""Parsing ``key=value`` overrides and merging sources: properties over generated input."""

from __future__ import annotations

import string
import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import assume, given
from hypothesis import strategies as st

from audio_core import ConfigError, parse_override
from audio_core.resolve import RawConfig, parse_value

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
keys = st.lists(identifiers, min_size=1, max_size=4).map(tuple)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def as_toml_value(value: Any) -> str:
    """The text of a TOML value, on one line, as a user would type it after ``=``."""
    if isinstance(value, list):
        return "[" + ", ".join(as_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


@given(keys, values)
def test_any_toml_value_round_trips_through_an_override(key: tuple[str, ...], value: Any) -> None:
    assert parse_override(f"{'.'.join(key)}={as_toml_value(value)}") == (key, value)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_text_that_is_not_toml_stays_exactly_as_typed(text: str) -> None:
    try:
        tomllib.loads(f"value = {text}")
        assume("\n" in text or "\r" in text)
    except tomllib.TOMLDecodeError:
        pass
    assert parse_value(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128", 128),
        ("4e-3", 0.004),
        ("true", True),
        ("[4, 4]", [4, 4]),
        ('"12"', "12"),
        ("data/sc09", "data/sc09"),
        ("", ""),
        ("{lr = 0.1}", {"lr": 0.1}),
        ("1\nx = 2", "1\nx = 2"),
    ],
)
def test_examples_from_the_docs(text: str, expected: Any) -> None:
    assert parse_value(text) == expected


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1))
def test_keys_must_be_dotted_identifiers(key: str) -> None:
    valid = all(part and (part[0].isalpha() or part[0] == "_") and
                all(c.isalnum() or c == "_" for c in part) for part in key.split("."))  # fmt: skip
    if valid:
        assert parse_override(f"{key}=1") == (tuple(key.split(".")), 1)
    else:
        with pytest.raises(ConfigError, match="is not a dotted key"):
            parse_override(f"{key}=1")


nested = st.recursive(
    scalars,
    lambda children: st.dictionaries(identifiers, children, min_size=1, max_size=3),
    max_leaves=8,
)
tables = st.dictionaries(identifiers, nested, max_size=4)


def leaves(
    table: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for key, value in table.items():
        if isinstance(value, dict):
            out.extend(leaves(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out


@given(tables)
def test_setting_a_table_equals_setting_each_of_its_leaves(table: dict[str, Any]) -> None:
    whole, one_by_one = RawConfig(), RawConfig()
    whole.set((), table, "file")
    for path, value in leaves(table):
        one_by_one.set(path, value, "file")
    assert whole.data == one_by_one.data == {k: v for k, v in table.items() if v != {}}
    assert whole.origins == {path: "file" for path, _ in leaves(table)}


@given(tables, tables)
def test_a_later_source_wins_on_every_leaf_it_sets(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    raw = RawConfig()
    try:
        raw.set((), first, "first")
        raw.set((), second, "second")
    except ConfigError:
        return  # a value of `first` sits where `second` needs a table: refused, tested elsewhere
    for path, value in leaves(second):
        node: Any = raw.data
        for key in path:
            node = node[key]
        assert node == value
        assert raw.origin(path) == "second"
