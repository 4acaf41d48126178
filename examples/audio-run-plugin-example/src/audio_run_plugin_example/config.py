"""Config classes. Cheap to import: the plugin module imports them, so no torch here."""

from __future__ import annotations

from attrs import field, frozen
from attrs import validators as v


@frozen(kw_only=True)
class CausalConvConfig:
    """``example-causal-conv``: a stack of gated, dilated, causal depthwise convolutions.

    Layer ``i`` has dilation ``dilation_growth ** i``; the receptive field is
    ``1 + (kernel_size - 1) * sum(dilation_growth ** i for i in range(n_layers))`` samples.
    """

    d_model: int = field(default=64, validator=v.gt(0))
    n_layers: int = field(default=4, validator=v.gt(0))
    kernel_size: int = field(default=3, validator=v.gt(1))
    dilation_growth: int = field(default=2, validator=v.ge(1))


@frozen(kw_only=True)
class TonesConfig:
    """``example-tones``: ``n_examples`` pure tones of ``sample_len`` samples.

    Example ``i`` has a frequency drawn log-uniformly from ``[min_freq, max_freq)`` Hz by a
    generator seeded with ``(seed, i)``, and amplitude 0.5.
    """

    n_examples: int = field(default=256, validator=v.gt(0))
    sample_len: int = field(default=16000, validator=v.gt(0))
    sample_rate: int = field(default=16000, validator=v.gt(0))
    min_freq: float = field(default=110.0, validator=v.gt(0.0))
    max_freq: float = field(default=880.0, validator=v.gt(0.0))
    seed: int = field(default=0, validator=v.ge(0))

    def __attrs_post_init__(self) -> None:
        if not self.min_freq < self.max_freq:
            raise ValueError(f"min_freq ({self.min_freq}) must be below max_freq ({self.max_freq})")
        if self.max_freq >= self.sample_rate / 2:
            raise ValueError(
                f"max_freq ({self.max_freq}) must be below the Nyquist frequency "
                f"({self.sample_rate / 2} Hz at sample_rate {self.sample_rate})"
            )


@frozen(kw_only=True)
class DecayKernelConfig:
    """``example-decay``: ``d_state`` real decaying modes per channel; the step sizes start
    log-uniform in ``[dt_min, dt_max]``."""

    d_state: int = field(default=16, validator=v.gt(0))
    dt_min: float = field(default=0.001, validator=v.gt(0.0))
    dt_max: float = field(default=0.1, validator=v.gt(0.0))

    def __attrs_post_init__(self) -> None:
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")
