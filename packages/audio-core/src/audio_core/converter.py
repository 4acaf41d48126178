"""The one cattrs converter for configurations, and its errors as one-line messages.

Structuring is strict: an ``int`` field refuses ``1.5`` and ``true``, a ``str`` field refuses
``12``, a ``Literal`` field names the allowed values, unknown keys are errors
(``forbid_extra_keys``) and every failure carries its ``$.path``. Failing attrs validators are
reported at their field's path (cattrs alone reports them at the class).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from ._suggest import did_you_mean
from .config import Choice
from .registry import Registry, UnknownNameError

#: A position in a configuration: keys of tables and indices of arrays.
ConfigPath = tuple[str | int, ...]


class ConfigValueError(ValueError):
    """A value of the wrong type or outside the allowed set; the message says what is allowed."""


def describe(value: Any) -> str:
    """A value with its TOML type, for messages: ``integer 12``, ``string 'x'``, ``table``."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        ((datetime, date, time), "date/time"),
        ((list, tuple), "array"),
        (Mapping, "table"),
    ]
    for types, name in kinds:
        if isinstance(value, types):
            if name == "table":
                return name
            return f"{name} {str(value).lower() if isinstance(value, bool) else repr(value)}"
    return f"{type(value).__name__} {value!r}"


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigValueError(f"expected an integer, got {describe(value)}")
    return value


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigValueError(f"expected a number, got {describe(value)}")
    if not math.isfinite(value):
        raise ConfigValueError(f"expected a finite number, got {describe(value)}")
    return float(value)


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise ConfigValueError(f"expected true or false, got {describe(value)}")
    return value


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        hint = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = f" (to mean the text, quote it: '\"{value}\"')"
        raise ConfigValueError(f"expected a string, got {describe(value)}{hint}")
    return value


def _structure_path(value: Any, _: type) -> Path:
    return Path(_structure_str(value, str))


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _structure_literal(value: Any, tp: Any) -> Any:
    allowed = get_args(tp)
    for option in allowed:  # compare types too: ``True == 1`` must not pass for ``Literal[1]``
        if type(option) is type(value) and option == value:
            return option
    hint = (
        did_you_mean(value, [a for a in allowed if isinstance(a, str)])
        if isinstance(value, str)
        else ""
    )
    raise ConfigValueError(
        f"expected one of {', '.join(repr(a) for a in allowed)}; got {describe(value)}{hint}"
    )


def _is_tuple(tp: Any) -> bool:
    return tp is tuple or get_origin(tp) is tuple


def _make_tuple_hook(converter: Converter) -> Callable[[Any, Any], tuple[Any, ...]]:
    def structure_tuple(value: Any, tp: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise ConfigValueError(f"expected an array, got {describe(value)}")
        args = get_args(tp)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            types = [args[0]] * len(value)
        elif len(args) != len(value):
            raise ConfigValueError(
                f"expected an array of {len(args)} values, got {len(value)}: {list(value)!r}"
            )
        else:
            types = list(args)
        out, errors = [], []
        for index, (item, item_type) in enumerate(zip(value, types, strict=True)):
            try:
                out.append(converter.structure(item, item_type))
            except Exception as exc:  # noqa: BLE001 -- collected with its index, raised below
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring {tp} @ index {index}", index, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(out)

    return structure_tuple


def _fail_at(cl: type, field_name: str, field_type: Any, exc: Exception) -> ClassValidationError:
    exc.__notes__ = [
        *getattr(exc, "__notes__", []),
        AttributeValidationNote(
            f"Structuring class {cl.__qualname__} @ attribute {field_name}", field_name, field_type
        ),
    ]
    return ClassValidationError(f"While structuring {cl.__qualname__}", [exc], cl)


def _make_attrs_hook_factory(
    converter: Converter,
) -> Callable[[type], Callable[[Any, type], Any]]:
    def factory(cl: type) -> Callable[[Any, type], Any]:
        base: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(cl, converter)
        attrs.resolve_types(cl)

        def structure(value: Any, _: type) -> Any:
            if not isinstance(value, Mapping):
                raise ConfigValueError(f"expected a table, got {describe(value)}")
            value = _default_part_names(value, cl, converter)
            try:
                return base(value, cl)
            except ClassValidationError as exc:
                raise _locate_validator_failure(exc, value, cl, converter) from None

        return structure

    return factory


def _is_choice(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Choice)


def _default_part_names(
    value: Mapping[str, Any], cl: type, converter: Converter
) -> Mapping[str, Any]:
    """A nested part table given without ``name`` (``model.kernel.d_state=32``), or naming
    the field's default part, starts from that default part and its settings (the given keys
    override them): ``model.backbone.d_model=64`` keeps a DiffWave's bidirectional SaShiMi
    bidirectional. A table naming another part starts from that part's own defaults."""
    filled: dict[str, Any] | None = None
    for a in attrs.fields(cl):
        given = value.get(a.name)
        if (
            _is_choice(a.type)
            and isinstance(given, Mapping)
            and isinstance(a.default, Choice)
            and given.get("name", a.default.name) == a.default.name
        ):
            filled = dict(value) if filled is None else filled
            base = (
                converter.unstructure(a.default.config) if attrs.has(type(a.default.config)) else {}
            )
            filled[a.name] = {**base, **given, "name": a.default.name}
    return value if filled is None else filled


def _locate_validator_failure(
    exc: ClassValidationError, value: Mapping[str, Any], cl: type, converter: Converter
) -> ClassValidationError:
    """Add the failures of attrs validators, each at its own field's path.

    cattrs reports an exception raised by ``cl(**fields)`` at the class's path, and when other
    fields fail it never constructs ``cl``, so validators do not run at all. Here every given
    field that structured fine has its validator run alone (validators must not depend on
    other fields: cross-field rules belong in ``__attrs_post_init__``). A construction failure
    that no single validator explains (a failing ``__attrs_post_init__``) stays at the class.
    """
    with_notes, without = exc.group_exceptions()
    failed = {note.name for _, note in with_notes if isinstance(note, AttributeValidationNote)}
    located: list[Exception] = []
    for a in attrs.fields(cl):
        if a.validator is None or a.name not in value or a.name in failed:
            continue
        field_value = converter.structure(value[a.name], a.type)
        try:
            a.validator(None, a, field_value)
        except (ValueError, TypeError) as error:
            located.extend(_fail_at(cl, a.name, a.type, error).exceptions)
    if not located:
        return exc
    constructed_and_failed = (
        not with_notes and len(without) == 1 and not isinstance(without[0], ForbiddenExtraKeysError)
    )
    kept = [] if constructed_and_failed else list(exc.exceptions)
    return ClassValidationError(f"While structuring {cl.__qualname__}", [*kept, *located], cl)


def _make_choice_hook(
    converter: Converter, registry: Registry | None
) -> Callable[[Any, type[Choice]], Choice]:
    def structure_choice(value: Any, cl: type[Choice]) -> Choice:
        noun, flag = cl.kind[:-1], "--" + cl.kind[:-1]
        if isinstance(value, str) and cl.kind in ("kernels", "backbones"):
            raise ConfigValueError(
                f"expected a table, got {describe(value)}: since audio-run 0.2 a {noun} is a "
                f"table, write {noun}.name = {value!r} (its own options, such as d_state, go "
                "in the same table)"
            )
        if not isinstance(value, Mapping):
            raise ConfigValueError(f"expected a table, got {describe(value)}")
        name = value.get("name")
        if registry is None:
            raise ConfigValueError(f"cannot resolve a {noun} name without a registry")
        if name is None:
            installed = registry.names(cl.kind)
            listed = (
                f"installed: {', '.join(installed)}" if installed else f"no {cl.kind} installed"
            )
            raise _fail_at(
                cl,
                "name",
                str,
                ConfigValueError(
                    f"required field missing: choose a {noun} with {flag} NAME ({listed})"
                ),
            )
        try:
            spec = registry.get(cl.kind, _structure_str(name, str))
        except (ConfigValueError, UnknownNameError) as exc:
            raise _fail_at(cl, "name", str, exc) from None
        fields = {k: v for k, v in value.items() if k != "name"}
        return cl(name=spec.name, config=converter.structure(fields, spec.config_cls), spec=spec)

    return structure_choice


def make_converter(registry: Registry | None = None) -> Converter:
    """The configuration converter.

    Args:
        registry: resolves the ``model`` / ``dataset`` names to their config classes; only
            needed for structuring a :class:`~audio_core.config.RunConfig`.
    """
    converter = Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(Path, _structure_path)
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook_func(_is_literal, _structure_literal)
    converter.register_structure_hook_func(_is_tuple, _make_tuple_hook(converter))
    converter.register_unstructure_hook_func(
        _is_tuple, lambda t: [converter.unstructure(x) for x in t]
    )
    converter.register_structure_hook_factory(attrs.has, _make_attrs_hook_factory(converter))
    converter.register_structure_hook_func(_is_choice, _make_choice_hook(converter, registry))
    converter.register_unstructure_hook_func(
        _is_choice, lambda c: {"name": c.name, **converter.unstructure(c.config)}
    )
    return converter


def _walk(exc: BaseException, path: ConfigPath) -> Iterator[tuple[ConfigPath, BaseException]]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            key = note.name if isinstance(note, AttributeValidationNote) else note.index
            yield from _walk(inner, (*path, key))
        for inner in without:
            yield path, inner
    else:
        yield path, exc


def _part_hint(cl: Any, key: str) -> str:
    """``" — did you mean 'kernel.d_state'? ..."`` when ``key`` is a field of one of the
    default parts of ``cl`` (the flat kernel options of audio-run 0.1)."""
    if not attrs.has(cl):
        return ""
    for a in attrs.fields(cl):
        default = a.default
        if (
            isinstance(default, Choice)
            and attrs.has(type(default.config))
            and key in {f.name for f in attrs.fields(type(default.config))}
        ):
            return (
                f" — did you mean '{a.name}.{key}'? ({a.name} options live in their own "
                f"table since audio-run 0.2)"
            )
    return ""


def render_path(path: ConfigPath) -> str:
    """``("model", "pool", 1)`` -> ``"$.model.pool[1]"``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def error_lines(
    exc: BaseException,
    origin: Callable[[ConfigPath], str | None] = lambda path: None,
    prefix: ConfigPath = (),
) -> list[str]:
    """One line per problem in a structuring error: ``<what> @ $.<path>[ — hint][ (from X)]``.

    Args:
        exc: what the converter raised.
        origin: names the source that set a path (a file, a flag, an override), if known.
        prefix: the path of the structured value inside a larger config (e.g. ``("is",)``).
    """

    def source(path: ConfigPath) -> str:
        found = origin(path)
        return f" (from {found})" if found else ""

    lines: list[str] = []
    for path, leaf in _walk(exc, prefix):
        if isinstance(leaf, ForbiddenExtraKeysError):
            known = [a.name for a in attrs.fields(leaf.cl)] if attrs.has(leaf.cl) else []
            lines.extend(
                f"extra fields found ({extra}) @ {render_path(path)}"
                f"{_part_hint(leaf.cl, extra) or did_you_mean(extra, known)}"
                f"{source((*path, extra))}"
                for extra in sorted(leaf.extra_fields)
            )
            continue
        if isinstance(leaf, KeyError):
            message = "required field missing"
        elif isinstance(leaf, ValueError | TypeError | LookupError) and leaf.args:
            message = str(leaf.args[0]) if isinstance(leaf.args[0], str) else str(leaf)
        else:
            message = f"{type(leaf).__name__}: {leaf}"
        lines.append(f"{message} @ {render_path(path)}{source(path)}")
    return lines
