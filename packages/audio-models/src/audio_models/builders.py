"""Config -> model. The only code here that reads config objects.

Parts chosen by name (``model.kernel``, ``model.backbone``) are built through their records
(``choice.build(...)``), so a kernel or backbone a plugin registers is used exactly like the
built-in ones. The builders also attach the generation engines each model can use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from audio_core.specs import BackboneSpec
from ssm_kernels.block import PairedS4Block, S4Block

from .config import (
    DiffWaveConfig,
    LMConfig,
    SampleRNNConfig,
    SaShiMiConfig,
    SaShiMiModelConfig,
    WaveNetConfig,
)
from .fast.engine import COMPILED
from .fast.fused import TRITON
from .fast.samplernn import COMPILED_SAMPLERNN
from .fast.wavenet import COMPILED_WAVENET
from .lm import BackboneLM
from .samplernn import SampleRNN
from .sashimi import SaShiMi
from .wavenet import WaveNet


def _s4_layer(config: SaShiMiConfig, width: int, length: int, *, transposed: bool) -> nn.Module:
    """One S4 layer of a SaShiMi: an :class:`S4Block`, or with ``paired_kernels`` a
    :class:`PairedS4Block` (two one-channel kernels)."""
    kernel = config.kernel
    if config.paired_kernels:
        return PairedS4Block(
            width,
            kernel.build(d_model=width, l_max=length, channels=1),
            kernel.build(d_model=width, l_max=length, channels=1),
            dropout=config.dropout,
            transposed=transposed,
        )
    return S4Block(
        width,
        kernel.build(d_model=width, l_max=length, channels=2 if config.bidirectional else 1),
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        transposed=transposed,
        glu=config.glu,
    )


def build_sashimi_backbone(config: SaShiMiConfig) -> SaShiMi:
    """The SaShiMi backbone (target of the ``sashimi`` backbone record).

    Each tier's S4 blocks wrap a kernel built by the ``model.kernel`` record with
    ``d_model`` = the tier's width and ``l_max`` = its training length.
    """

    def block(width: int, length: int) -> nn.Module:
        return _s4_layer(config, width, length, transposed=False)

    return SaShiMi(
        config.d_model,
        n_layers=config.n_layers,
        pool=config.pool,
        expand=config.expand,
        ff=config.ff,
        block=block,
        norm=config.norm,
        unet=config.unet,
        causal=not config.bidirectional,
        dropout=config.dropout,
        l_max=config.l_max,
    )


def _engines(backbone: nn.Module) -> dict[str, Any]:
    if isinstance(backbone, SaShiMi):
        return {"compiled": COMPILED, "triton": TRITON}
    if isinstance(backbone, WaveNet):
        return {"compiled": COMPILED_WAVENET}
    return {}


def language_model(backbone: nn.Module, *, bits: int) -> BackboneLM:
    """An embedding, ``backbone`` and a head, with the engines that apply to the backbone.

    Raises:
        ValueError: the backbone does not say its widths (``d_model``, ``d_output``).
    """
    d_model = getattr(backbone, "d_model", None)
    d_out = getattr(backbone, "d_output", d_model)
    if not isinstance(d_model, int) or not isinstance(d_out, int):
        raise ValueError(
            f"backbone {type(backbone).__name__} must have integer d_model (and d_output) "
            "attributes: the language model sizes its embedding and head from them"
        )
    model = BackboneLM(backbone, d_model=d_model, d_out=d_out, bits=bits)
    model.engines = _engines(backbone)
    return model


def build_sashimi(config: SaShiMiModelConfig) -> BackboneLM:
    """The autoregressive SaShiMi (target of the ``sashimi`` model record)."""
    return language_model(build_sashimi_backbone(config), bits=config.bits)


def build_lm(config: LMConfig) -> BackboneLM:
    """The generic language model over any registered backbone (target of ``lm``)."""
    return language_model(config.backbone.build(), bits=config.bits)


def build_wavenet_backbone(config: WaveNetConfig) -> WaveNet:
    """The WaveNet backbone (target of the ``wavenet`` backbone record)."""
    return WaveNet(
        config.d_model,
        d_output=config.d_output,
        residual_channels=config.residual_channels,
        dilation_channels=config.dilation_channels,
        skip_channels=config.skip_channels,
        end_channels=config.end_channels,
        kernel_size=config.kernel_size,
        dilations=config.dilations,
    )


def build_wavenet(config: WaveNetConfig) -> BackboneLM:
    """The autoregressive WaveNet (target of the ``wavenet`` model record)."""
    return language_model(build_wavenet_backbone(config), bits=config.bits)


def build_samplernn(config: SampleRNNConfig) -> SampleRNN:
    """SampleRNN (target of the ``samplernn`` model record), with its compiled engine."""
    model = SampleRNN(
        frame_sizes=config.frame_sizes,
        d_hidden=config.d_hidden,
        n_rnn=config.n_rnn,
        d_model=config.d_model,
        bits=config.bits,
        dequantize=config.dequantize,
        tbptt=config.tbptt,
    )
    model.engines = {"compiled": COMPILED_SAMPLERNN}
    return model


# -- diffusion -----------------------------------------------------------------------------------
def build_sashimi_denoiser(config: SaShiMiConfig, *, step_dims: Sequence[int]) -> nn.Module:
    """SaShiMi as DiffWave's denoiser (the ``sashimi`` record's ``denoiser`` target): its S4
    layers are transposed blocks, bidirectional unless ``bidirectional=false``."""
    from .diffwave import SaShiMiDenoiser

    if config.norm != "scalar":
        raise ValueError("the SaShiMi denoiser uses the scalar norm; set norm = 'scalar'")

    def layer(width: int, length: int) -> nn.Module:
        return _s4_layer(config, width, length, transposed=True)

    return SaShiMiDenoiser(
        config.d_model,
        n_layers=config.n_layers,
        pool=config.pool,
        expand=config.expand,
        ff=config.ff,
        unet=config.unet,
        layer=layer,
        step_dims=step_dims,
        l_max=config.l_max,
    )


def build_wavenet_denoiser(config: WaveNetConfig, *, step_dims: Sequence[int]) -> nn.Module:
    """DiffWave's WaveNet (the ``wavenet`` record's ``denoiser`` target): ``layers`` per
    dilation cycle, ``blocks`` cycles, ``residual_channels`` and ``skip_channels`` wide."""
    from .diffwave import WaveNetDenoiser

    return WaveNetDenoiser(
        res=config.residual_channels,
        skip=config.skip_channels,
        n_layers=config.layers * config.blocks,
        cycle=config.layers,
        kernel_size=config.kernel_size,
        step_dims=step_dims,
    )


def build_diffwave(config: DiffWaveConfig) -> nn.Module:
    """The ``diffwave`` model: the chosen backbone's denoiser inside the diffusion process."""
    from .diffwave import DiffWave

    spec = config.backbone.spec
    if not isinstance(spec, BackboneSpec):
        raise ValueError(f"backbone {config.backbone.name!r} has no record; structure the config")
    denoiser = spec.load_denoiser()(config.backbone.config, step_dims=config.step_embed)
    return DiffWave(denoiser, T=config.T, beta_0=config.beta_0, beta_T=config.beta_T)
