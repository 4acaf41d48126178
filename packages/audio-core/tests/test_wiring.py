"""In this package's own environment, the only ``audio_run`` entry point is audio-core's."""

from __future__ import annotations

from importlib.metadata import entry_points

from audio_core.testing import check_wiring, sibling_closure


def test_audio_core_stands_alone() -> None:
    assert sibling_closure("sashimi-audio-core") == {"sashimi-audio-core"}
    check_wiring("sashimi-audio-core")


def test_the_entry_point_names_the_plugin_module() -> None:
    (ep,) = [ep for ep in entry_points(group="audio_run") if ep.name == "sashimi-audio-core"]
    assert ep.value == "audio_core.plugin"
