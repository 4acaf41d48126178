"""mos-tools installs alone: no torch, no sibling, no audio_run plugin."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import distribution, distributions, entry_points


def runtime_requirements() -> list[str]:
    requires = distribution("sashimi-mos-tools").requires or []
    return [r for r in requires if not re.search(r"extra\s*==", r)]


def test_its_only_runtime_dependencies_are_the_web_server() -> None:
    """Flask and waitress for `serve` (pure Python): nothing numeric, nothing of ours."""
    names = sorted(
        re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in runtime_requirements()
    )
    assert names == ["flask", "waitress"]


def test_its_environment_has_no_torch() -> None:
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("torchaudio") is None


def test_no_other_package_of_ours_is_installed() -> None:
    ours = {
        d.metadata["Name"] for d in distributions() if d.metadata["Name"].startswith("sashimi-")
    }
    assert ours == {"sashimi-mos-tools"}


def test_it_is_not_an_audio_run_plugin() -> None:
    assert list(entry_points(group="audio_run")) == []
