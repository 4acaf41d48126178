"""Python examples in the READMEs that need every package installed run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
READMES = [ROOT / "examples" / "audio-run-plugin-example" / "README.md"]
BLOCKS = [
    pytest.param(block, id=f"{readme.parent.name}-{index}")
    for readme in READMES
    for index, block in enumerate(
        re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    )
]


def test_there_is_something_to_run() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_python_block_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip()
