"""The ``compiled`` generation engine: SaShiMi's whole sample step fused in C, on the CPU.

The whole sample step (embedding, every tier due at this sample, final norm, head) is one
call into ``sashimi_step.c`` for the whole batch (layer by layer, each weight read once per
step; batches are split across ``torch.get_num_threads()`` threads, ctypes releasing the
GIL, and a single sequence's step is shared by a team of up to :data:`MAX_TEAM` threads in
C; :meth:`CompiledStepper.sample_block` also samples inside the call, a block of steps at a
time, as the eager engine samples), compiled with the machine's C compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``) on first use and cached (``$AUDIO_MODELS_CACHE``, else
``$XDG_CACHE_HOME/sashimi-audio-models``, else ``~/.cache/sashimi-audio-models``). Weights
(weight norms folded in), the recurrences' tables (computed in float64: for S4 the DPLR
``linear`` step mode's O(N r) update rewritten as a discrete diagonal-plus-rank-r transition,
:func:`discrete_dplr`; for S4D its diagonal form), activations, states and sums are all in
the model's precision, as in its eager step (the norms' statistics in float64); projections
are register-blocked, the recurrences run one channel per SIMD lane (tables and states in
blocks of channels, :func:`channel_blocks`), activations are vectorised (for float models,
GELU, exp and sigmoid without library calls, within 2.2e-7). Its logits equal
the eager step's to float32 rounding for float32 models (tested to 1e-4 of their RMS) and to
1e-9 for float64 models.

:data:`COMPILED` is the engine record (:class:`~audio_models.sampling.EngineSpec`) the
builders attach to SaShiMi language models; ``--engine auto`` picks it on the CPU for batches
up to :data:`COMPILED_MAX_BATCH` when a C compiler is present.
"""

from __future__ import annotations

import copy
import ctypes
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from audio_models.layers import FeedForward, Residual, ScalarLayerNorm, effective_weight
from audio_models.sampling import (
    EngineSpec,
    EngineUnavailable,
    SamplingStepper,
    Stepper,
    StepperFactory,
)

#: Up to this batch the compiled step was measured faster than the eager one (at 64 on 2
#: cores: 2x for S4 and S4D); above it ``auto`` leaves the choice to the eager step.
COMPILED_MAX_BATCH = 64
_FLAGS = (
    "-O3", "-march=native", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
    "-fno-trapping-math", "-shared", "-fPIC", "-pthread",
)  # fmt: skip
HEAD, TIER, LAYER = 16, 12, 20
H_MAXW = 12  # the plan header's widest tier (sashimi_step.c)
DIAGONAL, DPLR, FEEDFORWARD, DPLR_SCALED = 0, 1, 2, 3
#: S4's tables go to the basis of the states divided by G (DPLR_SCALED) when every |G| lies in
#: this range (a mode with G = 0 cannot be rescaled; the range keeps float32 states finite).
SCALED_G = (1e-12, 1e12)
SCALAR_NORM, LAYER_NORM = 0, 1


# -- the C library -----------------------------------------------------------------------------
def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    if os.environ.get("AUDIO_MODELS_CACHE"):
        return Path(os.environ["AUDIO_MODELS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sashimi-audio-models"


def cpu_fingerprint() -> str:
    """What ``-march=native`` depends on: the architecture and, on Linux, the CPU model and
    instruction-set flags. Part of the cache key, so a cache directory shared between
    different machines (a cluster's home directory) never hands one an unsupported library."""
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key = line.split(":", 1)[0].strip()
                if key in ("model name", "flags", "Features", "CPU part"):
                    found.setdefault(key, line.strip())  # the first CPU's; all are alike
    except OSError:
        pass
    return "\n".join([platform.machine(), platform.processor(), *sorted(found.values())])


_LIBRARIES: dict[tuple[str, str], ctypes.CDLL] = {}
WEIGHTS = {"float": np.float32, "double": np.float64}


_SASHIMI_ARGS: list[Any] = [
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
    ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
]  # fmt: skip


def load_library(
    weight: str = "double", *, name: str = "sashimi_step", argtypes: list[Any] | None = None
) -> ctypes.CDLL:
    """The compiled step ``name`` (``fast/<name>.c``, exporting the function ``name``) with
    weights stored as ``weight`` (``float`` or ``double``), built on first use (about a
    second) and cached by source hash, compiler and flags.

    Raises:
        EngineUnavailable: no C compiler, or compiling failed (the message has its output).
    """
    if (name, weight) in _LIBRARIES:
        return _LIBRARIES[name, weight]
    source = resources.files("audio_models.fast").joinpath(f"{name}.c").read_bytes()
    compiler = find_compiler()
    if compiler is None:
        raise EngineUnavailable("no C compiler found (set CC, or install cc/gcc/clang)")
    define = f"-DWEIGHT={weight}"
    key = hashlib.sha256(
        b"\0".join([source, compiler.encode(), " ".join(_FLAGS).encode(), define.encode(),
                     cpu_fingerprint().encode()])
    ).hexdigest()[:16]  # fmt: skip
    target = cache_dir() / f"{name}-{weight}-{key}.so"
    if not target.is_file():
        _compile(compiler, source, define, target)
    library = ctypes.CDLL(str(target))
    function = getattr(library, name)
    function.restype = ctypes.c_int
    function.argtypes = argtypes if argtypes is not None else _SASHIMI_ARGS
    _LIBRARIES[name, weight] = library
    return library


def _compile(compiler: str, source: bytes, define: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "step.c"
        src.write_bytes(source)
        out = Path(tmp) / "lib.so"
        result = None
        for flags in (list(_FLAGS), [f for f in _FLAGS if f != "-march=native"]):
            # The second try is for compilers without -march=native.
            cmd = [compiler, *flags, define, str(src), "-o", str(out), "-lm"]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                break
        assert result is not None
        if result.returncode != 0:
            raise EngineUnavailable(
                f"compiling the step with {compiler} failed: {result.stderr.strip()[-500:]}"
            )
        os.replace(out, target)  # atomic: other processes see the whole library or none


# -- laying a SaShiMi model out for the C step -------------------------------------------------
class _Layout:
    """Weights in one float64 array; offsets into it and into the state block."""

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes  # the C step's SIMD lanes (64 bytes of its precision)
        self.chunks: list[np.ndarray] = []
        self.size = 0
        self.state = 0

    def add(self, x: Tensor | np.ndarray) -> int:
        a = np.ascontiguousarray(
            x.detach().cpu().double().numpy() if isinstance(x, Tensor) else x, dtype=np.float64
        ).reshape(-1)
        offset = self.size
        self.chunks.append(a)
        self.size += a.size
        return offset

    def linear(
        self, module: nn.Module, *, rows: Tensor | None = None, cols: Tensor | None = None
    ) -> tuple[int, int]:
        """Offsets of the transposed effective weight (in x out, in :func:`panels`) and the
        bias; ``rows`` / ``cols`` reorder the outputs / inputs."""
        weight, bias = effective_weight(module)
        weight, bias = weight.detach(), bias.detach()
        if rows is not None:
            weight, bias = weight[rows], bias[rows]
        if cols is not None:
            weight = weight[:, cols]
        return self.add(panels(weight.t(), 16 * self.lanes)), self.add(bias)

    def claim(self, n: int) -> int:
        offset = self.state
        self.state += n
        return offset


def panels(wt: Tensor, width: int) -> Tensor:
    """A transposed weight ``(in, out)`` in panels of ``width`` outputs (the last may be
    narrower), each row-major, one after the other: the layout of ``sashimi_step.c``'s
    matrices (``PANEL``), in which a strip of outputs is read as one contiguous stream. A
    matrix of at most ``width`` outputs is unchanged."""
    return torch.cat([p.reshape(-1) for p in torch.split(wt, width, dim=1)])


def _pool_order(d: int, p: int) -> Tensor:
    """Feature ``s d + h`` of a ``(p, d)`` row-major frame is the pool's feature ``h p + s``."""
    s, h = torch.meshgrid(torch.arange(p), torch.arange(d), indexing="ij")
    return (h * p + s).reshape(-1)


def recurrence_tables(kernel: nn.Module) -> tuple[int, dict[str, Tensor]]:
    """A kernel's recurrence as float64 tables, computed from its parameters (channel 0 of
    ``C``): ``(DIAGONAL, {A, B, C})`` for S4D (``DiagKernel``: ``x <- A x + B u``, ``y = 2
    Re(C x)``, each complex ``(H, M)``) or ``(DPLR, {Lambda, P, Q, B, D, C, dt, inner_inv})``
    for S4 (``DPLRKernel``: the bilinear DPLR step in ``O(M r)``, the tables of its ``linear``
    step mode; ``P, Q (r, H, M)``, ``dt (H,)``, ``inner_inv (H, r, r)``).

    Raises:
        EngineUnavailable: another kernel.
    """
    from ssm_kernels.kernels import DiagKernel, DPLRKernel, _dplr_step_tables

    if not isinstance(kernel, DiagKernel | DPLRKernel):
        raise EngineUnavailable(f"no fused step for the kernel {type(kernel).__name__}")
    double = copy.deepcopy(kernel).cpu().double()  # tables on the CPU, in float64
    with torch.no_grad():
        if isinstance(double, DPLRKernel):
            t = _dplr_step_tables(double, "linear")
            names = ("Lambda", "P", "Q", "B", "D", "dt", "inner_inv")
            return DPLR, {**{k: t[k] for k in names}, "C": t["C"][0]}
        log_a, b, c = double.discrete()
        return DIAGONAL, {"A": torch.exp(log_a), "B": b, "C": c[0]}


def discrete_dplr(t: dict[str, Tensor]) -> dict[str, Tensor]:
    """S4's bilinear DPLR step (the tables of :func:`recurrence_tables`) in its discrete form:
    ``z_r = 2 Re(Z_r^H s)``, ``x = E s + G u - sum_r R_r z_r``, ``y = 2 Re(C x)``; ``E, G, C``
    complex ``(H, M)``, ``Z, R`` complex ``(r, H, M)``.

    The ``linear`` step computes ``Px = 2 Re(P^H s)``, ``w = s + dt/2 (Lambda s - P Px) + dt B
    u``, ``x = 2/dt (D w - D P inner_inv 2 Re(P^H D w))`` (``D = (2/dt - Lambda)^-1``). With
    ``E = 2/dt D (1 + dt/2 Lambda)`` and ``R_r = D P_r``, ``2/dt D w = E s - R Px + 2 D B u``,
    and ``2 Re(P^H D w)`` is ``dt/2 (2 Re(P^H E s) - inner Px) + 2 Re(P^H dt D B) u``, where
    ``inner = 2 Re(P^H D P)``. The correction's coefficient ``Px + 2/dt inner_inv 2 Re(P^H D
    w)`` then collapses (``I - inner_inv inner = inner_inv``) to ``inner_inv 2 Re(P^H (1 + E)
    s)`` plus a multiple of ``u``: one sum over the modes per rank instead of two, and no
    per-channel scalars left. Where the kernel's left factor ``Q`` is not ``P``
    (``separate_q``), ``Q`` takes ``P``'s place in every ``Re(P^H .)``."""
    lam, P, Q, B, D, dt, inv = (t[k] for k in ("Lambda", "P", "Q", "B", "D", "dt", "inner_inv"))
    dtc = dt.unsqueeze(-1)
    E = 2 / dtc * D * (1 + dtc * lam / 2)
    R = D.unsqueeze(0) * P  # (r, H, M)
    b = 2 * torch.einsum("shm,hm->hs", Q.conj(), dtc * D * B).real  # (H, r)
    c = 2 / dt.unsqueeze(-1) * torch.einsum("hrs,hs->hr", inv, b)
    Z = 2 * torch.einsum("hrs,shm->rhm", inv.to(Q.dtype), (1 + E.conj()).unsqueeze(0) * Q)
    G = 2 * D * B - torch.einsum("rhm,hr->hm", R, c.to(R.dtype))
    return {"E": E, "G": G, "C": t["C"], "Z": Z, "R": R}


def channel_blocks(parts: list[Tensor], lanes: int) -> Tensor:
    """Real ``(H, M)`` tables as the C step's recurrences read them: ``(H / lanes, M, K,
    lanes)`` for the ``K`` parts, ``H`` padded with zeros to a multiple of ``lanes``."""
    x = torch.stack(parts)  # (K, H, M)
    K, H, M = x.shape
    blocks = -(-H // lanes)
    x = torch.nn.functional.pad(x, (0, 0, 0, blocks * lanes - H))
    return x.reshape(K, blocks, lanes, M).permute(1, 3, 0, 2).reshape(-1)


def _ssm(lay: _Layout, kernel: nn.Module) -> tuple[int, int, int, int, int, int]:
    """Lay out a kernel's recurrence (:func:`recurrence_tables`, for S4 in the form of
    :func:`discrete_dplr`, on the states divided by ``G`` where :data:`SCALED_G` allows) in
    channel blocks: ``(offset, kind, rank, modes, scale, state size)``."""
    kind, t = recurrence_tables(kernel)
    if kind == DPLR:
        d = discrete_dplr(t)
        G, rank = d["G"], d["Z"].shape[0]
        magnitude = G.abs()
        scaled = bool((magnitude >= SCALED_G[0]).all() and (magnitude <= SCALED_G[1]).all())
        # scaled: x' = x / G (sashimi_step.c, dplr_blocks), so G' = 1, C G, Z conj(G), R / G
        kind = DPLR_SCALED if scaled else DPLR
        parts = [d["E"], d["C"] * G] if scaled else [d["E"], G, d["C"]]
        for z, r in zip(d["Z"], d["R"], strict=True):
            parts += [z * G.conj(), r / G] if scaled else [z, r]
    else:  # in the basis of the states divided by B (sashimi_step.c, ssm_diagonal)
        still = t["B"] == 0  # such a mode stays at zero: A = C B = 0 leave it out
        A, CB = t["A"].masked_fill(still, 0), (t["C"] * t["B"]).masked_fill(still, 0)
        parts, rank = [A, CB], 0
    H, M = parts[0].shape
    reals = [p for x in parts for p in (x.real, x.imag)]
    padded = -(-H // lay.lanes) * lay.lanes
    states = 2 * padded * M + padded * rank  # the modes, then S4's carried sums z
    return lay.add(channel_blocks(reals, lay.lanes)), kind, rank, M, 2, states


def _norm(lay: _Layout, norm: nn.Module, eps: list[float]) -> tuple[int, int, int]:
    if isinstance(norm, ScalarLayerNorm):
        return SCALAR_NORM, lay.add(norm.m), lay.add(norm.s)
    if isinstance(norm, nn.LayerNorm):
        eps.append(norm.eps)
        return LAYER_NORM, lay.add(norm.weight), lay.add(norm.bias)
    raise EngineUnavailable(f"no compiled step for the norm {type(norm).__name__}")


def _layer(lay: _Layout, layer: Residual, eps: list[float]) -> list[int]:
    kind_norm, n1, n2 = _norm(lay, layer.norm, eps)
    block: Any = layer.layer
    if isinstance(block, FeedForward):
        H = block.up.in_features
        ff1_w, ff1_b = lay.linear(block.up)
        ff2_w, ff2_b = lay.linear(block.down)
        fields = [H, FEEDFORWARD, kind_norm, n1, n2, block.up.out_features, 0, 0,
                  ff1_w, ff1_b, ff2_w, ff2_b, 0, 0]  # fmt: skip
    else:
        from ssm_kernels.block import S4Block

        if not isinstance(block, S4Block) or block.bidirectional:
            raise EngineUnavailable(f"no compiled step for the layer {type(block).__name__}")
        ssm, kind, rank, M, scale, states = _ssm(lay, block.kernel)
        H = block.d_model
        out_w, out_b = lay.linear(block.output)
        fields = [H, kind, kind_norm, n1, n2, M, scale, int(bool(block.glu)), ssm,
                  lay.add(block.D[0]), out_w, out_b, lay.claim(states), rank]  # fmt: skip
    return fields + [0] * (LAYER - len(fields))


def causal_sashimi(model: Any, engine: str) -> Any:
    """The causal SaShiMi backbone of a language model ``model``.

    Raises:
        EngineUnavailable: another model, or a non-causal SaShiMi.
    """
    from audio_models.lm import BackboneLM
    from audio_models.sashimi import SaShiMi

    backbone = getattr(model, "backbone", None)
    if not isinstance(model, BackboneLM) or not isinstance(backbone, SaShiMi):
        name = type(backbone if backbone is not None else model).__name__
        raise EngineUnavailable(f"the {engine} engine runs SaShiMi models, not {name}")
    if not backbone.causal:
        raise EngineUnavailable("a non-causal SaShiMi cannot generate")
    return backbone


class CompiledSaShiMi:
    """A SaShiMi language model laid out for the C step (weights copied at construction).

    Raises:
        EngineUnavailable: the model is not a causal SaShiMi language model of S4 / S4D
            blocks, or no C compiler is found.
    """

    def __init__(self, model: Any) -> None:
        backbone = causal_sashimi(model, "compiled")
        self.dtype = model.head.weight.dtype
        weight = "double" if self.dtype == torch.float64 else "float"
        lay, eps = _Layout(64 // np.dtype(WEIGHTS[weight]).itemsize), [backbone.norm.eps]
        layers: list[list[int]] = []
        tiers: list[list[int]] = []

        def add_layers(modules: list[Residual]) -> tuple[int, int]:
            first = len(layers)
            for module in modules:
                layers.append(_layer(lay, module, eps))
            return len(modules), first

        widths = [backbone.d_model]
        for i, (downs, pool, up, ups) in enumerate(backbone._tiers):
            d, p = backbone.widths[i], pool.pool
            n_down, first_down = add_layers(downs)
            n_up, first_up = add_layers(ups)
            order = _pool_order(d, p)
            dp_w, dp_b = lay.linear(pool.linear, cols=order)
            up_w, up_b = lay.linear(up.linear, rows=order)
            e = int(effective_weight(pool.linear)[0].shape[0])
            widths.append(e)
            tiers.append([d, p, e, n_down, first_down, n_up, first_up, dp_w, dp_b, up_w, up_b,
                          lay.claim(2 * p * d)])  # fmt: skip
        n_center, first_center = add_layers([m for m in backbone.c_layers])
        if not backbone.c_layers:
            raise EngineUnavailable("the compiled engine needs at least one centre layer")
        if len(set(eps)) != 1:
            raise EngineUnavailable("the compiled engine needs one LayerNorm eps for all norms")
        self.eps = float(eps[0])
        head_w, head_b = lay.linear(model.head)
        classes = model.head.out_features
        header = [
            len(tiers), backbone.d_model, classes, lay.add(model.embedding.weight),
            lay.add(backbone.norm.weight), lay.add(backbone.norm.bias), head_w, head_b,
            n_center, first_center, lay.state, len(layers), max(widths), int(backbone.unet),
        ]  # fmt: skip
        self.plan = np.array(
            [*header, *[0] * (HEAD - len(header)), *itertools.chain(*tiers, *layers)],
            dtype=np.int64,
        )
        self.weights = np.concatenate(lay.chunks).astype(WEIGHTS[weight])
        self.state_size = lay.state
        self.classes = classes
        self.act_dtype = self.dtype  # activations, states and logits: the model's precision
        self.library = load_library(weight)
        _team_functions(self.library)


def split_batch(batch: int, workers: int | None) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: the batch in at most ``workers`` (default
    ``torch.get_num_threads()``) contiguous parts of near-equal size."""
    n = max(1, min(batch, workers if workers is not None else torch.get_num_threads()))
    per = -(-batch // n)
    return [(lo, min(batch, lo + per)) for lo in range(0, batch, per)]


class SplitStepper(Stepper):
    """A C step over one batch of ``compiled`` (a laid-out model with ``classes`` and
    ``dtype``), run on parts of the batch at once, one thread per part (ctypes releases the
    GIL during the call; the caller's thread takes the first part). A subclass sets up its
    state and calls the C function on rows ``lo:hi`` in :meth:`_call`."""

    def __init__(self, compiled: Any, batch: int, workers: int | None) -> None:
        self.c, self.batch, self.classes = compiled, batch, int(compiled.classes)
        self.parts = split_batch(batch, workers)
        self.own_threads = len(self.parts) > 1
        self.pool = ThreadPoolExecutor(len(self.parts) - 1) if len(self.parts) > 1 else None
        self.tokens = np.zeros(batch, dtype=np.int64)
        self._tokens = torch.from_numpy(self.tokens)  # the same memory, for copy_
        # what the C step computes in: the model's precision (SaShiMi) or float64
        self.logits = torch.zeros(
            batch, self.classes, dtype=getattr(compiled, "act_dtype", torch.float64)
        )
        self.t = 0
        # Each part's pointer arguments, made once (``ndarray.ctypes`` costs microseconds per
        # call, a good part of a batch-1 step): the arrays are never reallocated.
        self._bound: dict[int, tuple[int, ...]] = {}

    @abstractmethod
    def _call(self, lo: int, hi: int) -> int:
        """The C step on rows ``lo:hi`` at time ``self.t``; non-zero: a bad token."""

    @abstractmethod
    def _pointers(self, lo: int, hi: int) -> tuple[int, ...]:
        """The C function's array and size arguments for rows ``lo:hi``."""

    def _args(self, lo: int, hi: int) -> tuple[int, ...]:
        """:meth:`_pointers`, made once per part."""
        args = self._bound.get(lo)
        if args is None:
            args = self._bound[lo] = self._pointers(lo, hi)
        return args

    def _run_parts(self, call: Callable[[int, int], int]) -> None:
        """``call(lo, hi)`` on every part at once (the caller's thread takes the first).

        Raises:
            ValueError: a part's call returned non-zero (a token out of range).
        """
        if self.pool is None:
            bad = call(0, self.batch)
        else:
            first, *rest = self.parts
            futures = [self.pool.submit(call, lo, hi) for lo, hi in rest]
            bad = call(*first) | any(f.result() for f in futures)
        if bad:
            raise ValueError(f"a token is outside [0, {self.classes - 1}]")

    def step(self, prev: Tensor) -> Tensor:
        self._tokens.copy_(prev.detach())
        self._run_parts(self._call)
        self.t += 1
        return self.logits.to(self.c.dtype, copy=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False)

    def __del__(self) -> None:
        self.close()


#: The most threads a team shares one sequence's step between (``sashimi_step.c`` allows 8;
#: every layer ends at a barrier that waits for all of them, and only 2 were measured).
MAX_TEAM = 4


def _team_functions(library: ctypes.CDLL) -> None:
    library.sashimi_team_new.restype = ctypes.c_void_p
    library.sashimi_team_new.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    library.sashimi_team_free.restype = None
    library.sashimi_team_free.argtypes = [ctypes.c_void_p]
    library.sashimi_team_step.restype = ctypes.c_int
    library.sashimi_team_step.argtypes = [ctypes.c_void_p, *_SASHIMI_ARGS]
    library.sashimi_sample.restype = ctypes.c_int
    library.sashimi_sample.argtypes = [
        ctypes.c_void_p, *_SASHIMI_ARGS, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_double, ctypes.c_void_p,
        ctypes.c_void_p,
    ]  # fmt: skip


class CompiledStepper(SplitStepper, SamplingStepper):
    """One batch of sequences through the C step; ``workers`` threads (default
    ``torch.get_num_threads()``): parts of the batch, one per thread, or for a batch of one a
    team of threads that share each step (``sashimi_team_step``: every recurrence split by
    channels and every projection by inputs or outputs, one barrier per layer)."""

    def __init__(self, compiled: CompiledSaShiMi, batch: int, workers: int | None = None) -> None:
        super().__init__(compiled, batch, workers)
        self.state = np.zeros(
            (batch, max(1, compiled.state_size)),
            dtype=np.float32 if compiled.act_dtype == torch.float32 else np.float64,
        )
        self.team: int | None = None
        library = compiled.library
        members = min(MAX_TEAM, workers if workers is not None else torch.get_num_threads())
        if batch == 1 and members > 1:
            # the widest projection split by its inputs: a GLU's 2 H, or a pool's output
            self.team = library.sashimi_team_new(
                members, 2 * int(compiled.plan[H_MAXW]), compiled.classes
            )
            self.own_threads = self.team is not None

    def _pointers(self, lo: int, hi: int) -> tuple[int, ...]:
        c = self.c
        return (
            c.weights.ctypes.data,
            c.plan.ctypes.data,
            self.state.ctypes.data + lo * self.state.strides[0],
            self.tokens.ctypes.data + lo * self.tokens.strides[0],
            self.logits.data_ptr() + lo * c.classes * self.logits.element_size(),
            hi - lo,
        )

    def _call(self, lo: int, hi: int) -> int:
        c, args = self.c, self._args(lo, hi)
        if self.team is not None:
            team: int = c.library.sashimi_team_step(self.team, *args, self.t, c.eps)
            return team
        status: int = c.library.sashimi_step(*args, self.t, c.eps)
        return status

    #: Steps per :meth:`sample_block` call that :func:`~audio_models.sampling.generate` makes.
    block = 128

    def sample_block(
        self,
        prev: Tensor,
        n: int,
        forced: Tensor,
        noise: Tensor | None,
        temperature: float,
        top_p: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """``n`` steps with the sampling in C (``sashimi_sample``): the first ``len(forced)``
        take ``forced (k, batch)``, the others draw as :func:`~audio_models.sampling.
        sample_logits` does (the nucleus too) from ``noise (n - k, batch, classes)`` (Exp(1)
        draws, float64; ``None`` at temperature 0) -> ``(tokens (n, batch), the drawn tokens'
        log-probabilities summed (batch,))``.

        Raises:
            ValueError: a token outside ``[0, classes)``.
        """
        self._tokens.copy_(prev.detach())
        out = torch.empty(n, self.batch, dtype=torch.long)
        logp = torch.zeros(self.batch, dtype=torch.float64)
        forced = forced.to(torch.long).contiguous()
        if noise is not None:
            noise = noise.to(torch.float64).contiguous()
        c, b = self.c, self.batch

        def call(lo: int, hi: int) -> int:
            status: int = c.library.sashimi_sample(
                self.team, *self._args(lo, hi), self.t, c.eps, n, forced.shape[0],
                forced.data_ptr() + lo * 8 if forced.numel() else None,
                noise.data_ptr() + lo * c.classes * 8 if noise is not None else None,
                b, temperature, top_p, out.data_ptr() + lo * 8, logp.data_ptr() + lo * 8,
            )  # fmt: skip
            return status

        self._run_parts(call)
        self.t += n
        return out, logp

    def close(self) -> None:
        super().close()
        team, self.team = getattr(self, "team", None), None
        if team is not None:
            self.c.library.sashimi_team_free(team)


def c_step_engine(
    layout: Callable[[Any], Any],
    stepper: Callable[[Any, int], Stepper],
    max_batch: int = COMPILED_MAX_BATCH,
    *,
    one_sequence_threads: bool = False,
) -> EngineSpec:
    """The ``compiled`` record of a fused C step on the CPU: ``layout(model)`` lays a model
    out once (raising :class:`EngineUnavailable` for one it cannot run), ``stepper(layout,
    batch)`` steps one batch; ``--engine auto`` picks it up to ``max_batch``."""

    def prepare(model: Any, batch: int, device: torch.device) -> StepperFactory:
        if device.type != "cpu":
            raise EngineUnavailable(
                f"the compiled engine runs on the CPU; the model is on {device}"
            )
        laid = layout(model)
        return lambda size: stepper(laid, size)

    def auto(model: Any, batch: int, device: torch.device) -> str | None:
        if device.type != "cpu":
            return f"the C step runs on the CPU, not {device.type}"
        if batch > max_batch:
            return f"batch {batch} > {max_batch}, the largest it was measured faster at"
        if find_compiler() is None:
            return "no C compiler found (set CC, or install cc/gcc/clang)"
        return None

    return EngineSpec(
        name="compiled",
        label="compiled (fused C step)",
        prepare=prepare,
        auto=auto,
        one_sequence_threads=one_sequence_threads,
    )


#: The engine record the builders attach to SaShiMi language models.
COMPILED = c_step_engine(CompiledSaShiMi, CompiledStepper, one_sequence_threads=True)
