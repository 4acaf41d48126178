"""The paper's presets: parameter counts and receptive field."""

from __future__ import annotations

import pytest

from audio_models.builders import build_samplernn, build_sashimi, build_wavenet
from audio_models.config import SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig

# (build, paper's figure in millions); the figures we get are stated in the README.
PRESETS = {
    "sashimi-sc09-glu": (lambda: build_sashimi(SaShiMiModelConfig()), 4.8, 4.764),
    "sashimi-sc09-no-glu": (lambda: build_sashimi(SaShiMiModelConfig(glu=False)), 4.1, 4.072),
    "wavenet-sc09": (lambda: build_wavenet(WaveNetConfig()), 4.2, 4.205),
    "samplernn": (lambda: build_samplernn(SampleRNNConfig()), 35.0, 37.086),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_count_is_within_ten_percent_of_the_paper(name: str) -> None:
    build, paper, ours = PRESETS[name]
    count = sum(p.numel() for p in build().parameters()) / 1e6
    assert count == pytest.approx(ours, abs=0.001)  # what the README states
    assert abs(count - paper) <= 0.1 * paper


def test_wavenet_preset_sees_1024_samples() -> None:
    assert WaveNetConfig().receptive_field == 1024
    assert build_wavenet(WaveNetConfig()).backbone.receptive_field == 1024  # type: ignore[union-attr]
