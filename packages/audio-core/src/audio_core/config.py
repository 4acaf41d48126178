"""The run configuration: ``model``, ``dataset``, ``train``, ``generate`` and ``output``.

Every class is ``@frozen(kw_only=True)``, holds tuples rather than lists, uses ``Literal`` for
modes (validated from the same ``Literal``), validates single fields with attrs validators and
cross-field rules in ``__attrs_post_init__``. The ``model`` and ``dataset`` sections hold the
chosen registry name plus that record's own config class; see :mod:`audio_core.resolve` for
how files, flags and ``key=value`` overrides become one :class:`RunConfig`.

TOML has no null, so no field here is optional: ``0`` means "no limit" or "off" where noted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import attrs
from attrs import Factory, field, frozen
from attrs import validators as v

from .specs import Kind, Spec

OptimizerName = Literal["adamw", "adam", "sgd"]
SchedulerName = Literal["plateau", "cosine", "constant"]
Precision = Literal["fp32", "bf16"]
#: ``train.compile``: ``none``; ``inductor`` (``torch.compile``'s default code generator, made
#: for GPUs); ``eager`` (Dynamo's trace run as is: checks that the forward is one graph).
CompileMode = Literal["none", "inductor", "eager"]
ClipAlgorithm = Literal["norm", "value"]
Split = Literal["train", "val", "test"]


def one_of(literal: Any) -> Any:
    """An attrs validator accepting exactly the values of a ``Literal[...]`` type."""
    return v.in_(get_args(literal))


@frozen(kw_only=True)
class OptimizerConfig:
    """The optimizer (``train.optimizer``).

    SSM parameters (A, B, dt) keep their own capped learning rate and zero weight decay,
    whatever is set here: their modules declare it.
    """

    name: OptimizerName = field(default="adamw", validator=one_of(OptimizerName))
    lr: float = field(default=0.004, validator=v.gt(0.0))
    weight_decay: float = field(default=0.0, validator=v.ge(0.0))
    betas: tuple[float, float] = field(
        default=(0.9, 0.999), validator=v.deep_iterable(v.and_(v.ge(0.0), v.lt(1.0)))
    )


@frozen(kw_only=True)
class SchedulerConfig:
    """The learning-rate schedule (``train.scheduler``).

    ``plateau`` multiplies the learning rate by ``factor`` after ``patience`` validations
    without improvement of the validation NLL (the paper's setting); ``cosine`` decays to
    ``min_lr`` over ``train.max_steps``; ``constant`` keeps it. ``warmup_steps`` ramps up
    linearly first, in every mode.
    """

    name: SchedulerName = field(default="plateau", validator=one_of(SchedulerName))
    patience: int = field(default=20, validator=v.ge(0))
    factor: float = field(default=0.2, validator=[v.gt(0.0), v.lt(1.0)])
    warmup_steps: int = field(default=0, validator=v.ge(0))
    min_lr: float = field(default=0.0, validator=v.ge(0.0))


@frozen(kw_only=True)
class TrainConfig:
    """Training (``train``). Defaults follow the SaShiMi SC09 recipe.

    ``max_steps`` / ``max_epochs``: ``0`` means no limit (at least one must be set);
    ``val_every``: validate every so many steps, ``0`` for once per epoch; ``val_batches``:
    batches per validation, ``0`` for the whole split; ``checkpoint_every``: write ``last``
    every so many steps, ``0`` for at each validation only; ``log_every``: steps per line of the
    metrics log; ``grad_clip``: clip the gradients to this value, ``0`` for off, by their global
    ``norm`` or element-wise by ``value`` (``grad_clip_algorithm``, the reference's SampleRNN
    uses ``value``);
    ``num_workers``: DataLoader worker processes; ``sample_at_end``: after training, generate
    this many clips from the best checkpoint with the ``generate`` settings (``0``: none);
    ``compile``: run the training forward under ``torch.compile(fullgraph=True)`` with this
    backend (:data:`CompileMode`; the first steps compile; with ``precision = "bf16"`` on a
    GPU the position-wise layers run in bf16, the SSM maths in float32).
    """

    optimizer: OptimizerConfig = Factory(OptimizerConfig)
    scheduler: SchedulerConfig = Factory(SchedulerConfig)
    batch_size: int = field(default=32, validator=v.gt(0))
    max_steps: int = field(default=0, validator=v.ge(0))
    max_epochs: int = field(default=1000, validator=v.ge(0))
    val_every: int = field(default=0, validator=v.ge(0))
    seed: int = field(default=0, validator=v.ge(0))
    precision: Precision = field(default="fp32", validator=one_of(Precision))
    compile: CompileMode = field(default="none", validator=one_of(CompileMode))
    grad_clip: float = field(default=0.0, validator=v.ge(0.0))
    grad_clip_algorithm: ClipAlgorithm = field(default="norm", validator=one_of(ClipAlgorithm))
    val_batches: int = field(default=0, validator=v.ge(0))
    checkpoint_every: int = field(default=0, validator=v.ge(0))
    log_every: int = field(default=10, validator=v.gt(0))
    num_workers: int = field(default=0, validator=v.ge(0))
    sample_at_end: int = field(default=0, validator=v.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.max_steps == 0 and self.max_epochs == 0:
            raise ValueError("set train.max_steps or train.max_epochs: both are 0 (no limit)")
        if self.scheduler.name == "cosine" and self.max_steps == 0:
            raise ValueError(
                "train.scheduler.name 'cosine' decays over train.max_steps, which is 0; "
                "set train.max_steps"
            )


@frozen(kw_only=True)
class GenerateConfig:
    """Sampling (``generate``), after the reference's ``generate.py``.

    Writes ``n_samples * n_reps`` clips of ``l_sample`` samples in batches of ``n_batch``;
    with ``l_prefix > 0`` each continues the first ``l_prefix`` samples of one of the first
    ``n_samples`` examples of ``split``. ``steps`` is for diffusion models: reverse steps of a
    respaced schedule (0: the model's full schedule); a model without that option refuses it.
    """

    n_samples: int = field(default=16, validator=v.gt(0))
    n_reps: int = field(default=1, validator=v.gt(0))
    l_sample: int = field(default=16000, validator=v.gt(0))
    l_prefix: int = field(default=0, validator=v.ge(0))
    n_batch: int = field(default=16, validator=v.gt(0))
    temperature: float = field(default=1.0, validator=v.gt(0.0))
    top_p: float = field(default=1.0, validator=[v.gt(0.0), v.le(1.0)])
    split: Split = field(default="val", validator=one_of(Split))
    seed: int = field(default=0, validator=v.ge(0))
    steps: int = field(default=0, validator=v.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.l_prefix >= self.l_sample:
            raise ValueError(
                f"generate.l_prefix ({self.l_prefix}) must be shorter than "
                f"generate.l_sample ({self.l_sample})"
            )


def _plain_name(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if "/" in value or "\\" in value or value in {".", ".."}:
        raise ValueError(
            f"'{attribute.name}' must be a plain folder name, not a path: {value!r} "
            "(set output.root for the parent folder)"
        )


@frozen(kw_only=True)
class OutputConfig:
    """Where a run writes (``output``): ``<root>/<name>/``.

    An empty ``name`` means ``<model>-<dataset>-<date>-<time>``.
    """

    root: Path = Path("runs")
    name: str = field(default="", validator=_plain_name)
    tensorboard: bool = False


@frozen(kw_only=True)
class Choice:
    """A pluggable part chosen by name: the ``model`` and ``dataset`` sections, and nested
    parts such as ``model.kernel`` or ``model.backbone``.

    In TOML and in overrides the section is flat: ``name`` beside the record's own fields
    (``[model] name = "sashimi"  d_model = 64``; ``[model.kernel] name = "s4d"``;
    ``model.kernel.d_state=32``). Structuring looks ``name`` up in the registry, validates
    the other keys with the record's own config class and keeps the record in ``spec``, so
    :meth:`build` calls the record's target.

    Attributes:
        name: the record's registry name.
        config: an instance of the record's ``config_cls``.
        spec: the record (not compared, not written: it follows from ``name``).
    """

    kind: ClassVar[Kind]

    name: str
    config: Any
    spec: Spec | None = field(default=None, eq=False, repr=False)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Call the record's ``target`` with ``config`` and the given arguments.

        Raises:
            ValueError: the choice was made by hand without a ``spec``.
        """
        if self.spec is None:
            raise ValueError(
                f"{self.kind[:-1]} {self.name!r} has no record (spec); structure the config "
                "through a registry or pass spec= when making the choice by hand"
            )
        return self.spec.load_target()(self.config, *args, **kwargs)


@frozen(kw_only=True)
class ModelChoice(Choice):
    """The ``model`` section; ``config`` is an instance of the model's ``config_cls``."""

    kind: ClassVar[Kind] = "models"


@frozen(kw_only=True)
class DatasetChoice(Choice):
    """The ``dataset`` section; ``config`` is an instance of the dataset's ``config_cls``."""

    kind: ClassVar[Kind] = "datasets"


@frozen(kw_only=True)
class KernelChoice(Choice):
    """A kernel part (``[model.kernel]``); ``config`` is the kernel's own ``config_cls``."""

    kind: ClassVar[Kind] = "kernels"


@frozen(kw_only=True)
class BackboneChoice(Choice):
    """A backbone part (``[model.backbone]``); ``config`` is the backbone's ``config_cls``."""

    kind: ClassVar[Kind] = "backbones"


@frozen(kw_only=True)
class RunConfig:
    """Everything one ``audio-run`` invocation needs. Saved next to a run's outputs."""

    model: ModelChoice
    dataset: DatasetChoice
    train: TrainConfig = Factory(TrainConfig)
    generate: GenerateConfig = Factory(GenerateConfig)
    output: OutputConfig = Factory(OutputConfig)
