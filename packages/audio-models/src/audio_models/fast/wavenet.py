"""The ``compiled`` engine for WaveNet: its whole sample step fused in C, on the CPU.

One call into ``wavenet_step.c`` per sample runs the embedding, every dilated layer (the
"fast WaveNet" queues of :class:`~audio_models.wavenet.WaveNet`), the end convolutions and
the language model's head for the whole batch, layer by layer, so each weight is read once
per step. Two products are folded in float64 when the model is laid out: the embedding into
the start convolution (a table of one row per token) and the last end convolution into the
head. Weights, sums, activations and queues are in the model's precision (float32 models in
float32, as their eager step).
The queues start from the eager model's primed state (one convolutional pass over the start
tokens), so the logits equal the eager step's to float32 rounding for float32 models (tested
to 1e-4 of their RMS) and to 1e-9 for float64 models.

:data:`COMPILED_WAVENET` is the engine record the builders attach to WaveNet language models;
``--engine auto`` picks it on the CPU for batches up to 64 (the largest batch it was
measured faster at; batches split across threads as SaShiMi's).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audio_models.fast.engine import WEIGHTS, SplitStepper, c_step_engine, load_library
from audio_models.sampling import EngineUnavailable

HEAD, LAYER = 16, 8

_ARGS = [ctypes.c_void_p] * 6 + [ctypes.c_int64, ctypes.c_int64]


def _f64(x: Tensor | None) -> Tensor:
    if x is None:
        raise EngineUnavailable("the compiled WaveNet engine needs the end convolutions' biases")
    return x.detach().cpu().double()


class CompiledWaveNet:
    """A WaveNet language model laid out for the C step (weights copied at construction).

    Raises:
        EngineUnavailable: the model is not a language model over a WaveNet, or no C
            compiler is found.
    """

    def __init__(self, model: Any) -> None:
        from audio_models.lm import BackboneLM
        from audio_models.wavenet import WaveNet

        net = getattr(model, "backbone", None)
        if not isinstance(model, BackboneLM) or not isinstance(net, WaveNet):
            name = type(net if net is not None else model).__name__
            raise EngineUnavailable(f"the compiled WaveNet engine runs WaveNets, not {name}")
        self.model = model
        self.dtype = model.head.weight.dtype
        weight = "double" if self.dtype == torch.float64 else "float"
        chunks: list[np.ndarray] = []
        size = 0

        def add(x: Tensor) -> int:
            nonlocal size
            a = np.ascontiguousarray(x.numpy(), dtype=np.float64).reshape(-1)
            chunks.append(a)
            size += a.size
            return size - a.size

        k, R = net.kernel_size, net.residual_channels
        Dc = int(net._layers()[0][0].out_channels)
        S, E = net.end_conv_1.in_channels, net.end_conv_1.out_channels
        V = model.head.out_features
        with torch.no_grad():
            start = _f64(model.embedding.weight) @ _f64(net.start_conv.weight[..., 0]).t()
            head = _f64(model.head.weight)
            out_w = head @ _f64(net.end_conv_2.weight[..., 0])  # (V, E)
            out_b = head @ _f64(net.end_conv_2.bias) + _f64(model.head.bias)
            header = [len(net.dilations), R, Dc, S, E, V, k, 0, add(start),
                      add(_f64(net.end_conv_1.weight[..., 0]).t()),
                      add(_f64(net.end_conv_1.bias)), add(out_w.t()), add(out_b)]  # fmt: skip
            layers, queue = [], 0
            for filt, gate, res, sk, d in net._layers():
                fg = torch.cat([_f64(filt.weight), _f64(gate.weight)])  # (2 Dc, R, k)
                gates = add(fg.permute(2, 1, 0))
                res_w, skip_w = add(_f64(res.weight[..., 0]).t()), add(_f64(sk.weight[..., 0]).t())
                layers.append([d, gates, res_w, skip_w, queue, (k - 1) * d, 0, 0])
                queue += (k - 1) * d * R
        header[7] = queue
        self.plan = np.array(
            [*header, *[0] * (HEAD - len(header)), *[x for row in layers for x in row]],
            dtype=np.int64,
        )
        self.weights = np.concatenate(chunks).astype(WEIGHTS[weight])
        self.state_size, self.classes = queue, V
        self.act_dtype = self.dtype  # activations, queues and logits: the model's precision
        self.scratch_width = R + k * R + 2 * Dc + Dc + S + E
        self.library = load_library(weight, name="wavenet_step", argtypes=_ARGS)


class CompiledWaveNetStepper(SplitStepper):
    """One batch: the queues start from the eager model's primed state; ``workers`` threads
    (default ``torch.get_num_threads()``, at most one per sequence)."""

    def __init__(self, compiled: CompiledWaveNet, batch: int, workers: int | None = None) -> None:
        super().__init__(compiled, batch, workers)
        primed = compiled.model.default_state(batch, device=torch.device("cpu"))
        self.t = int(primed.t)
        self.state = np.concatenate(
            [
                q.detach().to(compiled.dtype).permute(0, 2, 1).reshape(batch, -1).numpy()
                for q in primed.queues
            ],
            axis=1,
        )
        self.state = np.ascontiguousarray(self.state)
        self.scratch = np.zeros(batch * compiled.scratch_width, dtype=compiled.weights.dtype)

    def _pointers(self, lo: int, hi: int) -> tuple[int, ...]:
        c = self.c
        return (
            c.weights.ctypes.data,
            c.plan.ctypes.data,
            self.state.ctypes.data + lo * self.state.strides[0],
            self.scratch.ctypes.data + lo * c.scratch_width * self.scratch.itemsize,
            self.tokens.ctypes.data + lo * self.tokens.strides[0],
            self.logits.data_ptr() + lo * c.classes * self.logits.element_size(),
            hi - lo,
        )

    def _call(self, lo: int, hi: int) -> int:
        status: int = self.c.library.wavenet_step(*self._args(lo, hi), self.t)
        return status


#: The engine record the builders attach to WaveNet language models.
COMPILED_WAVENET = c_step_engine(CompiledWaveNet, CompiledWaveNetStepper)
