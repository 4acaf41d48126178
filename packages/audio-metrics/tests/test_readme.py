"""The README's Python examples run and print what the README says they print."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_core.testing import documented_output, readme_python_blocks

BLOCKS = readme_python_blocks((Path(__file__).parents[1] / "README.md").read_text())


def test_the_readme_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 1
    assert all(documented_output(block) for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_prints_what_it_says(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip().splitlines() == documented_output(block)
