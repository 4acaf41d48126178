"""Run the installed ``audio-run`` console script, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
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
