"""Checks shared by the tests of every package and of third-party plugins.

Use them from pytest::

    from audio_core.testing import check_config_roundtrip, declared_plugin_dists

They import nothing heavy and raise ``AssertionError`` with the offending values.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, distribution, distributions, entry_points
from pathlib import Path
from typing import Any

import attrs
import tomli_w

from .converter import make_converter
from .manager import ENTRY_POINT_GROUP, make_plugin_manager
from .registry import Registry
from .specs import Spec

_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_plugin_dists() -> set[str]:
    """Normalised names of the distributions that declare an ``audio_run`` entry point here."""
    return {
        _normalise(ep.dist.name)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None
    }


def installed_sashimi_dists() -> set[str]:
    """Normalised names of every installed ``sashimi-*`` distribution."""
    names = {_normalise(d.metadata["Name"]) for d in distributions()}
    return {name for name in names if name.startswith("sashimi-")}


def sibling_closure(dist: str) -> set[str]:
    """``dist`` and every ``sashimi-*`` distribution it requires, transitively (normalised
    names; optional extras are not followed).

    Raises:
        AssertionError: ``dist`` or one of those requirements is not installed.
    """
    seen: set[str] = set()
    pending = [_normalise(dist)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            requirements = distribution(name).requires or []
        except PackageNotFoundError:
            raise AssertionError(
                f"distribution {name!r} (in the closure of {dist}) is not installed"
            ) from None
        seen.add(name)
        for requirement in requirements:
            if "extra ==" in requirement.replace('"', "").replace("'", ""):
                continue
            match = _REQUIREMENT_NAME.match(requirement)
            if match and _normalise(match.group(1)).startswith("sashimi-"):
                pending.append(_normalise(match.group(1)))
    return seen


def check_wiring(dist: str) -> None:
    """In an environment made for ``dist`` alone (its nox session): the installed ``sashimi-*``
    distributions are exactly ``dist`` and its declared siblings, and the ``audio_run`` entry
    points are exactly theirs: nothing else of ours, and no stray plugin.

    Raises:
        AssertionError: naming what is missing or extra.
    """
    expected = sibling_closure(dist)
    installed = installed_sashimi_dists()
    assert installed == expected, (
        f"installed sashimi distributions {sorted(installed)} != {dist} and its declared "
        f"siblings {sorted(expected)}"
    )
    with_entry_points = {
        name
        for name in expected
        if any(ep.group == ENTRY_POINT_GROUP for ep in distribution(name).entry_points)
    }
    plugins = installed_plugin_dists()
    assert plugins == with_entry_points, (
        f"audio_run entry points come from {sorted(plugins)}, expected {sorted(with_entry_points)}"
    )
    pm = make_plugin_manager(environ={})
    loaded = {
        _normalise(info.dist): info.version
        for info in pm.infos()
        if info.dist is not None and info.source in ("builtin", "entry point")
    }
    versions = {name: distribution(name).version for name in with_entry_points}
    assert loaded == versions, f"loaded plugins {loaded} != expected {versions}"
    Registry.from_plugin_manager(pm)  # every record valid, no duplicate names


def check_config_roundtrip(config: Any, registry: Registry | None = None) -> None:
    """``config`` survives unstructure -> TOML -> structure with the project's converter.

    Parts chosen by name inside it (``kernel``, ``backbone``) are resolved through
    ``registry`` (default: one built from every installed plugin).

    Raises:
        AssertionError: the value changed on the way, naming both.
    """
    assert attrs.has(type(config)), f"{config!r} is not an attrs instance"
    if registry is None:
        registry = Registry.from_plugin_manager(make_plugin_manager())
    converter = make_converter(registry)
    data = converter.unstructure(config)
    text = tomli_w.dumps(data)
    back = converter.structure(tomllib.loads(text), type(config))
    assert back == config, f"round trip changed {config!r} into {back!r} (via TOML {text!r})"


def check_spec(spec: Spec, registry: Registry | None = None) -> None:
    """A record is valid, its config builds from defaults and round-trips through TOML
    (named parts resolved through ``registry``, default: every installed plugin's).

    Raises:
        AssertionError: listing the record's problems or the failed round trip.
    """
    problems = spec.problems()
    assert not problems, f"{spec.kind[:-1]} {spec.name!r}: " + "; ".join(problems)
    check_config_roundtrip(spec.config_cls(), registry)


_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)


def readme_python_blocks(text: str) -> list[str]:
    """The fenced ``python`` code blocks of a README, in order."""
    return _PYTHON_BLOCK.findall(text)


def documented_output(block: str) -> list[str]:
    """What a README example says it prints, line by line.

    A ``print(...)  # text`` line documents ``text``; ``# text`` lines right after a
    ``print`` line (or after such a comment) document the following lines of output.
    """
    expected: list[str] = []
    after_print = False
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("print(") and not line.startswith(" "):
            after_print = True
            if "  # " in stripped:
                expected.append(stripped.split("  # ", 1)[1])
        elif stripped.startswith("print("):
            after_print = True
        elif stripped.startswith("# ") and after_print and not line.startswith(" "):
            expected.append(stripped[2:])
        else:
            after_print = False
    return expected


_IMPORT_PROBE = """
import json, sys
from audio_core.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def modules_imported_by_cli(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[int, set[str]]:
    """Run ``audio-run ARGV`` in a fresh interpreter; return its exit status and every module
    it imported (to check, e.g., that ``--help`` never imports torch).

    Args:
        argv: the arguments after ``audio-run``.
        env: the environment (default: this process's).
    """
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *argv],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        check=False,
    )
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    try:
        report = json.loads(last)
    except json.JSONDecodeError:
        raise AssertionError(f"audio-run {' '.join(argv)} crashed:\n{result.stderr}") from None
    return int(report["status"] or 0), set(report["modules"])


#: Set to 1 (CI does) to turn a missing reference-fixture folder into a failure.
REFERENCE_REQUIRED = "SASHIMI_REFERENCE_REQUIRED"
#: Points at the reference-fixture folder when it is not ``<checkout>/../shared/reference``.
REFERENCE_DIR = "SASHIMI_REFERENCE_DIR"


def reference_dir(anchor: str | Path, *parts: str) -> Path:
    """The fixtures made by running the reference implementations (``../shared/reference``
    beside the checkout holding ``anchor``, or ``$SASHIMI_REFERENCE_DIR``), joined with
    ``parts``.

    A user's clone has no such folder: the calling test is skipped with the reason, unless
    ``SASHIMI_REFERENCE_REQUIRED=1`` (CI), which makes it fail instead.
    """
    import os

    import pytest

    base: Path | None = None
    if os.environ.get(REFERENCE_DIR):
        base = Path(os.environ[REFERENCE_DIR])
    else:
        for parent in Path(anchor).resolve().parents:
            if (parent / "noxfile.py").is_file():
                base = parent.parent / "shared" / "reference"
                break
    path = base.joinpath(*parts) if base is not None else None
    if path is None or not path.exists():
        reason = (
            f"reference fixtures not found ({path or 'no checkout above ' + str(anchor)}); "
            f"set {REFERENCE_DIR}, or see ../shared/reference/README.md"
        )
        if os.environ.get(REFERENCE_REQUIRED) == "1":
            pytest.fail(f"{reason} ({REFERENCE_REQUIRED}=1)")
        pytest.skip(reason)
    return path
