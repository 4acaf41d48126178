"""Fixtures: fake installed distributions and throwaway plugin modules.

A fake distribution is a real ``*.dist-info`` folder (METADATA + entry_points.txt) next to its
module in a temporary folder put on ``sys.path``, so ``importlib.metadata`` finds it exactly as
it finds an installed package.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The records the throwaway plugins below return. Kept as source text so each fake
# distribution gets its own module file.
TOY_HEADER = """
from typing import Literal
from attrs import field, frozen
from attrs import validators as v
from audio_core import BackboneSpec, DatasetSpec, KernelSpec, MetricSpec, ModelSpec, hookimpl

@frozen(kw_only=True)
class ToyModelConfig:
    d_model: int = field(default=64, validator=v.gt(0))
    pool: tuple[int, ...] = (4, 4)
    mode: Literal["causal", "bidirectional"] = "causal"
    dropout: float = field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])

@frozen(kw_only=True)
class ToyDataConfig:
    root: str = "data"
    sample_len: int = field(default=16000, validator=v.gt(0))
    mono: bool = True
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for fake distributions and plugin modules; cleaned up after."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "")).startswith(str(folder)):
            del sys.modules[name]
    importlib.invalidate_caches()


WriteModule = Callable[[str, str], str]
FakeDist = Callable[..., str]


@pytest.fixture
def write_module(site: Path) -> WriteModule:
    """``write_module(name, body)`` writes ``<name>.py`` (with the toy header) on sys.path."""

    def write(name: str, body: str) -> str:
        (site / f"{name}.py").write_text(TOY_HEADER + textwrap.dedent(body))
        importlib.invalidate_caches()
        return name

    return write


@pytest.fixture
def fake_dist(site: Path, write_module: WriteModule) -> FakeDist:
    """``fake_dist(dist, version, module, body, entry_name=dist)``: an installed distribution
    whose ``audio_run`` entry point ``entry_name`` is the module ``module`` with ``body``."""

    def make(dist: str, version: str, module: str, body: str, entry_name: str | None = None) -> str:
        write_module(module, body)
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[audio_run]\n{entry_name or dist} = {module}\n")
        importlib.invalidate_caches()
        return dist

    return make


TOY = """
@hookimpl
def register_models():
    return [ModelSpec(name="toy", config_cls=ToyModelConfig, target="toy_cli:build",
                      summary="a toy model", aliases=("t",))]

@hookimpl
def register_datasets():
    return [DatasetSpec(name="tones", config_cls=ToyDataConfig, target="toy_cli:data",
                        summary="sine tones")]
"""


@pytest.fixture
def toy(write_module: WriteModule) -> list[str]:
    """Arguments that register the toy plugin (a model ``toy``, a dataset ``tones``)."""
    write_module("toy_cli", TOY)
    return ["--plugin", "toy_cli"]


@pytest.fixture
def toy_body() -> str:
    """The toy plugin's source, for a second module that registers the same names."""
    return TOY
