"""The pinned torch + torchaudio pair imports together in this environment and computes."""

from __future__ import annotations

import torch
import torchaudio


def test_torch_and_torchaudio_are_one_release() -> None:
    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]


def test_mu_law_encoding_matches_its_closed_form() -> None:
    # floor((F(x) + 1) / 2 * 255 + 0.5) with F(-1) = -1, F(0) = 0, F(1) = 1
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert torchaudio.functional.mu_law_encoding(x, 256).tolist() == [0, 128, 255]
