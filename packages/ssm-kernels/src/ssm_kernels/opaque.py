"""S4's convolution kernel as one opaque operator for ``torch.compile``.

Traced by ``torch.compile``, S4's kernel would be a graph of complex-valued operations, for which
TorchInductor generates no code (every one runs as a fallback, and torch 2.11's Triton code
generation fails on some of them with ``KeyError: 'complex64'``, pytorch/pytorch#185396). A
traced graph also cannot branch on the parameters' values, so it could not choose the fast
roots-of-unity sums over the direct Cauchy sums. Here the kernel is instead a custom operator
(``ssm_kernels::dplr_kernel``, its backward ``ssm_kernels::dplr_kernel_backward``) that the
compiler calls as a black box: inside it a :class:`~ssm_kernels.kernels.DPLRKernel` of the same
structure runs eagerly, exactly as without compilation, on the parameter tensors it is given
(``torch.func.functional_call``). The backward recomputes the kernel and differentiates it, so
none of the kernel's intermediates is kept between the passes.

The structure travels as a string of the constructor's keyword arguments (:func:`spec`); the
module built from it (cached) holds no values that matter, only shapes and settings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

_INT_FIELDS = ("d_model", "d_state", "rank", "channels", "n_ssm", "l_max")


def spec(kernel: Any) -> str:
    """The structure of a :class:`~ssm_kernels.kernels.DPLRKernel` as the operators take it
    (plain string formatting, so that ``torch.compile`` folds it into a constant)."""
    return (
        f"d_model={kernel.H},d_state={kernel.N},rank={kernel.rank},channels={kernel.channels},"
        f"n_ssm={kernel.n_ssm},dt_transform={kernel.dt_transform},"
        f"separate_q={int(kernel.separate_q)},l_max={kernel.l_max}"
    )


def _fields(structure: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in structure.split(","))


#: The S4 kernel class the operators build (set by :mod:`ssm_kernels.kernels`, which imports
#: this module: the dependency points one way).
_MODULE_CLASS: list[Callable[..., nn.Module]] = []


def use_module_class(cls: Callable[..., nn.Module]) -> None:
    """Build the operators' modules with ``cls`` (``DPLRKernel``'s keyword arguments)."""
    _MODULE_CLASS[:] = [cls]


@functools.cache
def _template(structure: str) -> tuple[nn.Module, tuple[str, ...]]:
    fields = _fields(structure)
    kwargs: dict[str, Any] = {k: int(fields[k]) for k in _INT_FIELDS}
    kwargs["dt_transform"] = fields["dt_transform"]
    kwargs["separate_q"] = fields["separate_q"] == "1"
    module = _MODULE_CLASS[0](**kwargs)
    return module, tuple(name for name, _ in module.named_parameters())


@contextlib.contextmanager
def _as_eager() -> Iterator[None]:
    """Dispatch as plain eager code does. An operator's implementation runs with dispatch keys
    excluded: autograd's (nothing would be recorded), and, called from a compiled graph, the
    conjugate and negative views' (``x.conj()`` would silently be ``x``). Autocast stays as
    it is. (``torch.func``'s transforms are no way out: the kernel's own autograd Functions
    do not support them.)"""
    exclude = torch._C._dispatch_tls_local_exclude_set()
    keep = torch._C.DispatchKeySet(torch._C.DispatchKey.Undefined)
    for key in _autocast_keys():
        if exclude.has(key):
            keep = keep | torch._C.DispatchKeySet(key)
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), keep):
        yield


@functools.cache
def _autocast_keys() -> tuple[Any, ...]:
    keys = torch._C.DispatchKey
    return tuple(getattr(keys, name) for name in dir(keys) if name.startswith("Autocast"))


def _compute(structure: str, L: int, params: list[Tensor]) -> Tensor:
    module, names = _template(structure)
    k, _ = torch.func.functional_call(module, dict(zip(names, params, strict=True)), (L,))
    out: Tensor = k.contiguous()
    return out


@torch.library.custom_op("ssm_kernels::dplr_kernel", mutates_args=())
def dplr_kernel(structure: str, L: int, params: list[Tensor]) -> Tensor:
    """The ``(C, H, L)`` kernel of the S4 kernel module of this :func:`spec`, on these
    parameters (in ``named_parameters()`` order)."""
    with _as_eager(), torch.no_grad():
        return _compute(structure, L, params)


@dplr_kernel.register_fake
def _dplr_kernel_fake(structure: str, L: int, params: list[Tensor]) -> Tensor:
    fields = _fields(structure)  # no module is built while tracing: only the shape is needed
    return params[0].new_empty(int(fields["channels"]), int(fields["d_model"]), L)


@torch.library.custom_op("ssm_kernels::dplr_kernel_backward", mutates_args=())
def dplr_kernel_backward(structure: str, L: int, params: list[Tensor],
                         grad: Tensor) -> list[Tensor]:  # fmt: skip
    """The gradients of ``sum(dplr_kernel(structure, L, params) * grad)`` with respect to
    each parameter (zeros for one the kernel does not use), by recomputing the kernel."""
    inputs = [p.detach().requires_grad_(True) for p in params]
    with _as_eager(), torch.enable_grad():
        k = _compute(structure, L, inputs)
        found = torch.autograd.grad(k, inputs, grad, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(inputs, found, strict=True)]


@dplr_kernel_backward.register_fake
def _dplr_kernel_backward_fake(structure: str, L: int, params: list[Tensor],
                               grad: Tensor) -> list[Tensor]:  # fmt: skip
    return [torch.empty_like(p) for p in params]


def _setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    structure, L, params = inputs
    ctx.structure, ctx.L = structure, L
    ctx.save_for_backward(*params)


def _backward(ctx: Any, grad: Tensor) -> tuple[None, None, list[Tensor]]:
    params = list(ctx.saved_tensors)
    return None, None, dplr_kernel_backward(ctx.structure, ctx.L, params, grad.contiguous())


dplr_kernel.register_autograd(_backward, setup_context=_setup)
