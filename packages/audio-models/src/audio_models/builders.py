"""Config -> model. The only code here that reads config objects."""

from __future__ import annotations

from .config import SampleRNNConfig, SaShiMiConfig, SaShiMiModelConfig, WaveNetConfig
from .lm import BackboneLM
from .samplernn import SampleRNNModel
from .sashimi import SaShiMi
from .wavenet import WaveNet


def build_sashimi_backbone(config: SaShiMiConfig) -> SaShiMi:
    """The SaShiMi backbone (target of the ``sashimi`` backbone record)."""
    return SaShiMi(
        config.d_model,
        n_layers=config.n_layers,
        pool=config.pool,
        expand=config.expand,
        ff=config.ff,
        glu=config.glu,
        bidirectional=config.bidirectional,
        unet=config.unet,
        dropout=config.dropout,
        kernel=config.kernel_config(),
        l_max=config.l_max,
    )


def build_sashimi(config: SaShiMiModelConfig) -> BackboneLM:
    """The autoregressive SaShiMi (target of the ``sashimi`` model record)."""
    backbone = build_sashimi_backbone(config)
    return BackboneLM(backbone, d_model=config.d_model, d_out=config.d_model, bits=config.bits)


def build_wavenet(config: WaveNetConfig) -> BackboneLM:
    """The autoregressive WaveNet (target of the ``wavenet`` model record)."""
    backbone = WaveNet(
        config.residual_channels,
        residual_channels=config.residual_channels,
        dilation_channels=config.dilation_channels,
        skip_channels=config.skip_channels,
        kernel_size=config.kernel_size,
        dilations=config.dilations,
    )
    return BackboneLM(
        backbone, d_model=config.residual_channels, d_out=config.skip_channels, bits=config.bits
    )


def build_samplernn(config: SampleRNNConfig) -> SampleRNNModel:
    """SampleRNN (target of the ``samplernn`` model record)."""
    return SampleRNNModel(
        frame_sizes=config.frame_sizes,
        dim=config.dim,
        n_rnn=config.n_rnn,
        cell=config.cell,
        embedding=config.embedding,
        bits=config.bits,
    )
