"""The README's worked example runs and prints what the README says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_worked_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dropped rater W5: failed 8 gold ratings (allowed: 1)"
    assert "('real', 'quality', 4.15)" in out[1]
    assert "('sashimi', 'quality', 2.75)" in out[1]
    assert (tmp_path / "mos-study" / "hits" / "demo" / "manifest.json").is_file()
