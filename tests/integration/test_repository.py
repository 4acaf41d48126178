"""The repository's own promises: CI runs the README's command, packages are complete."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if p.is_dir())


def readme_commands(heading: str) -> list[str]:
    """The lines of the first ``bash`` block after the heading that starts with ``heading``."""
    section = README.split(f"\n## {heading}", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block, f"no bash block under '## {heading}'"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_the_readme_starts_with_the_main_job_and_the_tests() -> None:
    headings = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    assert headings[:2] == ["Run the main job", "Run the tests"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for line in readme_commands("Run the tests"):
        assert line in ci, f"the README's test command {line!r} is not what .ci/run runs"


def test_there_are_the_six_packages_of_the_design() -> None:
    assert PACKAGES == [
        "audio-core", "audio-data", "audio-metrics", "audio-models", "mos-tools", "ssm-kernels",
    ]  # fmt: skip


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_a_complete_distribution(package: str) -> None:
    folder = ROOT / "packages" / package
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    import_name = package.replace("-", "_")
    assert project["name"] == f"sashimi-{package}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert "test" in project["optional-dependencies"]
    for sibling in (r for r in project["dependencies"] if r.startswith("sashimi-")):
        assert re.fullmatch(r"sashimi-[a-z-]+>=\d+\.\d+,<\d+\.\d+", sibling), sibling
    for name in ("README.md", "CHANGELOG.md"):
        assert (folder / name).read_text().strip()
    assert (folder / "src" / import_name / "py.typed").exists()
    assert list((folder / "tests").glob("test_*.py"))
    entry_points = project.get("entry-points", {}).get("audio_run", {})
    if package == "mos-tools":
        assert entry_points == {}
        # nothing numeric and nothing of ours: the web server of `mos-tools serve` only
        assert [re.split(r"[<>=]", r)[0] for r in project["dependencies"]] == ["flask", "waitress"]
    else:
        assert entry_points == {f"sashimi-{package}": f"{import_name}.plugin"}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_in_the_root_readme(package: str) -> None:
    assert f"packages/{package}" in README


def test_the_gpu_check_installs_every_dependency_of_what_it_runs() -> None:
    """benchmarks/gpu_check.sh runs audio-core, ssm-kernels and audio-models from the source
    tree on a machine with torch only: its requirements must name every other dependency."""
    import subprocess

    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    lines = (ROOT / "benchmarks" / "gpu_check.requirements").read_text().splitlines()
    listed = {re.split(r"[<>=]", line)[0] for line in lines if line and not line.startswith("#")}
    needed = set()
    for package in ("audio-core", "ssm-kernels", "audio-models"):
        project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())
        for requirement in [*project["project"]["dependencies"], *project["project"].get(
            "optional-dependencies", {}).get("test", [])]:  # fmt: skip
            name = re.split(r"[<>=\[ ;]", requirement)[0]
            if not name.startswith(("sashimi-", "torch")):
                needed.add(name)
    assert needed <= listed, needed - listed
    for source in (
        "packages/audio-core/src",
        "packages/ssm-kernels/src",
        "packages/audio-models/src",
    ):
        assert source in script.read_text()
