"""Fixtures that write small SC09-layout folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from audio_data.testing import make_sc09_layout


@pytest.fixture
def make_sc09(tmp_path: Path) -> Callable[..., Path]:
    """``make_sc09(name, extra_words=(), lengths=(16000,))`` -> an SC09-layout folder."""

    def make(
        name: str = "sc09", extra_words: tuple[str, ...] = (), lengths: tuple[int, ...] = (16000,)
    ) -> Path:
        return make_sc09_layout(tmp_path / name, extra_words=extra_words, lengths=lengths)

    return make
