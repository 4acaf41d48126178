"""Model options as attrs classes: what the ``[model]`` section of a run config holds.

Importing this module costs no torch (the plugin imports it to register the models).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import attrs
from attrs import field, frozen
from attrs import validators as v

from audio_core.config import one_of
from ssm_kernels.config import S4Config, S4DConfig

KernelName = Literal["s4", "s4d"]
RNNCell = Literal["gru", "lstm"]


def _positive_tuple(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not all(isinstance(p, int) and p >= 1 for p in value):
        raise ValueError(f"'{attribute.name}' must hold integers >= 1; got {value!r}")


@frozen(kw_only=True)
class SaShiMiConfig:
    """The SaShiMi backbone (``sashimi`` backbone; the paper's SC09 defaults).

    Attributes:
        d_model: width of the outermost tier.
        n_layers: residual layers (an S4 block and a feed-forward block each) per tier.
        pool: pooling factor of each tier boundary, outermost first (``()`` for a flat stack).
        expand: width multiplier at each pooling step.
        ff: expansion of the feed-forward blocks.
        glu: S4 blocks end in a GLU output projection (the released SC09 model has it).
        bidirectional: non-causal S4 blocks (for diffusion); no recurrent mode then.
        unet: also put ``n_layers`` layers on the way down, before each pooling step.
        dropout: dropout inside the blocks.
        l_max: the training sequence length in samples (S4 parametrises its kernel at it).
        kernel: ``s4`` or ``s4d``; the next fields are passed on to it.
        d_state, init, rank, n_ssm, dt_min, dt_max, discretization, ssm_lr: the kernel's options
            (``init=""`` keeps the kernel's own default; ``rank`` and ``discretization`` apply
            to ``s4`` and ``s4d`` only, respectively).
    """

    d_model: int = field(default=64, validator=v.ge(1))
    n_layers: int = field(default=8, validator=v.ge(0))
    pool: tuple[int, ...] = field(default=(4, 4), validator=_positive_tuple)
    expand: int = field(default=2, validator=v.ge(1))
    ff: int = field(default=2, validator=v.ge(1))
    glu: bool = True
    bidirectional: bool = False
    unet: bool = False
    dropout: float = field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])
    l_max: int = field(default=16000, validator=v.ge(1))
    kernel: KernelName = field(default="s4", validator=one_of(KernelName))
    d_state: int = field(default=64, validator=v.ge(2))
    init: str = ""
    rank: int = field(default=1, validator=v.ge(1))
    n_ssm: int = field(default=1, validator=v.ge(1))
    dt_min: float = field(default=0.001, validator=v.gt(0.0))
    dt_max: float = field(default=0.1, validator=v.gt(0.0))
    discretization: Literal["zoh", "bilinear"] = field(
        default="zoh", validator=one_of(Literal["zoh", "bilinear"])
    )
    ssm_lr: float = field(default=0.001, validator=v.ge(0.0))

    def __attrs_post_init__(self) -> None:
        self.kernel_config()  # the kernel validates its own options

    def kernel_config(self) -> S4Config | S4DConfig:
        """The ``ssm_kernels`` config these options describe."""
        common = {
            "d_state": self.d_state,
            "n_ssm": self.n_ssm,
            "dt_min": self.dt_min,
            "dt_max": self.dt_max,
            "lr": self.ssm_lr,
        }
        if self.kernel == "s4":
            s4 = S4Config(rank=self.rank, **common)  # type: ignore[arg-type]
            return attrs.evolve(s4, init=self.init) if self.init else s4  # type: ignore[arg-type]
        s4d = S4DConfig(discretization=self.discretization, **common)  # type: ignore[arg-type]
        return attrs.evolve(s4d, init=self.init) if self.init else s4d  # type: ignore[arg-type]

    @property
    def pool_product(self) -> int:
        return math.prod(self.pool)


@frozen(kw_only=True)
class SaShiMiModelConfig(SaShiMiConfig):
    """The ``sashimi`` model: a SaShiMi backbone between a ``2**bits``-way embedding and a
    linear head, trained by next-sample prediction.

    Attributes:
        bits: quantisation bits of the input and output (256 classes at 8).
    """

    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])


@frozen(kw_only=True)
class WaveNetConfig:
    """The ``wavenet`` model: dilated causal convolutions with gated activations.

    The defaults are the SaShiMi paper's SC09 baseline size: one cycle of dilations
    ``1, 2, ..., 512`` (receptive field 1024 samples) with 256 channels, about 4.2 M parameters.

    Attributes:
        residual_channels, dilation_channels, skip_channels: widths of the residual stream,
            of the gated activation and of the skip stream.
        kernel_size: taps of each dilated convolution.
        dilation_cycles: repetitions of the dilation cycle.
        dilation_depth: layers per cycle; layer ``i`` of a cycle has dilation ``2**i``.
        bits: quantisation bits (``2**bits`` classes).
    """

    residual_channels: int = field(default=256, validator=v.ge(1))
    dilation_channels: int = field(default=256, validator=v.ge(1))
    skip_channels: int = field(default=256, validator=v.ge(1))
    kernel_size: int = field(default=2, validator=v.ge(2))
    dilation_cycles: int = field(default=1, validator=v.ge(1))
    dilation_depth: int = field(default=10, validator=v.ge(1))
    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.dilation_depth)) * self.dilation_cycles

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


@frozen(kw_only=True)
class SampleRNNConfig:
    """The ``samplernn`` model: recurrent frame-level tiers over a sample-level MLP.

    Attributes:
        frame_sizes: samples per frame of each frame-level tier, top first; each must be a
            multiple of the next, and the last is also the sample-level MLP's input window.
            The default 3-tier model, ``(16, 4)``, is the SaShiMi paper's baseline shape.
        dim: width of the RNNs and the MLP.
        n_rnn: stacked RNN layers per frame-level tier.
        cell: ``gru`` or ``lstm``.
        embedding: width of the sample-level input embedding.
        bits: quantisation bits (``2**bits`` classes).
    """

    frame_sizes: tuple[int, ...] = field(default=(16, 4), validator=_positive_tuple)
    dim: int = field(default=1024, validator=v.ge(1))
    n_rnn: int = field(default=2, validator=v.ge(1))
    cell: RNNCell = field(default="gru", validator=one_of(RNNCell))
    embedding: int = field(default=256, validator=v.ge(1))
    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])

    def __attrs_post_init__(self) -> None:
        sizes = self.frame_sizes
        if not sizes:
            raise ValueError("'frame_sizes' needs at least one frame-level tier")
        for outer, inner in itertools.pairwise(sizes):
            if outer % inner:
                raise ValueError(
                    f"each frame size must be a multiple of the next; got {outer} then {inner}"
                )
