"""Model options as attrs classes: what the ``[model]`` section of a run config holds.

Importing this module costs no torch (the plugin imports it to register the models). The
records of the parts other configs name by default (the ``sashimi`` backbone) are defined
here, beside their config classes.

Pluggable parts are nested tables resolved through the registry: SaShiMi's
``[model.kernel] name = "s4"`` (any registered kernel), the generic language model's
``[model.backbone] name = "sashimi"`` (any registered backbone).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
from attrs import field, frozen
from attrs import validators as v

from audio_core.config import BackboneChoice, KernelChoice, one_of
from audio_core.specs import BackboneSpec
from ssm_kernels.config import S4Config
from ssm_kernels.plugin import S4

NormKind = Literal["scalar", "layer"]
Dequantize = Literal["mu-law", "linear"]


def _positive_tuple(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not all(isinstance(p, int) and p >= 1 for p in value):
        raise ValueError(f"'{attribute.name}' must hold integers >= 1; got {value!r}")


@frozen(kw_only=True)
class SaShiMiConfig:
    """The SaShiMi backbone (``sashimi`` backbone); the defaults are the paper's SC09 model.

    Attributes:
        d_model: width of the outermost tier.
        n_layers: residual S4 layers per tier (each followed by a feed-forward layer).
        pool: pooling factor of each tier boundary, outermost first (``[]`` for a flat stack).
        expand: width multiplier at each pooling step.
        ff: expansion of the feed-forward layers (``0``: no feed-forward layers).
        glu: S4 blocks end in a GLU output projection (the reference's ``final_act: glu``).
        norm: ``scalar`` (the reference's norm for its audio models: one learnt shift and
            scale over all channels) or ``layer`` (a LayerNorm with per-channel parameters).
        unet: the U-Net topology (layers on the way down too, skip connections between
            mirror layers; the reference's ``sashimi-sc09-unet``).
        bidirectional: non-causal S4 blocks and up-pools (for diffusion); no recurrent mode.
        paired_kernels: with ``bidirectional``, each S4 layer has two kernels with their own
            step sizes and a linear map from both directions' ``2 d_model`` channels (no GLU):
            the layer of the reference's ``checkpoints`` branch, which made the paper's
            released DiffWave files (``audio-run checkpoint import`` sets it for them).
            Default: one kernel with two output channels (the reference's current layer).
        dropout: dropout inside the blocks.
        l_max: the training sequence length in samples (S4 tunes its kernel to each tier's).
        kernel: the S4 kernel of every block, a table with ``name`` (``s4``, ``s4d`` or any
            registered kernel) and that kernel's own options.
    """

    d_model: int = field(default=64, validator=v.ge(1))
    n_layers: int = field(default=8, validator=v.ge(0))
    pool: tuple[int, ...] = field(default=(4, 4), validator=_positive_tuple)
    expand: int = field(default=2, validator=v.ge(1))
    ff: int = field(default=2, validator=v.ge(0))
    glu: bool = True
    norm: NormKind = field(default="scalar", validator=one_of(NormKind))
    unet: bool = False
    bidirectional: bool = False
    paired_kernels: bool = False
    dropout: float = field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])
    l_max: int = field(default=16000, validator=v.ge(1))
    kernel: KernelChoice = KernelChoice(name="s4", config=S4Config(), spec=S4)  # noqa: RUF009

    def __attrs_post_init__(self) -> None:
        if self.paired_kernels and not self.bidirectional:
            raise ValueError("paired_kernels needs bidirectional = true (it pairs the directions)")

    @property
    def pool_product(self) -> int:
        return math.prod(self.pool)


@frozen(kw_only=True)
class SaShiMiModelConfig(SaShiMiConfig):
    """The ``sashimi`` model: a SaShiMi backbone between a ``2**bits``-way embedding and a
    linear head, trained by next-sample prediction (the same as ``lm`` with the ``sashimi``
    backbone).

    Attributes:
        bits: quantisation bits of the input and output (256 classes at 8).
    """

    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])


#: The ``sashimi`` backbone record (the default backbone of the ``lm`` model).
SASHIMI_BACKBONE = BackboneSpec(
    name="sashimi",
    config_cls=SaShiMiConfig,
    target="audio_models.builders:build_sashimi_backbone",
    summary="SaShiMi: multi-scale S4 stack with pooling (sequence to sequence)",
    denoiser="audio_models.builders:build_sashimi_denoiser",
)


@frozen(kw_only=True)
class LMConfig:
    """The ``lm`` model: an embedding, any registered backbone and a linear head.

    Attributes:
        bits: quantisation bits (``2**bits`` classes).
        backbone: a table with ``name`` (``sashimi``, ``wavenet`` or any registered
            backbone) and the backbone's own options. The backbone must map
            ``(batch, length, d_model)`` to ``(batch, length, d_output)`` causally and say its
            widths as ``d_model`` / ``d_output`` attributes; generation also needs a recurrent
            mode (``setup_step``, ``default_state``, ``step``).
    """

    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])
    backbone: BackboneChoice = BackboneChoice(  # noqa: RUF009 - frozen, shared safely
        name="sashimi", config=SaShiMiConfig(), spec=SASHIMI_BACKBONE
    )


@frozen(kw_only=True)
class WaveNetConfig:
    """The ``wavenet`` backbone and model; the defaults are the reference's SC09 model
    (4 blocks of 10 layers, receptive field 4093 samples, 4.24 M parameters).

    Attributes:
        layers: layers per block; layer ``i`` of a block has dilation ``2**i``.
        blocks: repetitions of the dilation cycle.
        residual_channels, dilation_channels, skip_channels, end_channels: the widths.
        kernel_size: taps of each dilated convolution.
        d_model: width of the input embedding (the reference's is 256).
        d_output: output width of the backbone (the reference's ``classes``, 256).
        bits: quantisation bits (``2**bits`` classes) of the ``wavenet`` model.
    """

    layers: int = field(default=10, validator=v.ge(1))
    blocks: int = field(default=4, validator=v.ge(1))
    residual_channels: int = field(default=64, validator=v.ge(1))
    dilation_channels: int = field(default=64, validator=v.ge(1))
    skip_channels: int = field(default=1024, validator=v.ge(1))
    end_channels: int = field(default=512, validator=v.ge(1))
    kernel_size: int = field(default=2, validator=v.ge(2))
    d_model: int = field(default=256, validator=v.ge(1))
    d_output: int = field(default=256, validator=v.ge(1))
    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.layers)) * self.blocks

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


@frozen(kw_only=True)
class SampleRNNConfig:
    """The ``samplernn`` model; the defaults are the reference's SC09 model (35.0 M weights).

    Attributes:
        frame_sizes: bottom first: tier ``i`` reads frames of ``f_0 ... f_i`` samples and
            conditions ``f_i`` steps of the tier below (``[8, 2, 2]``: frames of 8, 16, 32).
        d_hidden: width of the GRUs and the sample-level MLP.
        n_rnn: GRU layers per tier.
        d_model: width of the sample-level embedding.
        bits: quantisation bits (``2**bits`` classes).
        dequantize: how frame tiers read samples: ``mu-law`` or ``linear``, as the data was
            quantised.
        tbptt: train with truncated backpropagation through time in chunks of this many
            samples (the reference's 1024; a multiple of the top frame), carrying the GRU
            states between chunks; ``0`` trains on whole sequences.
    """

    frame_sizes: tuple[int, ...] = field(default=(8, 2, 2), validator=_positive_tuple)
    d_hidden: int = field(default=1024, validator=v.ge(1))
    n_rnn: int = field(default=1, validator=v.ge(1))
    d_model: int = field(default=256, validator=v.ge(1))
    bits: int = field(default=8, validator=[v.ge(1), v.le(16)])
    dequantize: Dequantize = field(default="mu-law", validator=one_of(Dequantize))
    tbptt: int = field(default=1024, validator=v.ge(0))

    def __attrs_post_init__(self) -> None:
        if not self.frame_sizes:
            raise ValueError("'frame_sizes' needs at least one frame-level tier")
        top = math.prod(self.frame_sizes)
        if self.tbptt % top:
            raise ValueError(
                f"tbptt ({self.tbptt}) must be a multiple of the top frame, "
                f"prod(frame_sizes) = {top} (or 0)"
            )


#: The ``wavenet`` backbone record.
WAVENET_BACKBONE = BackboneSpec(
    name="wavenet",
    config_cls=WaveNetConfig,
    target="audio_models.builders:build_wavenet_backbone",
    summary="WaveNet: dilated causal convolutions, gated activations",
    denoiser="audio_models.builders:build_wavenet_denoiser",
)

#: DiffWave's SaShiMi (the paper's SaShiMi + DiffWave, 23.5 M weights in the reference's
#: current layout): a bidirectional S4 U-Net, 6 layers per tier, per-channel S4 with exp steps.
DIFFWAVE_SASHIMI = SaShiMiConfig(
    d_model=128,
    n_layers=6,
    pool=(4, 4),
    expand=2,
    ff=2,
    unet=True,
    bidirectional=True,
    l_max=16000,
    kernel=KernelChoice(
        name="s4", config=S4Config(d_state=64, n_ssm=0, dt_transform="exp"), spec=S4
    ),
)


@frozen(kw_only=True)
class DiffWaveConfig:
    """The ``diffwave`` model: denoising diffusion of waveforms around any backbone that
    has a denoiser (``sashimi``, ``wavenet``); the defaults are the paper's SaShiMi + DiffWave.

    Attributes:
        T, beta_0, beta_T: the linear noise schedule (200 steps, 1e-4 to 0.02).
        step_embed: widths of the diffusion-step embedding: the sinusoid, then two swish
            layers (128, 512, 512).
        backbone: the denoiser, a table with ``name`` and the backbone's options. ``sashimi``
            uses ``d_model``, ``n_layers``, ``pool``, ``expand``, ``ff``, ``unet``,
            ``bidirectional``, ``glu``, ``dropout``, ``l_max`` and ``kernel``; ``wavenet``
            uses ``residual_channels``, ``skip_channels``, ``layers`` (the dilation cycle),
            ``blocks`` (cycles) and ``kernel_size`` (odd: DiffWave's 3).
    """

    T: int = field(default=200, validator=v.ge(1))
    beta_0: float = field(default=1e-4, validator=[v.gt(0.0), v.lt(1.0)])
    beta_T: float = field(default=0.02, validator=[v.gt(0.0), v.lt(1.0)])
    step_embed: tuple[int, ...] = field(default=(128, 512, 512), validator=_positive_tuple)
    backbone: BackboneChoice = BackboneChoice(  # noqa: RUF009 - frozen, shared safely
        name="sashimi", config=DIFFWAVE_SASHIMI, spec=SASHIMI_BACKBONE
    )

    def __attrs_post_init__(self) -> None:
        if self.beta_0 > self.beta_T:
            raise ValueError(f"beta_0 ({self.beta_0}) must not exceed beta_T ({self.beta_T})")
        if len(self.step_embed) != 3 or self.step_embed[0] % 2 or self.step_embed[0] < 4:
            raise ValueError(
                "step_embed must be three widths, the first even and >= 4; got "
                f"{list(self.step_embed)}"
            )
