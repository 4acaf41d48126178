"""The README's Python examples run and print what the README says they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def expected_output(block: str) -> list[str]:
    """What a block says it prints: its top-level ``# ...`` lines if it has any, else the
    trailing ``# ...`` comments of its ``print(...)`` lines."""
    lines = block.strip().splitlines()
    comments = [line[2:] for line in lines if line.startswith("# ")]
    if comments:
        return comments
    return [line.split("  # ", 1)[1] for line in lines if line.startswith("print(")]


def test_the_readme_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_prints_what_it_says(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out.strip().splitlines()
    assert out == expected_output(block)
