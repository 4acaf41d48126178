"""mos-tools installs alone: no torch, no sibling, no audio_run plugin."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import distribution, distributions, entry_points


def runtime_requirements() -> list[str]:
    requires = distribution("sashimi-mos-tools").requires or []
    return [r for r in requires if not re.search(r"extra\s*==", r)]


def test_it_declares_no_runtime_dependency() -> None:
    assert runtime_requirements() == []


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
