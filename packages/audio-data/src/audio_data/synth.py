"""``sc09-synth``: code-generated, speech-like spoken "digits" in the SC09 layout.

Each of the ten classes has its own vowel path (formant targets F1-F3 it glides through), its
own pitch contour (rising, falling, rise-fall, ...), its own onset consonant (a noise burst in
a class-specific band, or none) and its own typical length. Every clip comes from a "speaker"
with its own pitch range, vocal-tract scale (formants), speaking rate and loudness, and lands
at a random place in the 1 s window. Synthesis is additive: the harmonics of the pitch
contour, weighted by formant resonances, plus breath noise.

The result is learnable (the classes differ in ways a spectrogram shows) but not trivially
predictable (random phase-free noise, speakers and timing keep a waveform model's NLL far from
zero). Everything is a pure function of (class, speaker, take), so the dataset is identical
across runs, processes and machines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from audio_core.io import is_ours, replacing_dir, write_wav

from .errors import DataError

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 16000
MARKER = ".sc09-synth-complete"
VERSION = 2

# Per class: formant targets (F1, F2, F3) in Hz the vowel glides through; pitch contour
# (f0 multiplier at 0, 0.5 and 1 of the word); onset burst band (Hz, 0 = none); duration (s).
_CLASSES: tuple[
    tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float], float, float], ...
] = (
    (((300, 2300, 3000), (500, 1500, 2500), (450, 900, 2400)), (1.0, 1.1, 0.8), 5500.0, 0.60),
    (((600, 1000, 2400), (700, 1200, 2500), (400, 1900, 2600)), (1.15, 1.0, 0.85), 0.0, 0.45),
    (((350, 900, 2300), (320, 800, 2200)), (1.2, 1.05, 0.9), 3500.0, 0.40),
    (((500, 1400, 1700), (300, 2300, 3000)), (0.9, 1.2, 0.9), 4500.0, 0.55),
    (((550, 900, 2400), (500, 1000, 1700)), (1.0, 0.95, 0.7), 6500.0, 0.50),
    (((750, 1300, 2500), (350, 2100, 2900)), (0.85, 1.0, 1.25), 6500.0, 0.55),
    (((400, 2100, 2800), (650, 1600, 2500)), (1.25, 0.9, 0.8), 5000.0, 0.50),
    (((550, 1800, 2500), (500, 1500, 2400), (350, 1700, 2500)), (1.0, 1.3, 1.0), 5200.0, 0.65),
    (((550, 1900, 2500), (420, 2200, 2900)), (1.1, 1.1, 1.1), 0.0, 0.40),
    (((300, 1700, 2500), (700, 1300, 2400), (400, 2000, 2600)), (0.9, 0.75, 1.05), 2500.0, 0.60),
)


def _seed(label: int, speaker: int, take: int) -> int:
    return (label * 1_000_003 + speaker * 10_009 + take * 101 + VERSION) & 0x7FFF_FFFF


def _interp(points: Tensor, s: Tensor) -> Tensor:
    """Piecewise-linear path through ``points (P, D)`` at progress ``s`` in [0, 1] -> (T, D)."""
    P = points.shape[0]
    if P == 1:
        return points.expand(s.shape[0], -1)
    pos = s.clamp(0, 1) * (P - 1)
    lo = pos.floor().long().clamp(max=P - 2)
    frac = (pos - lo).unsqueeze(-1)
    out: Tensor = points[lo] * (1 - frac) + points[lo + 1] * frac
    return out


def _smooth(t: Tensor, start: float, stop: float, ramp: float) -> Tensor:
    """1 inside [start, stop], raised-cosine ramps of ``ramp`` seconds at both ends."""
    up = ((t - start) / ramp).clamp(0, 1)
    down = ((stop - t) / ramp).clamp(0, 1)
    return (0.5 - 0.5 * torch.cos(math.pi * up)) * (0.5 - 0.5 * torch.cos(math.pi * down))


def _band_noise(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    noise = torch.randn(n, generator=gen, dtype=torch.float64)
    spectrum = torch.fft.rfft(noise)
    freqs = torch.fft.rfftfreq(n, 1 / SAMPLE_RATE, dtype=torch.float64)
    spectrum = spectrum * ((freqs >= low) & (freqs <= high))
    out: Tensor = torch.fft.irfft(spectrum, n=n)
    return out / out.abs().max().clamp_min(1e-9)


def synthesize(label: int, speaker: int, take: int) -> Tensor:
    """One 1 s clip (float32, 16 kHz, peak below 1) of class ``label`` by ``speaker``."""
    if not 0 <= label < len(WORDS):
        raise ValueError(f"label must be in [0, 9]; got {label}")
    gen = torch.Generator().manual_seed(_seed(label, speaker, take))
    voice = torch.Generator().manual_seed(speaker * 7919 + 17)

    def u(lo: float, hi: float, g: torch.Generator = gen) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    formants, contour, burst, base_duration = _CLASSES[label]
    f0_base = u(90, 240, voice)  # the speaker's voice
    tract = u(0.86, 1.16, voice)
    rate = u(0.8, 1.2, voice) * u(0.92, 1.08)
    loudness = u(0.25, 0.8)
    duration = min(0.8, base_duration * rate)
    burst_len = 0.07 * rate if burst else 0.0
    onset = u(0.03, max(0.04, 0.97 - duration - burst_len))
    t = torch.arange(SAMPLE_RATE, dtype=torch.float64) / SAMPLE_RATE
    vowel_start = onset + burst_len
    s = ((t - vowel_start) / duration).clamp(0, 1)

    wobble = 1 + 0.02 * torch.sin(2 * math.pi * u(4, 6) * t + u(0, 6.28))
    shape = _interp(torch.tensor(contour, dtype=torch.float64).unsqueeze(-1), s).squeeze(-1)
    f0 = f0_base * shape * wobble
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SAMPLE_RATE
    paths = _interp(torch.tensor(formants, dtype=torch.float64) * tract, s)  # (T, 3)
    paths = paths * (1 + 0.03 * torch.randn(3, generator=gen, dtype=torch.float64))
    k = torch.arange(1, 41, dtype=torch.float64).unsqueeze(-1)  # harmonics (K, 1)
    # Harmonic amplitudes change slowly: compute them every 32 samples and interpolate.
    coarse = slice(None, None, 32)
    freq = k * f0[coarse]  # (K, T / 32)
    bandwidth = torch.tensor([90.0, 120.0, 180.0], dtype=torch.float64)
    gain = torch.tensor([1.0, 0.6, 0.3], dtype=torch.float64)
    centre = paths[coarse].T.unsqueeze(1)  # (3, 1, T / 32)
    resonance = (
        gain[:, None, None]
        * torch.exp(-(((freq.unsqueeze(0) - centre) / bandwidth[:, None, None]) ** 2))
    ).sum(0)
    resonance = resonance * (freq < 7000) / k.sqrt()
    resonance = torch.nn.functional.interpolate(
        resonance.unsqueeze(0), size=SAMPLE_RATE, mode="linear", align_corners=False
    ).squeeze(0)
    voiced = (resonance * torch.sin(k * phase)).sum(0)
    voiced = voiced / voiced.abs().max().clamp_min(1e-9)
    envelope = _smooth(t, vowel_start, vowel_start + duration, 0.03)
    breath = 0.05 * torch.randn(SAMPLE_RATE, generator=gen, dtype=torch.float64)
    x = (voiced + breath) * envelope
    if burst:
        band = _band_noise(SAMPLE_RATE, burst * 0.7 * tract, min(7900, burst * 1.3 * tract), gen)
        x = x + 0.5 * band * _smooth(t, onset, vowel_start + 0.01, 0.01)
    x = x + 0.003 * torch.randn(SAMPLE_RATE, generator=gen, dtype=torch.float64)  # room noise
    return (loudness * x / x.abs().max().clamp_min(1e-9)).float()


def _split_of(speaker: int, speakers: int) -> str:
    """Speakers, not clips, are split (as Speech Commands does): 80 / 10 / 10, and at least
    one speaker each for validation and test."""
    if speakers < 10:
        return "test" if speaker == speakers - 1 else "val" if speaker == speakers - 2 else "train"
    return "test" if speaker % 10 == 9 else "val" if speaker % 10 == 8 else "train"


def layout(per_class: int) -> list[tuple[int, int, int, str]]:
    """``(label, speaker, take, relative path)`` of every clip, in a fixed order.

    Each speaker says every word ``takes`` times; there are ``ceil(per_class / 2)``
    speakers with two takes each (one if ``per_class`` is odd, for the last one).
    """
    rows = []
    for label, word in enumerate(WORDS):
        for i in range(per_class):
            speaker, take = divmod(i, 2)
            rows.append((label, speaker, take, f"{word}/{speaker:04x}a{label}_nohash_{take}.wav"))
    return rows


def is_complete(root: Path, per_class: int) -> bool:
    marker = root / MARKER
    return (
        marker.is_file()
        and marker.read_text().strip() == f"version={VERSION} per_class={per_class}"
    )


def _is_synth(root: Path) -> bool:
    return is_ours(root) or (root / MARKER).is_file()


def make_sc09_synth(
    root: Path,
    *,
    per_class: int = 100,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``per_class`` clips per word under ``root`` (the SC09 layout), atomically.

    Clips go to a temporary sibling folder first, which is renamed to ``root`` when complete,
    so an interrupted run never leaves a half-written dataset. An existing ``root`` is kept
    unless ``force``.

    Raises:
        DataError: ``root`` exists (and ``force`` is off) or ``per_class`` is below 10.
    """
    if per_class < 10:
        raise DataError(
            f"--per-class must be at least 10 (every split needs speakers); got {per_class}"
        )
    try:
        with replacing_dir(root, force=force, ours=_is_synth) as tmp:
            lists: dict[str, list[str]] = {"val": [], "test": []}
            speakers = -(-per_class // 2)
            for label, speaker, take, rel in layout(per_class):
                write_wav(tmp / rel, synthesize(label, speaker, take), SAMPLE_RATE)
                split = _split_of(speaker, speakers)
                if split in lists:
                    lists[split].append(rel)
                if progress is not None:
                    progress(1)
            (tmp / "validation_list.txt").write_text("".join(f"{r}\n" for r in lists["val"]))
            (tmp / "testing_list.txt").write_text("".join(f"{r}\n" for r in lists["test"]))
            (tmp / MARKER).write_text(f"version={VERSION} per_class={per_class}\n")
    except FileExistsError as exc:
        raise DataError(str(exc)) from None
    return root
