"""Run the installed ``audio-run`` console script, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

AUDIO_RUN = Path(sys.executable).parent / "audio-run"


@pytest.fixture
def audio_run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``audio_run(*args, env={...}, cwd=...)`` -> the finished process (text output)."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, **(env or {})}
        return subprocess.run(
            [str(AUDIO_RUN), *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd,
            check=False,
            timeout=120,
        )

    return run


@pytest.fixture(autouse=True, scope="session")
def _private_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the compiled generation step and the metrics' feature cache out of the home
    directory: every ``audio-run`` these tests start inherits these variables."""
    root = tmp_path_factory.mktemp("caches")
    saved = {k: os.environ.get(k) for k in ("AUDIO_MODELS_CACHE", "AUDIO_METRICS_CACHE")}
    os.environ["AUDIO_MODELS_CACHE"] = str(root / "models")
    os.environ["AUDIO_METRICS_CACHE"] = str(root / "metrics")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
