"""From TOML files, ``--model`` / ``--dataset`` and ``key=value`` overrides to one RunConfig.

Precedence, lowest first: the classes' defaults, each ``--config`` file in order, ``--model`` /
``--dataset``, then each override in order. Everything is merged into one raw dict (tables
merge key by key; any other value replaces) and structured once by one converter, so every
problem is reported together, each with its ``$.path`` and the file, flag or override that set
it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from attrs import define, field
from cattrs.errors import BaseValidationError

from .config import RunConfig
from .converter import ConfigPath, describe, error_lines, make_converter
from .errors import ConfigError
from .registry import Registry

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_value(text: str) -> Any:
    """An override's value: parsed as a TOML value when it is one, else the text itself.

    ``128`` -> ``128``, ``4e-3`` -> ``0.004``, ``true`` -> ``True``, ``[4, 4]`` -> ``[4, 4]``,
    ``'"12"'`` -> ``"12"``, ``data/sc09`` -> ``"data/sc09"`` (not TOML, so a string).
    """
    if "\n" in text or "\r" in text:
        return text
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["value"]


def parse_override(token: str) -> tuple[tuple[str, ...], Any]:
    """Split ``"model.d_model=128"`` into ``(("model", "d_model"), 128)``.

    Raises:
        ConfigError: the token has no ``=`` or its key is not a dotted name.
    """
    key, sep, text = token.partition("=")
    if not sep:
        raise ConfigError(
            [f"override {token!r} must have the form KEY=VALUE (e.g. model.d_model=128)"]
        )
    if not _KEY.fullmatch(key):
        raise ConfigError(
            [f"override {token!r}: {key!r} is not a dotted key such as model.d_model"]
        )
    return tuple(key.split(".")), parse_value(text)


def load_toml(path: Path) -> dict[str, Any]:
    """Read one ``--config`` file.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or not valid TOML.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"--config {path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"--config {path}: is a folder, expected a TOML file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"--config {path}: not UTF-8 text, expected a TOML file"]) from None
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read it: {exc.strerror}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"--config {path}: invalid TOML: {exc}"]) from None


@define
class RawConfig:
    """The merged, unstructured configuration and, for each value, where it was set."""

    data: dict[str, Any] = field(factory=dict)
    origins: dict[tuple[str, ...], str] = field(factory=dict)

    def set(self, path: tuple[str, ...], value: Any, origin: str) -> None:
        """Set ``path`` to ``value``; tables merge key by key, anything else replaces.

        Raises:
            ConfigError: a key on the way is already set to something that is not a table.
        """
        node = self.data
        for depth, key in enumerate(path):
            last = depth == len(path) - 1
            if last and not isinstance(value, dict):
                node[key] = value
                self.origins = {p: o for p, o in self.origins.items() if p[: len(path)] != path}
                self.origins[path] = origin
                return
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                set_by = self.origins.get(path[: depth + 1])
                raise ConfigError(
                    [
                        f"{origin}: cannot set {'.'.join(path)}: {where} is already "
                        f"{describe(child)}"
                        + (f" (from {set_by})" if set_by else "")
                        + ", not a table"
                    ]
                )
            node = child
        for key, item in value.items():
            self.set((*path, key), item, origin)

    def origin(self, path: ConfigPath) -> str | None:
        """Who set ``path``: the source of it or of the value holding it, else every source
        of a value inside it (for a table), or ``None`` when nothing set it (a default)."""
        keys = tuple(p for p in path if isinstance(p, str))
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.origins:
                return self.origins[keys[:end]]
        inside = sorted({o for p, o in self.origins.items() if p[: len(keys)] == keys})
        return ", ".join(inside) if inside else None


def merge_sources(
    *,
    base: Mapping[str, Any] | None = None,
    base_origin: str = "the saved config",
    files: Sequence[Path] = (),
    model: str | None = None,
    dataset: str | None = None,
    overrides: Sequence[str] = (),
) -> RawConfig:
    """Merge the sources in precedence order into one :class:`RawConfig`.

    ``base`` (plain data, e.g. the config saved in a checkpoint) comes first, below every
    file; its values are reported as set by ``base_origin``.

    Raises:
        ConfigError: a file cannot be read or parsed, an override is malformed, or a value
            would replace a table's parent (one line for the first such problem).
    """
    raw = RawConfig()
    if base is not None:
        raw.set((), dict(base), base_origin)
    for path in files:
        raw.set((), load_toml(path), str(path))
    if model is not None:
        raw.set(("model", "name"), model, "--model")
    if dataset is not None:
        raw.set(("dataset", "name"), dataset, "--dataset")
    for token in overrides:
        key, value = parse_override(token)
        raw.set(key, value, f"override {token!r}")
    return raw


def structure_run_config(raw: RawConfig, registry: Registry) -> RunConfig:
    """Structure merged sources into a :class:`RunConfig` with one converter.

    Raises:
        ConfigError: one line per problem, e.g.
            ``extra fields found (d_modle) @ $.model — did you mean 'd_model'?``.
    """
    data = {"model": {}, "dataset": {}, **raw.data}
    try:
        config: RunConfig = make_converter(registry).structure(data, RunConfig)
    except (BaseValidationError, ValueError, TypeError) as exc:
        raise ConfigError(error_lines(exc, raw.origin)) from None
    check_agreement(config, raw)
    return config


def check_agreement(config: RunConfig, raw: RawConfig | None = None) -> None:
    """Cross-section rules: settings of the model and the dataset that must agree.

    ``bits``: a model predicting ``2**model.bits`` classes of data quantised to
    ``dataset.bits`` would fail only inside its loss.

    Raises:
        ConfigError: naming both settings and who set them.
    """
    model_bits = getattr(config.model.config, "bits", None)
    data_bits = getattr(config.dataset.config, "bits", None)
    if isinstance(model_bits, int) and isinstance(data_bits, int) and model_bits != data_bits:
        sources = []
        for path in (("model", "bits"), ("dataset", "bits")):
            origin = raw.origin(path) if raw is not None else None
            sources.append(f"{'.'.join(path)} from {origin}" if origin else ".".join(path))
        raise ConfigError(
            [
                f"model.bits={model_bits} but dataset.bits={data_bits}: the model must predict "
                f"the classes the data holds ({', '.join(sources)})"
            ]
        )


def resolve_run_config(
    registry: Registry,
    *,
    base: Mapping[str, Any] | None = None,
    base_origin: str = "the saved config",
    files: Sequence[Path] = (),
    model: str | None = None,
    dataset: str | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Merge the sources and structure them: what ``audio-run`` does before any command.

    Raises:
        ConfigError: one line per problem.
    """
    raw = merge_sources(
        base=base,
        base_origin=base_origin,
        files=files,
        model=model,
        dataset=dataset,
        overrides=overrides,
    )
    return structure_run_config(raw, registry)


def sections_of(overrides: Sequence[str], allowed: Sequence[str]) -> RawConfig:
    """``KEY=VALUE`` overrides for commands with their own sections (``evaluate``'s
    ``is.splits=2``, ``dataset.root=x``), merged as :func:`merge_sources` merges them.

    Raises:
        ConfigError: an override is malformed or names no allowed section.
    """
    raw = merge_sources(overrides=overrides)
    for key in raw.data:
        if key not in allowed or not isinstance(raw.data[key], dict):
            token = raw.origin((key,)) or key
            known = ", ".join(sorted(allowed))
            raise ConfigError([f"{token}: the key must start with one of {known} and a field"])
    return raw


def structure_section(
    registry: Registry | None,
    raw: RawConfig,
    section: str,
    cls: type[Any],
    *,
    base: Mapping[str, Any] | None = None,
) -> Any:
    """Structure ``raw``'s ``section`` (on top of ``base``, plain values) as ``cls`` with the
    project's converter, reporting problems at ``$.<section>...`` with who set them.

    Raises:
        ConfigError: one line per problem.
    """
    data = {**(base or {}), **raw.data.get(section, {})}
    try:
        return make_converter(registry).structure(data, cls)
    except (BaseValidationError, ValueError, TypeError) as exc:
        lines = error_lines(exc, lambda path: raw.origin((section, *path)), (section,))
        raise ConfigError(lines) from None


def unstructure(config: RunConfig) -> dict[str, Any]:
    """The config as plain TOML/JSON-ready data (the form ``--config`` files take)."""
    data: dict[str, Any] = make_converter().unstructure(config)
    return data


def to_toml(config: RunConfig) -> str:
    """The config as TOML text; ``--config`` on that text gives back an equal config."""
    return tomli_w.dumps(unstructure(config))
