"""The records plugins return from their ``register_*`` hooks.

A record says *what* a plugin provides (a name, a config class, a one-line summary) and *where*
the code lives (``target``, an import path) without importing it. ``audio-run list``, ``plugins``
and ``--help`` therefore never import torch: only building a component imports its target.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, get_args

import attrs
from attrs import field, frozen

Kind = Literal["kernels", "backbones", "models", "datasets", "metrics", "presets"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: How a model's generation steps are computed (``audio-run generate --engine``): ``auto``
#: picks the fastest one the model supports here; ``eager`` is the model's own step (every
#: model has it); ``compiled`` is a fused step in C on the CPU; ``triton`` fused Triton
#: kernels replayed as CUDA graphs on the GPU.
Engine = Literal["auto", "eager", "compiled", "triton"]
ENGINES: tuple[Engine, ...] = get_args(Engine)

#: Names and aliases: lower case, start with a letter or digit, then letters, digits, ``.``,
#: ``_`` or ``-`` (kebab-case is the convention: ``s4d``, ``sc09-synth``).
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: ``"package.module:Callable"`` or ``"package.module:Class.method"``.
TARGET_PATTERN = re.compile(
    r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$"
)


class TargetImportError(ImportError):
    """A record's ``target`` could not be imported; the message names the record and target."""


def _as_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@frozen(kw_only=True)
class Spec:
    """Fields shared by every record.

    Attributes:
        name: registry name, matching ``^[a-z0-9][a-z0-9._-]*$`` (e.g. ``"s4d"``).
        config_cls: the ``attrs`` class holding this component's options. Every field must
            have a default, so that naming the component alone (``--model sashimi``) is a
            valid configuration.
        target: ``"package.module:callable"``, imported only when the component is built.
            The callable takes an instance of ``config_cls``.
        summary: one line shown by ``audio-run list``.
        aliases: other names that resolve to this record (e.g. ``("dplr",)`` for ``s4``).
    """

    kind: ClassVar[Kind]

    name: str
    config_cls: type[Any]
    target: str
    summary: str
    aliases: tuple[str, ...] = field(default=(), converter=_as_tuple)

    def problems(self) -> list[str]:
        """What is wrong with this record, one sentence each (empty when it is valid)."""
        found: list[str] = []
        for label, value in [("name", self.name), *(("alias", a) for a in self.aliases)]:
            if not isinstance(value, str) or not NAME_PATTERN.match(value):
                found.append(
                    f"{label} {value!r} is not a valid name (lower case letters, digits, "
                    "'.', '_' and '-', starting with a letter or digit)"
                )
        if not (isinstance(self.config_cls, type) and attrs.has(self.config_cls)):
            found.append(f"config_cls {self.config_cls!r} is not an attrs class")
        else:
            required = [a.name for a in attrs.fields(self.config_cls) if a.default is attrs.NOTHING]
            if required:
                found.append(
                    f"config_cls {self.config_cls.__qualname__} has fields without defaults "
                    f"({', '.join(required)}); every field needs one"
                )
        if not isinstance(self.target, str) or not TARGET_PATTERN.match(self.target):
            found.append(f"target {self.target!r} is not of the form 'package.module:callable'")
        if not isinstance(self.summary, str) or not self.summary.strip() or "\n" in self.summary:
            found.append(f"summary {self.summary!r} must be one non-empty line")
        return found

    def load_target(self) -> Any:
        """Import and return the object named by ``target``.

        Raises:
            TargetImportError: the module or attribute does not exist, or importing failed.
        """
        return self._load(self.target)

    def _load(self, target: str) -> Any:
        module_name, _, qualname = target.partition(":")
        what = f"{self.kind[:-1]} {self.name!r}"
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetImportError(f"cannot import target {target!r} of {what}: {exc}") from exc
        for part in qualname.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetImportError(
                    f"cannot import target {target!r} of {what}: "
                    f"{module_name} has no attribute {qualname!r}"
                ) from None
        return obj


@frozen(kw_only=True)
class KernelSpec(Spec):
    """An SSM convolution kernel (e.g. S4's DPLR kernel, S4D's diagonal kernel)."""

    kind: ClassVar[Kind] = "kernels"


@frozen(kw_only=True)
class BackboneSpec(Spec):
    """A sequence-to-sequence map ``(batch, length, d_model) -> (batch, length, d_model)``.

    Attributes:
        denoiser: optional second target, ``"package.module:callable"``, building the backbone
            as a non-causal, step-conditioned denoiser for diffusion models (``diffwave``):
            called as ``callable(config, step_dims=(in, mid, out))``, it returns a module
            mapping a waveform batch ``(batch, 1, length)`` and diffusion steps ``(batch,)``
            to the predicted noise ``(batch, 1, length)``. Empty: the backbone has no such
            use, and a diffusion model refuses it by name.
    """

    kind: ClassVar[Kind] = "backbones"

    denoiser: str = ""

    def problems(self) -> list[str]:
        found = super().problems()
        if self.denoiser and not TARGET_PATTERN.match(self.denoiser):
            found.append(f"denoiser {self.denoiser!r} is not of the form 'package.module:callable'")
        return found

    def load_denoiser(self) -> Any:
        """Import the ``denoiser`` target.

        Raises:
            TargetImportError: there is none, or it cannot be imported.
        """
        if not self.denoiser:
            raise TargetImportError(
                f"backbone {self.name!r} has no denoiser (a diffusion model needs a backbone "
                "whose record sets one, e.g. sashimi or wavenet)"
            )
        return self._load(self.denoiser)


def _engines(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@frozen(kw_only=True)
class ModelSpec(Spec):
    """A trainable model: what ``--model`` and the ``[model]`` config section choose.

    Attributes:
        engines: the generation engines the model's ``generate`` supports besides ``auto``
            (default ``("eager",)``; see :data:`ENGINES`). ``audio-run generate --engine``
            refuses any other in one line, before anything is loaded.
    """

    kind: ClassVar[Kind] = "models"

    engines: tuple[str, ...] = field(default=("eager",), converter=_engines)

    def problems(self) -> list[str]:
        found = super().problems()
        bad = [e for e in self.engines if e not in ENGINES or e == "auto"]
        if bad or "eager" not in self.engines:
            allowed = ", ".join(e for e in ENGINES if e != "auto")
            found.append(f"engines {self.engines!r} must include 'eager' and name only {allowed}")
        return found


@frozen(kw_only=True)
class DatasetSpec(Spec):
    """A dataset: what ``--dataset`` and the ``[dataset]`` config section choose."""

    kind: ClassVar[Kind] = "datasets"


@frozen(kw_only=True)
class MetricSpec(Spec):
    """An evaluation metric over generated audio (FID, IS, ...)."""

    kind: ClassVar[Kind] = "metrics"


@frozen(kw_only=True)
class PresetOptions:
    """A preset has no options of its own: it *is* options (its ``config_cls``)."""


@frozen(kw_only=True)
class PresetSpec(Spec):
    """A named run configuration (``audio-run --preset NAME``), e.g. one of the reference's
    experiments: ``target`` names a function returning the configuration as plain data (the
    form of a ``--config`` TOML file), lowest in precedence after the defaults.

    ``config_cls`` defaults to :class:`PresetOptions` (presets take no options).
    """

    kind: ClassVar[Kind] = "presets"

    config_cls: type[Any] = PresetOptions

    def load(self) -> dict[str, Any]:
        """The preset's configuration data.

        Raises:
            TargetImportError: the target cannot be imported.
            TypeError: it did not return a table.
        """
        data = self.load_target()()
        if not isinstance(data, dict):
            raise TypeError(
                f"preset {self.name!r}: {self.target} returned {type(data).__name__}, not a table"
            )
        return data


SPEC_CLASSES: dict[Kind, type[Spec]] = {
    cls.kind: cls
    for cls in (KernelSpec, BackboneSpec, ModelSpec, DatasetSpec, MetricSpec, PresetSpec)
}
