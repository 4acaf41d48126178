"""Test sessions. ``nox`` runs them all (that is what CI runs); ``nox -l`` lists them.

- ``tests(package='X')``: one package's tests in a virtualenv holding only that package, the
  siblings it declares (read from its pyproject.toml) and its ``test`` extra;
- ``lint``: ruff check and ruff format --check over the whole repository, then the
  architecture contracts (import-linter, ``[tool.importlinter]`` in pyproject.toml);
- ``typecheck``: mypy --strict over every package and the example plugin;
- ``integration``: every package plus the example plugin, end-to-end ``audio-run`` runs.

Every install goes through ``constraints/ci.txt``, which pins the torch + torchaudio pair.
``nox -s "tests(package='audio-core')" -- -k registry`` passes arguments on to pytest.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "typecheck", "tests", "integration"]

PYTHON = "3.11"
ROOT = Path(__file__).parent
CONSTRAINTS = "constraints/ci.txt"
EXAMPLE = "examples/audio-run-plugin-example"
REPORTS = "build/test-reports"


def _read_packages() -> dict[str, tuple[str, list[str]]]:
    """Package folder -> (distribution name, distribution names it requires)."""
    packages = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        requires = [re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0] for r in project["dependencies"]]
        packages[pyproject.parent.name] = (project["name"], requires)
    return packages


PACKAGES = _read_packages()
FOLDER_OF = {dist: folder for folder, (dist, _) in PACKAGES.items()}


def siblings(folder: str) -> list[str]:
    """Folders of the packages ``folder`` requires, transitively, dependencies first."""
    ordered: list[str] = []

    def visit(current: str) -> None:
        for requirement in PACKAGES[current][1]:
            if requirement in FOLDER_OF and FOLDER_OF[requirement] not in ordered:
                visit(FOLDER_OF[requirement])
                ordered.append(FOLDER_OF[requirement])

    visit(folder)
    return ordered


def install(session: nox.Session, *requirements: str, editable: tuple[str, ...] = ()) -> None:
    """One uv call, so the resolver sees every local package and every pin at once."""
    args = [arg for path in editable for arg in ("-e", path)]
    session.install("-c", CONSTRAINTS, *requirements, *args)


def pytest(session: nox.Session, name: str, *paths: str) -> None:
    session.run("pytest", *paths, f"--junitxml={REPORTS}/{name}.xml", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """One package's tests, beside only its declared siblings."""
    editable = (*(f"packages/{s}" for s in siblings(package)), f"packages/{package}[test]")
    install(session, editable=editable)
    pytest(session, f"tests-{package}", f"packages/{package}/tests")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint rules and formatting) and import-linter (the architecture contracts)."""
    install(session, "ruff", "import-linter")
    # The contracts read the packages' source: install them without their dependencies.
    paths = [arg for p in (*(f"packages/{p}" for p in PACKAGES), EXAMPLE) for arg in ("-e", p)]
    session.install("--no-deps", *paths)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package and the example plugin."""
    install(session, "mypy", "pytest", editable=(*(f"packages/{p}" for p in PACKAGES), EXAMPLE))
    modules = [
        path.parent.name
        for path in sorted(ROOT.glob("packages/*/src/*/__init__.py"))
        + sorted(ROOT.glob(f"{EXAMPLE}/src/*/__init__.py"))
    ]
    session.run("mypy", *(arg for module in modules for arg in ("-p", module)))


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Every package and the example plugin together; end-to-end CLI runs."""
    editable = (
        *(f"packages/{p}" for p in PACKAGES),
        "packages/audio-core[test]",
        f"{EXAMPLE}[test]",
    )
    install(session, editable=editable)
    pytest(session, "integration", "tests/integration", f"{EXAMPLE}/tests")
