"""The SC09 classifier: a ResNeXt on log-mel spectrograms of 1 s clips.

``forward(waveforms)`` returns logits; :meth:`SC09Classifier.features` returns the penultimate
activations (the globally pooled last stage, what FID and NDB use) and the softmax
probabilities (IS, mIS, AM) in one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ClassifierConfig


class LogMel(nn.Module):
    """Waveforms ``(batch, samples)`` to ``log(mel + 1e-6)``, ``(batch, 1, mels, frames)``."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop,
            n_mels=config.n_mels,
            power=2.0,
        )

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            spec: Tensor = self.mel(x.float())
        return torch.log(spec + 1e-6).unsqueeze(1)


class Block(nn.Module):
    """ResNeXt bottleneck: 1x1 reduce, grouped 3x3 (stride), 1x1 expand, projection shortcut."""

    def __init__(self, c_in: int, c_out: int, inner: int, groups: int, stride: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c_in, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.grouped = nn.Conv2d(inner, inner, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.expand = nn.Conv2d(inner, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.reduce(x)))
        y = F.relu(self.bn2(self.grouped(y)))
        y = self.bn3(self.expand(y))
        return F.relu(y + self.shortcut(x))


class SC09Classifier(nn.Module):
    """ResNeXt over log-mel spectrograms; ``len(labels)`` output classes."""

    def __init__(self, config: ClassifierConfig, n_classes: int) -> None:
        super().__init__()
        self.config, self.n_classes = config, n_classes
        self.frontend = LogMel(config)
        self.norm = nn.BatchNorm2d(1)  # learnt input normalisation of the log-mels
        stem = config.widths[0] // 2 or 1
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c_in = stem
        for stage, width in enumerate(config.widths):
            inner = config.cardinality * config.group_width * 2**stage
            for block in range(config.blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(Block(c_in, width, inner, config.cardinality, stride))
                c_in = width
        self.stages = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, n_classes)
        self.feature_dim = c_in

    def embed(self, waveforms: Tensor) -> Tensor:
        """Penultimate activations ``(batch, feature_dim)`` of waveforms ``(batch, samples)``."""
        x = self.norm(self.frontend(fit_clip(waveforms, self.config.clip_len)))
        x = self.stages(self.stem(x))
        pooled: Tensor = x.mean(dim=(2, 3))
        return pooled

    def forward(self, waveforms: Tensor) -> Tensor:
        logits: Tensor = self.head(self.dropout(self.embed(waveforms)))
        return logits

    @torch.no_grad()
    def features(self, waveforms: Tensor) -> tuple[Tensor, Tensor]:
        """Penultimate activations and softmax probabilities (evaluation mode expected)."""
        h = self.embed(waveforms)
        return h, torch.softmax(self.head(h).float(), dim=-1)


def fit_clip(x: Tensor, length: int) -> Tensor:
    """Zero-pad at the end or keep the first ``length`` samples (last dimension)."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return F.pad(x, (0, length - x.shape[-1]))
