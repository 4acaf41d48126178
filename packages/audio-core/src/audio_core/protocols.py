"""What the runner needs from the parts plugins build: datasets and models, by duck typing.

The runner never imports a sibling package; it checks that a built part has these members
and refuses one that lacks them in one line naming the part and what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

IGNORE_INDEX = -100
"""The class index of padding in a dataset's codes (``torch.nn.functional.cross_entropy``'s
default ``ignore_index``): a model leaves such positions out of its loss and likelihoods and
sees them as its start token."""


@runtime_checkable
class Encoding(Protocol):
    """How waveforms became the classes a dataset yields."""

    bits: int

    def decode(self, codes: Any) -> Any:
        """Class indices (an integer tensor) to waveform values in ``[-1, 1]``."""
        ...


@runtime_checkable
class AudioDataset(Protocol):
    """A dataset target's return value.

    ``split(name)`` (``train``, ``val``, ``test``) gives a ``torch.utils.data.Dataset`` whose
    items are ``(codes, label)``: an ``int64`` tensor of ``sample_len`` classes (padding, after
    a clip shorter than ``sample_len``, holds :data:`IGNORE_INDEX`) and an integer label (``-1``
    when unlabelled).
    """

    sample_rate: int
    sample_len: int
    encoding: Encoding

    def split(self, name: str) -> Any: ...


@runtime_checkable
class TrainableModel(Protocol):
    """A model target's return value: a ``torch.nn.Module`` whose ``forward(x)`` is the training
    loss in nats (so DistributedDataParallel sees a forward call), with ``loss(x)`` returning
    ``(nats, bits)`` and ``generate(...)`` for sampling."""

    def loss(self, x: Any) -> Any: ...

    def generate(self, n: int, length: int, **options: Any) -> Any: ...


def missing_members(obj: Any, members: Sequence[str]) -> list[str]:
    """The ``members`` (attribute or method names) that ``obj`` lacks."""
    return [name for name in members if not hasattr(obj, name)]


DATASET_MEMBERS = ("split", "sample_rate", "sample_len", "encoding")
MODEL_MEMBERS = ("loss", "generate")
