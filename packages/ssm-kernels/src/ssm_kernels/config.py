"""Kernel options as attrs classes: what ``model.kernel.*`` holds in a run config.

Importing this module costs no torch: the plugin imports it to register the kernels, and
``audio-run list`` and ``--help`` must stay fast.
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen
from attrs import validators as v

from audio_core.config import one_of

Measure = Literal["legs", "legt", "fout"]
DiagInit = Literal["diag-inv", "diag-lin", "diag-legs"]
Discretization = Literal["zoh", "bilinear"]
DtTransform = Literal["exp", "softplus"]
#: The smallest rank of the correction that makes each measure's ``A`` normal.
MEASURE_RANK: dict[str, int] = {"legs": 1, "legt": 2, "fout": 1}


def _even(_: object, attribute: object, value: int) -> None:
    if value % 2:
        raise ValueError(f"must be even (N / 2 conjugate pairs are kept); got {value}")


@frozen(kw_only=True)
class _SSMConfig:
    d_state: int = field(default=64, validator=[v.ge(2), _even])
    n_ssm: int = field(default=1, validator=v.ge(0))
    dt_min: float = field(default=0.001, validator=v.gt(0.0))
    dt_max: float = field(default=0.1, validator=v.gt(0.0))
    dt_transform: DtTransform = field(default="softplus", validator=one_of(DtTransform))
    lr: float = field(default=0.001, validator=v.ge(0.0))

    def __attrs_post_init__(self) -> None:
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")


@frozen(kw_only=True)
class S4Config(_SSMConfig):
    """The ``s4`` (alias ``dplr``) kernel: HiPPO ``A`` in normal-plus-low-rank form.

    Attributes:
        d_state: state size ``N`` per SSM (even; ``N / 2`` complex modes are stored).
        init: HiPPO measure: ``legs`` (default), ``legt`` or ``fout``.
        rank: rank of the low-rank term; at least 1 for ``legs`` and ``fout``, 2 for ``legt``.
        n_ssm: number of distinct ``(A, B)`` shared by the channels (must divide ``d_model``;
            ``0``: one per channel, the reference's ``n_ssm: null``).
        dt_min, dt_max: the step sizes start log-uniform in ``[dt_min, dt_max]``.
        dt_transform: ``dt = softplus(inv_dt)`` (default, the reference's current choice) or
            ``exp(inv_dt)`` (its V3 choice, which the paper's released checkpoints need).
        lr: learning-rate cap of ``A``, ``B`` and ``dt`` (their weight decay is 0).
        separate_q: ``A = diag(Lambda) - P Q^*`` with its own trained ``Q`` per channel (the
            reference's oldest kernels, which made the paper's DiffWave checkpoints);
            default ``false``: ``Q = P``.
    """

    init: Measure = field(default="legs", validator=one_of(Measure))
    rank: int = field(default=1, validator=v.ge(1))
    separate_q: bool = False

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        need = MEASURE_RANK[self.init]
        if self.rank < need:
            raise ValueError(f"init {self.init!r} needs rank >= {need}; got rank={self.rank}")


@frozen(kw_only=True)
class S4DConfig(_SSMConfig):
    """The ``s4d`` (alias ``diag``) kernel: diagonal ``A``.

    Attributes:
        init: ``diag-inv`` (default), ``diag-lin`` or ``diag-legs``.
        discretization: ``zoh`` (default) or ``bilinear``.
        Others: as for :class:`S4Config`.
    """

    init: DiagInit = field(default="diag-inv", validator=one_of(DiagInit))
    discretization: Discretization = field(default="zoh", validator=one_of(Discretization))


KernelConfig = S4Config | S4DConfig
