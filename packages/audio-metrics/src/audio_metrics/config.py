"""Configuration classes: the classifier's and each metric's (frozen attrs, every field defaulted).

Metric options are set on the ``audio-run evaluate`` command line as ``NAME.FIELD=VALUE``
(``is.splits=2``, ``ndb.k=20``); the classifier's through ``audio-run classifier train`` flags.
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen
from attrs import validators as v

from audio_core.config import one_of

ISVariant = Literal["standard", "reference"]
MISVariant = Literal["exact", "reference"]


def _positive_tuple(instance: object, attribute: object, value: tuple[int, ...]) -> None:
    if not value or any(int(x) <= 0 for x in value):
        raise ValueError(f"must be a non-empty list of positive integers; got {list(value)}")


@frozen(kw_only=True)
class ClassifierConfig:
    """The SC09 ResNeXt on log-mel spectrograms.

    Attributes:
        sample_rate, clip_len: input clips (1 s at 16 kHz); shorter ones are zero-padded.
        n_fft, hop, n_mels: the log-mel front end (25 ms windows, 10 ms hop, 40 bands).
        widths: output channels of each stage (the first stage keeps full resolution, later
            ones halve it). blocks: residual blocks per stage.
        cardinality: groups of the 3x3 convolution; group_width: channels per group in the
            first stage (doubling with each stage, as in ResNeXt).
        dropout: before the final linear layer.
    """

    sample_rate: int = field(default=16000, validator=v.gt(0))
    clip_len: int = field(default=16000, validator=v.gt(0))
    n_fft: int = field(default=400, validator=v.gt(0))
    hop: int = field(default=160, validator=v.gt(0))
    n_mels: int = field(default=40, validator=v.gt(0))
    widths: tuple[int, ...] = field(default=(64, 128, 256), validator=_positive_tuple)
    blocks: int = field(default=3, validator=v.gt(0))
    cardinality: int = field(default=8, validator=v.gt(0))
    group_width: int = field(default=4, validator=v.gt(0))
    dropout: float = field(default=0.2, validator=[v.ge(0.0), v.lt(1.0)])


@frozen(kw_only=True)
class FIDConfig:
    """FID. ``eps``: added to both covariance diagonals when ``sqrtm`` of their product fails."""

    eps: float = field(default=1e-6, validator=v.gt(0.0))


@frozen(kw_only=True)
class ISConfig:
    """IS.

    Attributes:
        variant: ``standard`` (``exp E KL(p(y|x) || p(y))``) or ``reference`` (the SaShiMi
            reference's formula on a seeded half of the samples, which the paper's numbers
            use; see the README).
        splits: ``standard`` only: parts the score is averaged over (1: the definition; 10:
            Salimans et al.'s code).
        seed: ``reference`` only: the shuffle that picks the half (the reference's 0).
    """

    variant: ISVariant = field(default="standard", validator=one_of(ISVariant))
    splits: int = field(default=1, validator=v.ge(1))
    seed: int = field(default=0, validator=v.ge(0))


@frozen(kw_only=True)
class MISConfig:
    """mIS.

    Attributes:
        variant: ``exact`` (every ordered pair, in O(n)) or ``reference`` (``pairs`` random
            pairs drawn with ``RandomState(seed)``, as the reference samples them).
    """

    variant: MISVariant = field(default="exact", validator=one_of(MISVariant))
    pairs: int = field(default=10000, validator=v.ge(1))
    seed: int = field(default=0, validator=v.ge(0))


@frozen(kw_only=True)
class AMConfig:
    """AM score (no options: the prior is the reference set's mean prediction)."""


@frozen(kw_only=True)
class NDBConfig:
    """NDB. ``k``: k-means bins on the training activations; ``alpha``: the per-bin test's
    significance level; ``max_iter``: k-means iterations; ``seed``: k-means'
    ``random_state`` (-1: drawn from ``evaluate --seed``; 0 is the reference's)."""

    k: int = field(default=50, validator=v.ge(2))
    seed: int = field(default=-1, validator=v.ge(-1))
    alpha: float = field(default=0.05, validator=[v.gt(0.0), v.lt(1.0)])
    max_iter: int = field(default=300, validator=v.gt(0))
