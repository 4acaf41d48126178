"""Per-parameter optimizer hints, and the optimizer groups they imply.

Some parameters must not train like the rest: S4's ``A``, ``B`` and step sizes need a capped
learning rate and no weight decay, or the state-space model drifts to instability. A module
says so through one typed method, ``optim_hints()``, mapping its *local* parameter names to an
:class:`OptimHint`. :func:`param_groups` walks a model, honours every hint it finds and
returns groups for any ``torch.optim`` optimizer. This module imports no torch: it works on
anything with ``named_modules()`` / ``named_parameters()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen
from attrs.validators import ge


@frozen(kw_only=True)
class OptimHint:
    """How the optimizer must treat one parameter.

    Attributes:
        lr_max: the parameter's learning rate is ``min(base learning rate, lr_max)``.
        weight_decay: its weight decay (``0.0`` for SSM parameters).
    """

    lr_max: float = field(validator=ge(0.0))
    weight_decay: float = field(default=0.0, validator=ge(0.0))


@runtime_checkable
class HasOptimHints(Protocol):
    """A module whose parameters need special optimizer settings."""

    def optim_hints(self) -> Mapping[str, OptimHint]:
        """Local parameter name (as in ``named_parameters(recurse=False)``) -> hint."""
        ...


class _Module(Protocol):
    def named_modules(self) -> Iterator[tuple[str, Any]]: ...
    def named_parameters(self) -> Iterator[tuple[str, Any]]: ...


def collect_hints(model: _Module) -> dict[str, OptimHint]:
    """Full parameter name -> hint, for every module of ``model`` that has ``optim_hints``.

    Raises:
        ValueError: a hint names a parameter the module does not have.
    """
    hints: dict[str, OptimHint] = {}
    for prefix, module in model.named_modules():
        if not isinstance(module, HasOptimHints):
            continue
        own = {name for name, _ in module.named_parameters(recurse=False)}  # type: ignore[attr-defined]
        for name, hint in module.optim_hints().items():
            if name not in own:
                raise ValueError(
                    f"{type(module).__name__}.optim_hints() names {name!r}, which is not one of "
                    f"its parameters ({', '.join(sorted(own)) or 'none'})"
                )
            hints[f"{prefix}.{name}" if prefix else name] = hint
    return hints


def param_groups(model: _Module, *, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups honouring every hint in ``model``.

    Parameters without a hint share one group with ``lr`` and ``weight_decay``; hinted ones are
    grouped by their hint, whatever ``lr`` is, so the groups' structure depends on the model
    alone (an optimizer state saved with one learning rate loads into one built with another).
    Each group carries ``"names"`` (the parameter names, for logs); ``torch.optim`` optimizers
    ignore extra keys. Parameters with ``requires_grad=False`` are left out.
    """
    hints = collect_hints(model)
    groups: dict[OptimHint | None, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not getattr(param, "requires_grad", True):
            continue
        hint = hints.get(name)
        if hint not in groups:
            rate, decay = (
                (lr, weight_decay) if hint is None else (min(lr, hint.lr_max), hint.weight_decay)
            )
            groups[hint] = {"params": [], "names": [], "lr": rate, "weight_decay": decay}
        groups[hint]["params"].append(param)
        groups[hint]["names"].append(name)
    return list(groups.values())
