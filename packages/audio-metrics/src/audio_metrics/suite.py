"""The registered metrics: what ``audio-run evaluate`` computes for every set of samples.

A :class:`~audio_core.MetricSpec`'s target takes the metric's config and returns a
:class:`Metric`: ``compute(generated, reference, rng)`` returns named numbers, and
``directions`` says for each whether higher or lower is better. Third-party plugins register
their own metrics the same way and ``evaluate`` reports them next to these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from . import metrics as m
from .config import AMConfig, FIDConfig, ISConfig, MISConfig, NDBConfig

Direction = Literal["higher", "lower"]


@frozen
class Features:
    """A set's classifier outputs.

    Attributes:
        activations: penultimate activations ``(n, dim)``. probs: softmax ``(n, classes)``.
        names: one per row (file names, or ``split/index`` for dataset items).
        labels: true classes where known (dataset items), else ``None``.
    """

    activations: NDArray[np.float64]
    probs: NDArray[np.float64]
    names: tuple[str, ...]
    labels: NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    def take(self, index: NDArray[np.int64]) -> Features:
        """The rows ``index`` (in that order)."""
        return Features(
            self.activations[index],
            self.probs[index],
            tuple(self.names[i] for i in index.tolist()),
            None if self.labels is None else self.labels[index],
        )


class Metric(ABC):
    """One metric, built from its config by its record's target."""

    #: Every number ``compute`` returns, and which direction is better.
    directions: ClassVar[dict[str, Direction]]

    @abstractmethod
    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        """The metric of ``generated`` against ``reference`` (the training set's features)."""


class FID(Metric):
    directions: ClassVar[dict[str, Direction]] = {"fid": "lower"}

    def __init__(self, config: FIDConfig) -> None:
        self.eps = config.eps

    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        return {"fid": m.fid(generated.activations, reference.activations, eps=self.eps)}


class IS(Metric):
    directions: ClassVar[dict[str, Direction]] = {"is": "higher", "is_std": "lower"}

    def __init__(self, config: ISConfig) -> None:
        self.config = config
        self.splits = config.splits

    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        if self.config.variant == "reference":
            return {"is": m.inception_score_reference(generated.probs, seed=self.config.seed)}
        mean, std = m.inception_score(generated.probs, splits=self.splits)
        return {"is": mean, "is_std": std} if self.splits > 1 else {"is": mean}


class MIS(Metric):
    directions: ClassVar[dict[str, Direction]] = {"mis": "higher"}

    def __init__(self, config: MISConfig) -> None:
        self.config = config

    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        if self.config.variant == "reference":
            value = m.modified_inception_score_reference(
                generated.probs, pairs=self.config.pairs, seed=self.config.seed
            )
            return {"mis": value}
        return {"mis": m.modified_inception_score(generated.probs)}


class AM(Metric):
    directions: ClassVar[dict[str, Direction]] = {"am": "lower"}

    def __init__(self, config: AMConfig) -> None:
        pass

    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        return {"am": m.am_score(generated.probs, reference.probs.mean(axis=0))}


class NDB(Metric):
    directions: ClassVar[dict[str, Direction]] = {
        "ndb": "lower",
        "ndb_k": "lower",
        "ndb_js": "lower",
    }

    def __init__(self, config: NDBConfig) -> None:
        self.config = config
        self._bins: tuple[Features, m.NDBBins] | None = None

    def compute(
        self, generated: Features, reference: Features, rng: np.random.Generator
    ) -> dict[str, float]:
        # The bins depend only on the reference set: fit once, reuse for every generated set.
        if self._bins is None or self._bins[0] is not reference:
            bins = m.NDBBins(
                reference.activations,
                k=self.config.k,
                rng=rng,
                max_iter=self.config.max_iter,
                seed=None if self.config.seed < 0 else self.config.seed,
            )
            self._bins = (reference, bins)
        result = self._bins[1].compare(generated.activations, alpha=self.config.alpha)
        return {"ndb": float(result.different), "ndb_k": result.ratio, "ndb_js": result.js}


def build_fid(config: FIDConfig) -> Metric:
    return FID(config)


def build_is(config: ISConfig) -> Metric:
    return IS(config)


def build_mis(config: MISConfig) -> Metric:
    return MIS(config)


def build_am(config: AMConfig) -> Metric:
    return AM(config)


def build_ndb(config: NDBConfig) -> Metric:
    return NDB(config)
