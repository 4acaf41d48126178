"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
# The plugin snippet imports a package that does not exist; every other block must run.
BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    if "my_package" not in block
]


def test_the_readme_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip()


def test_documented_output_reads_print_comments() -> None:
    from audio_core.testing import documented_output, readme_python_blocks

    block = (
        "x = 1\nprint(x)  # 1\nfor i in range(2):\n    print(i)\n# 0\n# 1\ny = 2  # not output\n"
    )
    assert documented_output(block) == ["1", "0", "1"]
    assert readme_python_blocks("a\n```python\nprint(1)\n```\n```bash\nls\n```\n") == ["print(1)\n"]
