"""The pinned torch + torchaudio pair imports together in this environment and computes."""

from __future__ import annotations

import math

import torch
import torchaudio


def test_torch_and_torchaudio_are_one_release() -> None:
    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]


def test_a_tone_peaks_in_the_mel_band_that_holds_its_frequency() -> None:
    sample_rate, freq, n_mels = 16000, 1000.0, 64
    t = torch.arange(sample_rate) / sample_rate
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, n_mels=n_mels)(
        torch.sin(2 * math.pi * freq * t)
    )
    # the mel band whose centre is nearest to 1 kHz on the HTK mel scale
    to_mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    centres = torch.linspace(to_mel(0), to_mel(sample_rate / 2), n_mels + 2)[1:-1]
    expected = int(torch.argmin((centres - to_mel(freq)).abs()))
    assert int(mel.mean(dim=-1).argmax()) == expected
