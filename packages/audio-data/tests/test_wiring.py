"""This package's environment holds it and its declared siblings, and their plugins load."""

from __future__ import annotations

from audio_core.testing import check_wiring, sibling_closure


def test_declared_siblings_follow_the_dependency_direction() -> None:
    assert sibling_closure("sashimi-audio-data") == {"sashimi-audio-core", "sashimi-audio-data"}


def test_only_its_declared_siblings_are_installed_and_their_plugins_load() -> None:
    check_wiring("sashimi-audio-data")
