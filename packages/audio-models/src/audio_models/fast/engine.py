"""Generation engines: how ``AutoregressiveModel.generate`` computes each step.

- ``eager``: the model's own ``step`` (readable reference, any model, any device).
- ``compiled``: SaShiMi language models on the CPU. The whole sample step (embedding, every
  tier due at this sample, final norm, head) is one call into ``sashimi_step.c``, compiled
  with the machine's C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``) on first use and
  cached (``$AUDIO_MODELS_CACHE``, else ``$XDG_CACHE_HOME/sashimi-audio-models``, else
  ``~/.cache/sashimi-audio-models``). Sums, activations and states are float64; weights and
  the recurrences' tables (computed in float64: for S4 the DPLR ``linear`` step mode's O(N r)
  update, for S4D its diagonal form) are stored in the model's precision. Its logits
  equal the eager step's to float32 rounding for float32 models (tested to 1e-4 of their
  RMS) and to 1e-9 for float64 models.
- ``auto``: ``compiled`` where it applies (a SaShiMi model on the CPU, a C compiler present,
  batch <= ``COMPILED_MAX_BATCH``), else ``eager``.
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
from abc import ABC, abstractmethod
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from audio_core.errors import ProblemsError

Engine = Literal["auto", "eager", "compiled"]
ENGINES: tuple[str, ...] = ("auto", "eager", "compiled")
#: Above this batch the eager step's batched matrix products beat the C loop over sequences.
COMPILED_MAX_BATCH = 16
_FLAGS = (
    "-O3", "-march=native", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
    "-fno-trapping-math", "-shared", "-fPIC",
)  # fmt: skip
HEAD, TIER, LAYER = 16, 13, 20


class EngineUnavailable(ProblemsError):
    """The requested engine cannot run this model here; the message says why (``audio-run``
    prints it as one line and exits 2)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class Stepper(ABC):
    """One batch of sequences being generated: ``step(prev)`` -> ``(batch, classes)`` logits."""

    name: str = ""

    @abstractmethod
    def step(self, prev: Tensor) -> Tensor:
        """Logits for the next sample given the previous one, ``prev (batch,)``."""


class EagerStepper(Stepper):
    name = "eager"

    def __init__(self, model: Any, batch: int, device: torch.device) -> None:
        self.model = model
        self.state = model.default_state(batch, device=device)

    def step(self, prev: Tensor) -> Tensor:
        logits, self.state = self.model.step(prev, self.state)
        out: Tensor = logits
        return out


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


_LIBRARIES: dict[str, ctypes.CDLL] = {}
WEIGHTS = {"float": np.float32, "double": np.float64}


def load_library(weight: str = "double") -> ctypes.CDLL:
    """The compiled step with weights stored as ``weight`` (``float`` or ``double``), built on
    first use (about a second) and cached by source hash, compiler and flags.

    Raises:
        EngineUnavailable: no C compiler, or compiling failed (the message has its output).
    """
    if weight in _LIBRARIES:
        return _LIBRARIES[weight]
    source = resources.files("audio_models.fast").joinpath("sashimi_step.c").read_bytes()
    compiler = find_compiler()
    if compiler is None:
        raise EngineUnavailable("no C compiler found (set CC, or install cc/gcc/clang)")
    define = f"-DWEIGHT={weight}"
    key = hashlib.sha256(
        b"\0".join([source, compiler.encode(), " ".join(_FLAGS).encode(), define.encode(),
                     cpu_fingerprint().encode()])
    ).hexdigest()[:16]  # fmt: skip
    target = cache_dir() / f"sashimi_step-{weight}-{key}.so"
    if not target.is_file():
        _compile(compiler, source, define, target)
    library = ctypes.CDLL(str(target))
    library.sashimi_step.restype = ctypes.c_int
    library.sashimi_step.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
    ]  # fmt: skip
    _LIBRARIES[weight] = library
    return library


def _compile(compiler: str, source: bytes, define: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "sashimi_step.c"
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

    def __init__(self) -> None:
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

    def linear(self, module: nn.Linear) -> tuple[int, int]:
        """Offsets of the transposed weight (in x out) and the bias."""
        bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
        return self.add(module.weight.detach().t()), self.add(bias)

    def claim(self, n: int) -> int:
        offset = self.state
        self.state += n
        return offset


def _ssm(lay: _Layout, kernel: nn.Module) -> tuple[int, int, int, int, int]:
    """Lay out a kernel's recurrence: ``(offset, kind, rank, modes, scale)``.

    S4D (``DiagKernel``): ``x <- A x + B u``, ``y = 2 Re(C x)`` (kind 0). S4 (``DPLRKernel``):
    the bilinear DPLR step in ``O(M r)`` (kind 1), the tables of its ``linear`` step mode. Both
    computed in float64 from the module's parameters, channel 0 of ``C``.
    """
    from ssm_kernels.kernels import DiagKernel, DPLRKernel, _dplr_step_tables

    double = copy.deepcopy(kernel).double()
    with torch.no_grad():
        if isinstance(double, DPLRKernel):
            t = _dplr_step_tables(double, "linear")
            lam, P, B, D, C = t["Lambda"], t["P"], t["B"], t["D"], t["C"][0]
            R, M = P.shape[0], P.shape[-1]
            parts = [lam.real, lam.imag, B.real, B.imag, D.real, D.imag, C.real, C.imag]
            pr = torch.stack([P.real, P.imag], dim=1)  # (r, 2, H, M)
            flat = [torch.stack(parts), pr, t["dt"], t["inner_inv"]]
            offset = lay.add(torch.cat([x.reshape(-1) for x in flat]))
            return offset, 1, R, M, 2
        if isinstance(double, DiagKernel):
            log_a, b, c = double.discrete()
            a, c0 = torch.exp(log_a), c[0]
            parts = [a.real, a.imag, b.real, b.imag, c0.real, c0.imag]
            return lay.add(torch.stack(parts).reshape(-1)), 0, 0, a.shape[-1], 2
    raise EngineUnavailable(f"no compiled step for the kernel {type(kernel).__name__}")


def _layer(lay: _Layout, layer: Any, eps: list[float]) -> list[int]:
    block = layer.s4
    ssm, kind, rank, M, scale = _ssm(lay, block.kernel)
    H = block.d_model
    eps.extend([layer.norm1.eps, layer.norm2.eps])
    out_w, out_b = lay.linear(block.output)
    ff1_w, ff1_b = lay.linear(layer.ff.up)
    ff2_w, ff2_b = lay.linear(layer.ff.down)
    return [
        H, M, scale, int(bool(block.glu)), layer.ff.up.out_features,
        lay.add(layer.norm1.weight), lay.add(layer.norm1.bias), ssm, lay.add(block.D),
        out_w, out_b, lay.add(layer.norm2.weight), lay.add(layer.norm2.bias),
        ff1_w, ff1_b, ff2_w, ff2_b, lay.claim(2 * H * M), kind, rank,
    ]  # fmt: skip


class CompiledSaShiMi:
    """A SaShiMi language model laid out for the C step (weights copied at construction)."""

    def __init__(self, model: Any) -> None:
        from audio_models.lm import BackboneLM
        from audio_models.sashimi import SaShiMi

        backbone = getattr(model, "backbone", None)
        if not isinstance(model, BackboneLM) or not isinstance(backbone, SaShiMi):
            name = type(backbone if backbone is not None else model).__name__
            raise EngineUnavailable(f"the compiled engine runs SaShiMi models, not {name}")
        if backbone.bidirectional:
            raise EngineUnavailable("a bidirectional SaShiMi cannot generate")
        self.dtype = model.head.weight.dtype
        weight = "double" if self.dtype == torch.float64 else "float"
        self.library = load_library(weight)
        lay, eps = _Layout(), [backbone.norm.eps]
        layers: list[list[int]] = []
        tiers: list[list[int]] = []

        def add_layers(modules: Any) -> tuple[int, int]:
            first = len(layers)
            for module in modules:
                layers.append(_layer(lay, module, eps))
            return len(layers) - first, first

        width = backbone.d_model
        widths = [width]
        for i, p in enumerate(backbone.pool):
            d = backbone.widths[i]
            n_down, first_down = add_layers(backbone.down_layers[i])
            n_up, first_up = add_layers(backbone.up_layers[i])
            down_pool: Any = backbone.down_pools[i]
            up_pool: Any = backbone.up_pools[i]
            dp_w, dp_b = lay.linear(down_pool.linear)
            up_w, up_b = lay.linear(up_pool.linear)
            e = int(down_pool.linear.out_features)
            widths.append(e)
            tiers.append([d, p, e, n_down, first_down, n_up, first_up, dp_w, dp_b, up_w, up_b,
                          lay.claim(p * d), lay.claim(p * d)])  # fmt: skip
        n_center, first_center = add_layers(backbone.center)
        if len(set(eps)) != 1:
            raise EngineUnavailable("the compiled engine needs one LayerNorm eps for all norms")
        self.eps = float(eps[0])
        head_w, head_b = lay.linear(model.head)
        classes = model.head.out_features
        header = [
            len(tiers), backbone.d_model, classes, lay.add(model.embedding.weight),
            lay.add(backbone.norm.weight), lay.add(backbone.norm.bias), head_w, head_b,
            n_center, first_center, lay.state, len(layers), max(widths),
        ]  # fmt: skip
        self.plan = np.array(
            [*header, *[0] * (HEAD - len(header)), *itertools.chain(*tiers, *layers)],
            dtype=np.int64,
        )
        self.weights = np.concatenate(lay.chunks).astype(WEIGHTS[weight])
        self.state_size = lay.state
        self.classes = classes


class CompiledStepper(Stepper):
    name = "compiled (fused C step)"

    def __init__(self, compiled: CompiledSaShiMi, batch: int) -> None:
        self.c = compiled
        self.batch = batch
        self.state = np.zeros((batch, max(1, compiled.state_size)), dtype=np.float64)
        self.tokens = np.zeros(batch, dtype=np.int64)
        self.logits = torch.zeros(batch, compiled.classes, dtype=torch.float64)
        self.t = 0

    def step(self, prev: Tensor) -> Tensor:
        self.tokens[:] = prev.detach().cpu().numpy()
        status = self.c.library.sashimi_step(
            self.c.weights.ctypes.data,
            self.c.plan.ctypes.data,
            self.state.ctypes.data,
            self.tokens.ctypes.data,
            self.logits.data_ptr(),
            self.batch,
            self.t,
            self.c.eps,
        )
        if status != 0:
            raise ValueError(f"a token is outside [0, {self.c.classes - 1}]")
        self.t += 1
        return self.logits.to(self.c.dtype, copy=True)


def choose_engine(
    model: Any, engine: str, *, batch: int, device: torch.device
) -> tuple[CompiledSaShiMi | None, str]:
    """Resolve ``engine`` for this model, batch and device: ``(layout, reason)``, where a
    ``None`` layout means the eager step and ``reason`` says why it was chosen.

    Raises:
        EngineUnavailable: ``engine="compiled"`` where it cannot run.
        ValueError: an unknown engine name.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine == "eager":
        return None, "asked for"
    if device.type != "cpu":
        if engine == "compiled":
            raise EngineUnavailable(
                f"the compiled engine runs on the CPU; the model is on {device}"
            )
        return None, f"no fused step for {device.type} yet"
    if engine == "auto" and batch > COMPILED_MAX_BATCH:
        return None, f"batch {batch} > {COMPILED_MAX_BATCH}: batched eager steps are faster"
    try:
        return CompiledSaShiMi(model), "fastest available"
    except EngineUnavailable as exc:
        if engine == "compiled":
            raise
        return None, str(exc)


def stepper_name(compiled: CompiledSaShiMi | None) -> str:
    return CompiledStepper.name if compiled is not None else EagerStepper.name
