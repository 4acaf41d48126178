"""Dataset options as attrs classes: what the ``[dataset]`` section of a run config holds.

Importing this module costs no torch (the plugin imports it to register the datasets).
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen
from attrs import validators as v

from audio_core.config import one_of

Quantization = Literal["mu-law", "linear"]
Scheme = Literal["reference", "standard"]
TrainOn = Literal["train", "all"]
ResampleRule = Literal["resample", "refuse"]


@frozen(kw_only=True)
class _AudioConfig:
    root: str = "data"
    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])
    quantization: Quantization = field(default="mu-law", validator=one_of(Quantization))
    scheme: Scheme = field(default="reference", validator=one_of(Scheme))
    sample_rate: int = field(default=16000, validator=v.gt(0))
    resample: ResampleRule = field(default="resample", validator=one_of(ResampleRule))


@frozen(kw_only=True)
class SC09Config(_AudioConfig):
    """``sc09``: the spoken digits of Speech Commands, 1 s at 16 kHz.

    Attributes:
        root: the ``sc09`` folder of the published archive, or a full Speech Commands folder
            (only the ten digit words are read).
        sample_len: samples per clip; longer ones keep their first ``sample_len`` samples,
            shorter ones are padded at the end with the ignore index (left out of the loss
            and the likelihoods, as the reference does).
        bits, quantization, scheme: how clips become classes (8-bit mu-law by default, with
            the reference's per-clip min-max scaling and truncation: ``scheme="reference"``;
            ``"standard"`` is the textbook rounding without scaling).
        sample_rate, resample: files at another rate are resampled (with a notice) or, with
            ``resample="refuse"``, rejected.
        train_on: ``train`` (the training split) or ``all`` (every clip of every split, as
            the DiffWave reference trains its unconditional SC09 models; validation and test
            stay as they are).
    """

    root: str = "data/sc09"
    sample_len: int = field(default=16000, validator=v.gt(0))
    train_on: TrainOn = field(default="train", validator=one_of(TrainOn))


@frozen(kw_only=True)
class SC09SynthConfig(SC09Config):
    """``sc09-synth``: the built-in, code-generated SC09 stand-in (no download).

    Attributes:
        root: where the clips live; written on first use if missing.
        per_class: clips per word when it is written (``audio-run data make sc09-synth``).
    """

    root: str = "data/sc09-synth"
    per_class: int = field(default=100, validator=v.ge(10))


@frozen(kw_only=True)
class FolderConfig(_AudioConfig):
    """``folder``: any folder of wav files, split by file and cut into windows.

    Attributes:
        root: the folder (searched recursively for ``*.wav``, in sorted order).
        sample_len: samples per window; each file gives ``floor(length / sample_len)``
            non-overlapping windows (the remainder is dropped).
        train_percentage: the first ``round(p n)`` files (sorted by path) are for training;
            the rest are split in half, validation first.
    """

    root: str = "data/wavs"
    sample_len: int = field(default=16000, validator=v.gt(0))
    train_percentage: float = field(default=0.88, validator=[v.gt(0.0), v.lt(1.0)])


@frozen(kw_only=True)
class BeethovenConfig(FolderConfig):
    """``beethoven``: piano sonatas, 8-bit linear, windows of 128,000 samples (8 s)."""

    root: str = "data/beethoven"
    quantization: Quantization = field(default="linear", validator=one_of(Quantization))
    sample_len: int = field(default=128_000, validator=v.gt(0))


@frozen(kw_only=True)
class YouTubeMixConfig(FolderConfig):
    """``youtubemix``: piano music, 8-bit mu-law, windows of 131,072 samples."""

    root: str = "data/youtubemix"
    sample_len: int = field(default=131_072, validator=v.gt(0))
