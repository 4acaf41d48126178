"""Config -> model. The only code here that reads config objects.

Parts chosen by name (``model.kernel``, ``model.backbone``) are built through their records
(``choice.build(...)``), so a kernel or backbone a plugin registers is used exactly like the
built-in ones. The builders also attach the generation engines each model can use.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ssm_kernels.block import S4Block

from .config import LMConfig, SampleRNNConfig, SaShiMiConfig, SaShiMiModelConfig, WaveNetConfig
from .fast.engine import COMPILED
from .lm import BackboneLM
from .samplernn import SampleRNN
from .sashimi import SaShiMi
from .wavenet import WaveNet


def build_sashimi_backbone(config: SaShiMiConfig) -> SaShiMi:
    """The SaShiMi backbone (target of the ``sashimi`` backbone record).

    Each tier's S4 blocks wrap a kernel built by the ``model.kernel`` record with
    ``d_model`` = the tier's width and ``l_max`` = its training length.
    """
    kernel, channels = config.kernel, 2 if config.bidirectional else 1

    def block(width: int, length: int) -> nn.Module:
        return S4Block(
            width,
            kernel.build(d_model=width, l_max=length, channels=channels),
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            glu=config.glu,
        )

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
    return {"compiled": COMPILED} if isinstance(backbone, SaShiMi) else {}


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
    """SampleRNN (target of the ``samplernn`` model record)."""
    return SampleRNN(
        frame_sizes=config.frame_sizes,
        d_hidden=config.d_hidden,
        n_rnn=config.n_rnn,
        d_model=config.d_model,
        bits=config.bits,
        dequantize=config.dequantize,
        tbptt=config.tbptt,
    )
