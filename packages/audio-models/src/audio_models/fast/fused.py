"""The ``triton`` generation engine: SaShiMi on CUDA GPUs, one fused kernel per tier step and
one CUDA graph per period.

A SaShiMi with pools ``p1, p2, ...`` repeats its schedule every ``P = p1 p2 ...`` samples
(16 for the SC09 preset): the outer tier steps at every sample, tier 1 after every ``p1``-th,
the centre once per period. :class:`FusedSampler` unrolls one period into ``P`` outer-tier
launches plus the inner tiers' launches where they are due (21 for the SC09 preset), each a
:func:`~audio_models.fast.triton_tier.tier_kernel` that runs a whole tier (see that module),
the outer one also embedding the previous token, applying the final norm and the head and
sampling the next token on the device. On CUDA the period is captured once into a CUDA graph
and replayed: every buffer is static, and what changes between periods lives in device
tensors (the tokens, the prefix to force, the period counter that keys the sampling noise),
so nothing is frozen into the graph but each launch's place in the period. The host
synchronises once per batch of sequences, not per sample. Where the model allows, the inner
tiers' launches overlap the outer tier's, each tier on a stream of its own in the graph
(:class:`FusedSampler`'s ``overlap``).

:meth:`FusedSaShiMi.torch_tier` is the kernel's twin in plain torch ops on the same tables
and buffers (same arithmetic, same counter-based noise): it is what the CPU tests trace with
``make_fx`` and run on fake CUDA tensors, and what the kernel is checked against under
``TRITON_INTERPRET=1``.

Sampling is Gumbel-max (``argmax(logits / temperature + G)``, exact sampling from the
tempered softmax) after the nucleus mask when ``top_p < 1``, or argmax at temperature 0; the
reported log-likelihood is the model's (temperature 1, no truncation), as for every engine.
The random stream differs from the eager engine's ``torch.multinomial`` (same distribution,
reproducible from the caller's generator).

Supported: causal SaShiMi language models (the paper's or its U-Net, with as many up layers
as down layers per tier) whose widths, state sizes, classes and pools are powers of two,
with S4D or S4 (DPLR, any rank, ``Q`` tied to ``P`` or not) kernels; anything else is
refused with the reason (:class:`~audio_models.sampling.EngineUnavailable`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_models.fast.engine import (
    DPLR,
    _pool_order,
    causal_sashimi,
    discrete_dplr,
    recurrence_tables,
)
from audio_models.layers import FeedForward, Residual, ScalarLayerNorm, effective_weight
from audio_models.sampling import BlockSampler, EngineSpec, EngineUnavailable, StepperFactory

MOD = 2147483647  # the hash's modulus (2^31 - 1); triton_tier.MOD
#: Register-tile budgets per warp (elements) of the kernel's matrix-vector chunks and of its
#: recurrence chunks: sized so that no variant spills registers when compiled for sm_90
#: (checked by ``tests/test_triton.py``).
TILE, SSM_TILE = 1024, 256
#: Most rows of the batch one program steps. On an H200 (2026-12-04) blocks of 16 rows gave
#: wrong logits for the SC09 preset (40 times their RMS off the eager step's; the interpreter
#: computes them right, so the cause is the compiled kernel's, not found yet), and blocks of
#: 1 to 4 rows were the fastest anyway: larger blocks are refused.
MAX_BLOCK = 4


@dataclass(frozen=True)
class Launch:
    """How one tier's kernel is launched: ``block`` rows of the batch per program (the
    weights are read once per block; a power of two up to :data:`MAX_BLOCK`), ``warps`` per
    program, the register-tile budgets per warp (elements) of the matrix-vector chunks
    (``tile``) and of the recurrence's chunks (``ssm_tile``), and whether an input that fits
    one tile stays in registers (``reg``; else every input goes through the program's scratch
    row)."""

    block: int
    warps: int
    tile: int = TILE
    ssm_tile: int = SSM_TILE
    reg: bool = True


def default_launch(width: int, batch: int) -> Launch:
    """The launch of a tier of this width at this batch: the fastest per tier in a sweep of
    the SC09 preset (widths 64 / 128 / 256) on an H200, 2026-12-04
    (``benchmarks/gpu_profile.py --part sweep``). Below 128 rows: one row per program, 4
    warps up to width 64, else 8; from 128 rows: one row, 4 warps up to width 128, else 8;
    from 512 rows: 4 rows and 8 warps, but 2 rows and 4 warps for widths 65 to 128."""
    if batch >= 512:
        block, warps = (2, 4) if 64 < width <= 128 else (4, 8)
    elif batch >= 128:
        block, warps = 1, 4 if width <= 128 else 8
    else:
        block, warps = 1, 4 if width <= 64 else 8
    return Launch(block=block, warps=warps)


@dataclass(frozen=True)
class Step:
    """One launch of a period: ``tier``, its ``slot`` in its frame, the sample position
    ``pos``, which of the tier's up-frame buffers it reads (``up_in``) and which of the finer
    tier's it writes (``up_out``), and whether it pools its input straight from the tokens'
    embeddings (``tokens_in``: tier 1 of a SaShiMi whose outer tier has no down layers)."""

    tier: int
    slot: int
    pos: int
    up_in: int = 0
    up_out: int = 0
    tokens_in: bool = False


def _pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _floor2(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def mix(x: Tensor) -> Tensor:
    """The kernel's ``_mix`` hash in torch int64 ops (values in ``[0, 2^31)``)."""
    x = (x * 1103515245 + 12345) % MOD
    x = x ^ (x >> 16)
    x = (x * 1597334677 + 1013904223) % MOD
    x = x ^ (x >> 13)
    x = (x * 747796405 + 743852806) % MOD
    return x ^ (x >> 16)


def uniforms(seed: Tensor, counter: Tensor, period: int, pos: int, rows: Tensor,
             classes: Tensor) -> Tensor:  # fmt: skip
    """``(B, C)`` float32 uniforms in ``(0, 1)`` for one sample position, as the kernel draws
    them (24 bits of a hash of seed, period counter, position, row and class)."""
    key = mix((seed + counter * period + pos) % MOD)
    key = mix((key + rows) % MOD)
    key = mix((key[:, None] + classes[None, :]) % MOD)
    return (key >> 7).to(torch.float32) * 2.0**-24 + 2.0**-25


@dataclass
class FusedTier:
    """One tier's layers stacked for the kernel (every tensor on the model's device).

    ``pool``: this tier's frame length (0 for the centre); ``n``: its S4 layers, each
    followed by a feed-forward layer of width ``f`` when ``f > 0`` (in the U-Net the first
    ``nd`` of them are the down path's, then as many for the up path); ``kin`` / ``kout``: the
    finer tier's frame width (its pool times its width; 0 for the outer tier).

    The recurrence's tables (``ssm``, ``(n, 6 + 4 rank, d, m)``, real and imaginary parts)
    are S4D's ``A, B, C`` or S4's discrete form (:func:`~audio_models.fast.engine.discrete_dplr`:
    ``E, G, C``, then ``Z_r, R_r`` for each rank ``r``), one step of which is ``z_r = Re(Z_r^H
    s)``, ``x = E s + G u - sum_r R_r z_r``, ``y = 2 Re(C x)``: S4D is the case of rank 0.
    """

    d: int
    pool: int
    n: int
    f: int
    m: int
    glu: bool
    rank: int  # of S4's low-rank correction; 0 for S4D
    nd: int = 0  # the U-Net's down S4 layers, before the up ones (each with its feed-forward)
    kin: int = 0
    w: dict[str, Tensor] = field(default_factory=dict)


def _norm_params(norm: nn.Module, d: int) -> Tensor:
    if isinstance(norm, ScalarLayerNorm):
        return torch.stack([norm.m.expand(d), norm.s.expand(d)])
    assert isinstance(norm, nn.LayerNorm)
    return torch.stack([norm.weight, norm.bias])


def _stack_tier(layers: list[Residual], d: int, pool: int, n_down: int = 0) -> FusedTier:
    """The residual ``layers`` of one tier (in the U-Net the ``n_down`` of its down path, then
    as many of its up path) stacked for the kernel."""
    from ssm_kernels.block import S4Block

    if n_down and (2 * n_down != len(layers)):
        raise EngineUnavailable(
            "the triton engine runs U-Nets with as many up layers as down layers in each tier"
        )
    if not layers:
        raise EngineUnavailable("the triton engine needs at least one layer in every tier")
    ff = isinstance(layers[1].layer, FeedForward) if len(layers) > 1 else False
    kinds = [isinstance(r.layer, FeedForward) for r in layers]
    s4s, ffs = (layers[0::2], layers[1::2]) if ff else (layers, [])
    if kinds != ([False, True] * len(s4s) if ff else [False] * len(s4s)):
        raise EngineUnavailable(
            "the triton engine runs tiers of S4 layers, each followed by a feed-forward layer "
            "or none"
        )
    tables: list[Tensor] = []
    kinds_seen = set()
    for r in s4s:
        block: Any = r.layer
        if not isinstance(block, S4Block) or block.bidirectional:
            raise EngineUnavailable(f"no fused step for the layer {type(block).__name__}")
        kind, t = recurrence_tables(block.kernel)
        if kind == DPLR:
            dd = discrete_dplr(t)
            parts = [dd["E"], dd["G"], dd["C"]]
            for z, corr in zip(dd["Z"], dd["R"], strict=True):
                parts += [z, corr]
        else:
            parts = [t["A"], t["B"], t["C"]]
        kinds_seen.add((kind, (len(parts) - 3) // 2))
        tables.append(torch.stack([x for p in parts for x in (p.real, p.imag)]))
    blocks: list[Any] = [r.layer for r in s4s]
    feeds: list[Any] = [r.layer for r in ffs]
    if len(kinds_seen) > 1 or len({b.glu for b in blocks}) > 1:
        raise EngineUnavailable(
            "the triton engine needs one kernel kind (and rank) and one GLU per tier"
        )
    m = int(tables[0].shape[-1])
    f = int(feeds[0].up.out_features) if feeds else 0
    if not all(_pow2(x) for x in (d, m, max(f, 1), max(pool, 1))):
        raise EngineUnavailable(
            f"the triton engine needs power-of-two sizes; a tier has width {d}, "
            f"{m} modes, feed-forward width {f}, pool {pool}"
        )

    def out_w(block: Any) -> tuple[Tensor, Tensor]:
        weight, bias = effective_weight(block.output)
        return weight.t(), bias

    w = {
        "n1": torch.stack([_norm_params(r.norm, d) for r in s4s]),
        "ssm": torch.stack(tables),
        "dsk": torch.stack([b.D[0] for b in blocks]),
        "wo": torch.stack([out_w(b)[0] for b in blocks]),
        "bo": torch.stack([out_w(b)[1] for b in blocks]),
    }
    if ffs:
        w |= {
            "n2": torch.stack([_norm_params(r.norm, d) for r in ffs]),
            "w1": torch.stack([x.up.weight.t() for x in feeds]),
            "b1": torch.stack([x.up.bias for x in feeds]),
            "w2": torch.stack([x.down.weight.t() for x in feeds]),
            "b2": torch.stack([x.down.bias for x in feeds]),
        }
    glu = bool(blocks[0].glu)
    rank = kinds_seen.pop()[1]
    if ff and n_down % 2:
        raise EngineUnavailable("the triton engine needs whole S4 + feed-forward pairs per path")
    nd = n_down // 2 if ff else n_down
    return FusedTier(d=d, pool=pool, n=len(s4s), f=f, m=m, glu=glu, rank=rank, nd=nd, w=w)


class FusedSaShiMi:
    """A SaShiMi language model laid out for :func:`triton_tier.tier_kernel` (weights copied,
    weight norms folded in, recurrence tables computed in float64 and stored in the model's
    precision, on the model's device or ``device``).

    Raises:
        EngineUnavailable: a model the engine does not run (see the module notes).
    """

    def __init__(self, model: Any, device: torch.device | str | None = None) -> None:
        backbone = causal_sashimi(model, "triton")
        self.unet = bool(backbone.unet)
        norms = [r.norm for r in backbone.residual_layers()]
        self.layer_norm = isinstance(norms[0], nn.LayerNorm) if norms else False
        if any(isinstance(n, nn.LayerNorm) != self.layer_norm for n in norms):
            raise EngineUnavailable("the triton engine needs one kind of norm in all layers")
        eps = {n.eps for n in norms if isinstance(n, nn.LayerNorm)}
        if len(eps) > 1:
            raise EngineUnavailable("the triton engine needs one LayerNorm eps for all norms")
        self.eps = float(eps.pop()) if eps else 0.0
        self.head_eps = float(backbone.norm.eps)
        self.dtype = model.head.weight.dtype
        self.device = torch.device(device) if device is not None else model.head.weight.device
        self.classes = int(model.head.out_features)
        if not _pow2(self.classes):
            raise EngineUnavailable(f"the triton engine needs 2^k classes; got {self.classes}")
        self.pools = [int(p) for p in backbone.pool]
        self.period = 1
        for p in self.pools:
            self.period *= p
        with torch.no_grad():
            tiers = []
            for i, (downs, _pool, _up, ups) in enumerate(backbone._tiers):
                downs = list(downs)  # only the U-Net has down layers
                tiers.append(_stack_tier(downs + list(ups), backbone.widths[i], self.pools[i],
                                         len(downs)))  # fmt: skip
            centre: list[Any] = list(backbone.c_layers)
            d_c = int(centre[0].layer.d_model) if centre else 0
            tiers.append(_stack_tier(centre, d_c, 0))
            for i, (_downs, pool, up, _ups) in enumerate(backbone._tiers):
                inner = tiers[i + 1]
                order = _pool_order(backbone.widths[i], pool.pool)
                dp_w, dp_b = effective_weight(pool.linear)
                up_w, up_b = effective_weight(up.linear)
                inner.kin = int(dp_w.shape[1])
                inner.w |= {"wdp": dp_w[:, order].t(), "bdp": dp_b,
                            "wup": up_w[order].t(), "bup": up_b[order]}  # fmt: skip
            dev, dt = self.device, self.dtype
            self.tiers = tiers
            for tier in tiers:
                tier.w = {k: v.detach().to(dev, dt).contiguous() for k, v in tier.w.items()}
            self.emb = model.embedding.weight.detach().to(dev, dt).contiguous()
            self.fn = torch.stack([backbone.norm.weight, backbone.norm.bias]).detach().to(dev, dt)
            self.wh = model.head.weight.detach().t().to(dev, dt).contiguous()
            self.bh = model.head.bias.detach().to(dev, dt).contiguous()

    def to(self, device: torch.device | str) -> FusedSaShiMi:
        """A copy on ``device`` (tables copied; also to fake devices, for traces)."""
        out = copy.copy(self)
        out.device = torch.device(device)
        out.tiers = [
            dataclasses.replace(t, w={k: v.to(device) for k, v in t.w.items()}) for t in self.tiers
        ]
        out.emb, out.fn, out.wh, out.bh = (x.to(device) for x in (self.emb, self.fn, self.wh,
                                                                   self.bh))  # fmt: skip
        return out

    def overlap_refused(self) -> str | None:
        """Why a period of this model cannot overlap its tiers' launches (``None``: it can).

        Overlapping needs tier 1 to pool its input from the tokens (the outer tier has no
        down layers: the paper's SaShiMi, not the U-Net), a centre of its own (two pools or
        more), and an even number of outer frames per period (the outer tier's up frames
        alternate between two buffers)."""
        if self.unet:
            return "the U-Net's tier 1 pools the outer tier's down layers"
        if len(self.pools) < 2:
            return "fewer than two pools"
        if (self.period // self.pools[0]) % 2:
            return "an odd number of outer frames per period"
        return None

    # -- the readable twin of the kernel ---------------------------------------------------
    def _norm(self, x: Tensor, p: Tensor) -> Tensor:
        var, mean = torch.var_mean(x, dim=-1, unbiased=False, keepdim=True)
        if self.layer_norm:
            return (x - mean) / torch.sqrt(var + self.eps) * p[0] + p[1]
        return p[1] / torch.sqrt(var) * (x - mean + p[0])

    def _s4(self, t: FusedTier, li: int, h: Tensor, st: Tensor) -> Tensor:
        u = self._norm(h, t.w["n1"][li])
        q, sre, sim = t.w["ssm"][li], st[:, 0], st[:, 1]
        uu = u[:, :, None]
        ere, eim, gre, gim, cre, cim = q[:6].unbind(0)
        nre = ere * sre - eim * sim + gre * uu
        nim = ere * sim + eim * sre + gim * uu
        for r in range(t.rank):  # S4's low-rank correction
            zre, zim, rre, rim = q[6 + 4 * r : 10 + 4 * r].unbind(0)
            z = (zre * sre + zim * sim).sum(-1, keepdim=True)
            nre = nre - rre * z
            nim = nim - rim * z
        st[:, 0].copy_(nre)
        st[:, 1].copy_(nim)
        y = 2 * (cre * nre - cim * nim).sum(-1)
        y = F.gelu(y + t.w["dsk"][li] * u)
        o = torch.addmm(t.w["bo"][li], y, t.w["wo"][li])
        if t.glu:
            return h + o[:, : t.d] * torch.sigmoid(o[:, t.d :])
        return h + o

    def _ff(self, t: FusedTier, li: int, h: Tensor) -> Tensor:
        u = self._norm(h, t.w["n2"][li])
        f = F.gelu(torch.addmm(t.w["b1"][li], u, t.w["w1"][li]))
        return h + torch.addmm(t.w["b2"][li], f, t.w["w2"][li])

    def torch_tier(self, step: Step, b: Buffers, *, temperature: float, top_p: float) -> None:
        """One launch of a period (:class:`Step`) on the buffers ``b``: what one
        :func:`tier_kernel` launch computes."""
        i, slot, pos = step.tier, step.slot, step.pos
        t = self.tiers[i]
        if i == 0:
            x = self.emb[b.tokens[pos]]
        else:
            if step.tokens_in:  # the outer frame's tokens, embedded: what it stores in downs[0]
                p0 = self.pools[0]
                frame = self.emb[b.tokens[pos - p0 + 1 : pos + 1]].transpose(0, 1)
                frame = frame.reshape(frame.shape[0], -1)
            else:
                frame = b.downs[i - 1]
            x = torch.addmm(t.w["bdp"], frame, t.w["wdp"])
        skips = [x]  # the U-Net's: the input and every down residual layer's output
        for li in range(t.nd):
            x = self._s4(t, li, x, b.states[i][:, li])
            skips.append(x)
            if t.f:
                x = self._ff(t, li, x)
                skips.append(x)
        skips.pop()
        if t.pool:
            at = slice(slot * t.d, (slot + 1) * t.d)
            s = x + b.ups[i][step.up_in][:, at]
            b.downs[i][:, at] = x
        else:
            s = x
        h = s
        for li in range(t.nd, t.n):
            h = self._s4(t, li, h, b.states[i][:, li])
            if t.nd:
                h = h + skips.pop()
            if t.f:
                h = self._ff(t, li, h)
                if t.nd:
                    h = h + skips.pop()
        out = h if t.nd else h + s
        if i > 0:
            b.ups[i - 1][step.up_out].copy_(torch.addmm(t.w["bup"], out, t.w["wup"]))
        else:
            self._head(out, b, pos, temperature=temperature, top_p=top_p)

    def _head(self, out: Tensor, b: Buffers, pos: int, *, temperature: float,
              top_p: float) -> None:  # fmt: skip
        y = F.layer_norm(out, (out.shape[-1],), self.fn[0], self.fn[1], self.head_eps)
        logits = torch.addmm(self.bh, y, self.wh)
        b.logits[pos].copy_(logits)
        logp = torch.log_softmax(logits, dim=-1)
        if temperature == 0:
            drawn = logits.argmax(-1)
        else:
            z = logits / temperature
            if top_p < 1:
                pr = torch.softmax(z, dim=-1)
                ranked = pr.sort(dim=-1, descending=True).values
                before = ranked.cumsum(-1) - ranked
                kept = torch.where(before < top_p, ranked, 2.0).amin(-1, keepdim=True)
                z = z.masked_fill(pr < kept, float("-inf"))
            u = uniforms(b.seed, b.counter, self.period, pos, b.rows, b.classes)
            drawn = (z + (-torch.log(-torch.log(u))).to(z.dtype)).argmax(-1)
        tok = torch.where(b.use[pos] != 0, b.forced[pos], drawn)
        b.logp[pos].copy_(logp.gather(-1, tok[:, None])[:, 0])
        b.tokens[pos + 1].copy_(tok)


@dataclass
class Buffers:
    """Every tensor a period reads or writes, allocated once (static for CUDA graphs).

    ``tokens (P + 1, B)``: row 0 the previous period's last token, row ``j + 1`` the token
    chosen at position ``j``; ``forced`` / ``use (P, B)``: the prefix tokens to take instead
    of sampling; ``logits (P, B, C)``, ``logp (P, B)``: per position; ``seed``, ``counter``:
    the noise key; per tier, the S4 states ``(B, n, 2, d, M)``, (but the centre) the
    ``(B, pool d)`` down frame and the ``(k, B, pool d)`` up frames (``k = 2`` for the outer
    tier of an overlapped period, else 1) and the kernel's scratch rows (``(tiers, B, 2 sw)``:
    one set per tier, which overlapping launches need); (the U-Net) each row's skips (flat,
    ``B`` times the widest tier's skips, the kernel's ``SKW``).
    """

    tokens: Tensor
    forced: Tensor
    use: Tensor
    logits: Tensor
    logp: Tensor
    seed: Tensor
    counter: Tensor
    scratch: Tensor
    skips: Tensor
    rows: Tensor
    classes: Tensor
    states: list[Tensor]
    downs: list[Tensor]
    ups: list[Tensor]

    def flat(self) -> list[Tensor]:
        fixed = [self.tokens, self.forced, self.use, self.logits, self.logp, self.seed,
                 self.counter, self.scratch, self.skips, self.rows, self.classes]  # fmt: skip
        return [*fixed, *self.states, *self.downs, *self.ups]

    @classmethod
    def from_flat(cls, flat: list[Tensor] | tuple[Tensor, ...], tiers: int) -> Buffers:
        (tokens, forced, use, logits, logp, seed, counter, scratch, skips, rows, classes), rest = (
            flat[:11],
            list(flat[11:]),
        )
        pools = tiers - 1
        return cls(tokens, forced, use, logits, logp, seed, counter, scratch, skips, rows,
                   classes, states=rest[:tiers], downs=rest[tiers : tiers + pools],
                   ups=rest[tiers + pools :])  # fmt: skip


def _skip_width(t: FusedTier) -> int:
    """A row's skips in tier ``t`` (the U-Net's): the input and every down residual layer's
    output."""
    return (t.nd * (2 if t.f else 1) + 1) * t.d if t.nd else 1


class FusedSampler(BlockSampler):
    """Samples one batch of sequences a period at a time on the device.

    Args:
        backend: ``triton`` (the kernels; on the CPU only under ``TRITON_INTERPRET=1``) or
            ``torch`` (the twin, any device).
        graph: capture the period into a CUDA graph (default: on CUDA with ``triton``).
        launches: one :class:`Launch` per tier (default: :func:`default_launch`).
        overlap: schedule the period so that the inner tiers' launches overlap the outer
            tier's (default: where the model allows, :meth:`FusedSaShiMi.overlap_refused`).
            Tier 1 then pools its frame from the tokens' embeddings and starts as soon as the
            frame's last token is drawn, beside the outer step that embeds it, and the centre
            runs at the start of the next period, beside its first outer steps (its output is
            first read there). In a CUDA graph each tier's launches go to a stream of their
            own, joined where :meth:`dependencies` says.

    Raises:
        ValueError: bad launches, or ``overlap=True`` for a model that cannot overlap.
    """

    def __init__(self, fused: FusedSaShiMi, batch: int, *, backend: str = "triton",
                 graph: bool | None = None, launches: list[Launch] | None = None,
                 overlap: bool | None = None) -> None:  # fmt: skip
        self.f, self.batch, self.backend = fused, batch, backend
        self.period, self.classes = fused.period, fused.classes
        refused = fused.overlap_refused()
        if overlap and refused:
            raise ValueError(f"this model's tiers cannot overlap: {refused}")
        self.overlap = refused is None if overlap is None else overlap
        self.graph_enabled = (
            graph if graph is not None else (fused.device.type == "cuda" and backend == "triton")
        )
        #: The CUDA graphs of a period: ``graph`` the steady one, ``first_graph`` the first
        #: period's after :meth:`start` (no centre from a previous period, when overlapped).
        self.graph: Any = None
        self.first_graph: Any = None
        self.first = True
        self.settings: tuple[float, float] | None = None
        dev, dt = fused.device, fused.dtype
        P, B, C = self.period, batch, fused.classes
        sw = max(max(t.d, t.f) for t in fused.tiers)
        self.sw = sw
        tiers = fused.tiers
        frames = [2 if self.overlap and i == 0 else 1 for i in range(len(tiers) - 1)]
        self.b = Buffers(
            tokens=torch.zeros(P + 1, B, dtype=torch.long, device=dev),
            forced=torch.zeros(P, B, dtype=torch.long, device=dev),
            use=torch.zeros(P, B, dtype=torch.int32, device=dev),
            logits=torch.zeros(P, B, C, dtype=dt, device=dev),
            logp=torch.zeros(P, B, dtype=dt, device=dev),
            seed=torch.zeros(1, dtype=torch.long, device=dev),
            counter=torch.zeros(1, dtype=torch.long, device=dev),
            scratch=torch.zeros(len(tiers), B, 2 * sw, dtype=dt, device=dev),
            skips=torch.zeros(B * max(map(_skip_width, tiers)), dtype=dt, device=dev),
            rows=torch.arange(B, device=dev),
            classes=torch.arange(C, device=dev),
            states=[torch.zeros(B, t.n, 2, t.d, t.m, dtype=dt, device=dev) for t in tiers],
            downs=[torch.zeros(B, t.pool * t.d, dtype=dt, device=dev) for t in tiers[:-1]],
            ups=[
                torch.zeros(k, B, t.pool * t.d, dtype=dt, device=dev)
                for k, t in zip(frames, tiers[:-1], strict=True)
            ],
        )
        self.launches = launches or [default_launch(t.d, batch) for t in tiers]
        if len(self.launches) != len(tiers):
            raise ValueError(f"{len(tiers)} tiers need as many launches")
        for launch in self.launches:
            if not (_pow2(launch.block) and launch.block <= MAX_BLOCK):
                raise ValueError(
                    f"a launch's block must be a power of two up to {MAX_BLOCK} rows; got "
                    f"{launch.block}"
                )

    # -- one period ------------------------------------------------------------------------
    def schedule(self, first: bool = False) -> list[Step]:
        """Every launch of a period, in an order whose sequential run is the model's step
        order (``first``: the first period after :meth:`start`).

        In order, at each position the outer tier steps, then every tier that completes a
        frame there. Overlapped, tier 1's step (and the inner ones' but the centre's) comes
        before the outer step at its frame's last position (it reads that position's token,
        drawn by the step before, and writes the up frame that the outer tier reads only from
        the next frame on, into the other of two buffers), and the centre's comes first in
        the next period (``first``: none)."""
        pools, P = self.f.pools, self.period
        last = len(pools)  # the centre's tier
        out: list[Step] = []
        if self.overlap and not first:
            out.append(Step(last, 0, P - 1))
        for j in range(P):
            frame = j // pools[0] if pools else 0
            outer = Step(0, j % pools[0] if pools else 0, j,
                         up_in=(frame + 1) % 2 if self.overlap else 0)  # fmt: skip
            inner: list[Step] = []
            span = 1
            for i in range(1, last + 1):
                span *= pools[i - 1]
                if (j + 1) % span:
                    break
                slot = (j // span) % pools[i] if i < last else 0
                if self.overlap and i == 1:
                    inner.append(Step(1, slot, j, up_out=frame % 2, tokens_in=True))
                elif not (self.overlap and i == last):
                    inner.append(Step(i, slot, j))
            out += [*inner, outer] if self.overlap else [outer, *inner]
        return out

    def accesses(self, step: Step) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """What one launch reads and writes: ``(reads, writes)``, sets of buffer parts (a
        tier's states or scratch rows, a token row, a frame slot or up frame, a position's
        outputs); the constant tables and the period's inputs are left out."""
        i, t, pools = step.tier, self.f.tiers[step.tier], self.f.pools
        reads: set[tuple[Any, ...]] = {("state", i)}
        writes: set[tuple[Any, ...]] = {("state", i), ("scratch", i)}
        if t.nd:
            reads.add(("skips",))
            writes.add(("skips",))
        if i == 0:
            reads.add(("token", step.pos))
            writes |= {("token", step.pos + 1), ("out", step.pos)}
        elif step.tokens_in:
            reads |= {("token", r) for r in range(step.pos - pools[0] + 1, step.pos + 1)}
        else:
            reads |= {("down", i - 1, k) for k in range(pools[i - 1])}
        if t.pool:
            reads.add(("up", i, step.up_in))
            writes.add(("down", i, step.slot))
        if i > 0:
            writes.add(("up", i - 1, step.up_out))
        return reads, writes

    def dependencies(self, steps: list[Step]) -> list[list[int]]:
        """For each launch of ``steps``, the earlier launches it must wait for: the last one
        that wrote what it reads or writes, and those that read what it writes since."""
        last: dict[tuple[Any, ...], int] = {}
        readers: dict[tuple[Any, ...], list[int]] = {}
        out: list[list[int]] = []
        for n, step in enumerate(steps):
            reads, writes = self.accesses(step)
            need = {last[r] for r in reads | writes if r in last}
            for w in writes:
                need.update(readers.get(w, ()))
            for r in reads:
                readers.setdefault(r, []).append(n)
            for w in writes:
                last[w], readers[w] = n, []
            need.discard(n)
            out.append(sorted(need))
        return out

    def launch(self, step: Step, b: Buffers) -> None:
        """Run one launch on ``b`` with the sampler's backend."""
        temperature, top_p = self.settings or (1.0, 1.0)
        if self.backend == "torch":
            self.f.torch_tier(step, b, temperature=temperature, top_p=top_p)
        else:
            from audio_models.fast.triton_tier import tier_kernel

            args, constants = self.launch_args(step, b, temperature, top_p)
            launch = self.launches[step.tier]
            grid = (-(-self.batch // launch.block),)
            tier_kernel[grid](*args, **constants, num_warps=launch.warps)

    def period_fn(self, b: Buffers, first: bool = False) -> None:
        """Run one period on ``b`` (the schedule in order, then the period's bookkeeping)."""
        for step in self.schedule(first):
            self.launch(step, b)
        self.end_period(b)

    def end_period(self, b: Buffers) -> None:
        """The period's bookkeeping after its launches: its last token becomes the next
        period's first input, and the noise counter moves on."""
        b.tokens[0].copy_(b.tokens[self.period])
        b.counter.add_(1)

    def _period_streams(self, b: Buffers, first: bool) -> None:
        """One period launched for a CUDA graph capture: each tier on a stream of its own
        (the outer tier on the capturing one), each launch after the launches of other tiers
        that it depends on."""
        steps = self.schedule(first)
        deps = self.dependencies(steps)
        main = torch.cuda.current_stream()
        streams = [main] + [torch.cuda.Stream() for _ in self.f.tiers[1:]]  # type: ignore[no-untyped-call]
        for s in streams[1:]:
            s.wait_stream(main)
        done: list[Any] = []
        for step, need in zip(steps, deps, strict=True):
            stream = streams[step.tier]
            for d in need:
                if steps[d].tier != step.tier:
                    stream.wait_event(done[d])
            with torch.cuda.stream(stream):
                self.launch(step, b)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(stream)
            done.append(event)
        for s in streams[1:]:
            main.wait_stream(s)
        self.end_period(b)

    def launch_args(self, step: Step, b: Buffers, temperature: float,
                    top_p: float) -> tuple[list[Any], dict[str, Any]]:  # fmt: skip
        """The arguments and the compile-time constants of one launch."""
        i, slot, pos = step.tier, step.slot, step.pos
        f, t, w = self.f, self.f.tiers[i], self.f.tiers[i].w
        launch = self.launches[i]
        BB, dummy = launch.block, b.logp
        kout = f.tiers[i - 1].pool * f.tiers[i - 1].d if i > 0 else 1
        tile, ssm_tile = launch.tile * launch.warps, launch.ssm_tile * launch.warps

        def kc(k: int, n: int) -> int:
            return min(k, _floor2(tile // (BB * n)))

        args = [
            b.tokens, f.emb if i == 0 or step.tokens_in else dummy,
            b.downs[i - 1] if i > 0 else dummy, w.get("wdp", dummy), w.get("bdp", dummy),
            b.ups[i][step.up_in] if t.pool else dummy, b.downs[i] if t.pool else dummy, slot,
            w["n1"], w["ssm"], w["dsk"], w["wo"], w["bo"], w.get("n2", dummy),
            w.get("w1", dummy), w.get("b1", dummy), w.get("w2", dummy), w.get("b2", dummy),
            b.states[i], w.get("wup", dummy), w.get("bup", dummy),
            b.ups[i - 1][step.up_out] if i > 0 else dummy, b.skips,
            f.fn, f.wh, f.bh, b.logits, b.logp, b.forced, b.use, b.seed, b.counter,
            pos, float(temperature or 1.0), float(top_p), b.scratch[i], self.batch, f.eps,
            f.head_eps,
        ]  # fmt: skip
        constants = dict(
            BB=BB, D=t.d, M=t.m, NL=t.n, ND=t.nd, SKW=_skip_width(t), F=max(t.f, 1),
            POOL=max(t.pool, 1), KIN=max(t.kin, 1),
            KOUT=kout, C=f.classes, PERIOD=self.period, SW=self.sw,
            HC=min(t.d, _floor2(ssm_tile // (BB * t.m))), KC_IN=kc(max(t.kin, 1), t.d),
            KC_O=kc(t.d, t.d), KC_F1=kc(t.d, max(t.f, 1)), KC_F2=kc(max(t.f, 1), t.d),
            KC_UP=kc(t.d, kout), KC_HEAD=kc(t.d, f.classes), EMBED=i == 0,
            TOKENS_IN=step.tokens_in, DE=f.tiers[0].d,
            CENTER=t.pool == 0, POOL_OUT=i > 0, HEAD=i == 0, HAS_FF=t.f > 0, GLU=t.glu,
            RANK=t.rank, LAYER_NORM=f.layer_norm, GREEDY=temperature == 0,
            NUCLEUS=top_p < 1, REG=launch.reg,
        )  # fmt: skip
        return args, constants

    # -- the sampler interface -------------------------------------------------------------
    def start(self, *, start_token: int, seed: Tensor, temperature: float, top_p: float) -> None:
        settings = (float(temperature), float(top_p))
        if self.graph is not None and settings != self.settings:
            self.graph = self.first_graph = None  # the settings are part of the launches
        self.settings = settings
        self._reset(start_token, seed)
        if self.graph_enabled and self.graph is None:
            self.first_graph, self.graph = self._capture(start_token, seed)

    def _reset(self, start_token: int, seed: Tensor) -> None:
        b = self.b
        for t in [*b.states, *b.downs, *b.ups]:
            t.zero_()
        b.tokens.fill_(start_token)
        b.counter.zero_()
        b.seed.copy_(seed.reshape(1) % MOD)
        self.first = True

    def _capture(self, start_token: int, seed: Tensor) -> tuple[Any, Any]:
        """Warm every kernel (compiling it) on a side stream, restore the buffers, then
        capture the first period and the steady one."""
        stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.period_fn(self.b, first=True)
            self.period_fn(self.b)
        torch.cuda.current_stream().wait_stream(stream)
        self._reset(start_token, seed)
        graphs = []
        for first in (True, False):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                if self.overlap:
                    self._period_streams(self.b, first)
                else:
                    self.period_fn(self.b, first)
            graphs.append(graph)
        return graphs[0], graphs[1]

    def run(self, forced: Tensor, use: Tensor) -> tuple[Tensor, Tensor]:
        self.b.forced.copy_(forced)
        self.b.use.copy_(use)
        if self.graph is not None:
            (self.first_graph if self.first else self.graph).replay()
        else:
            self.period_fn(self.b, first=self.first)
        self.first = False
        return self.b.tokens[1:].clone(), self.b.logp.clone()


def triton_available() -> str | None:
    """``None`` when Triton imports, else why not."""
    try:
        import triton  # noqa: F401
    except ImportError as exc:  # e.g. macOS wheels of torch come without it
        return f"Triton is not installed ({exc})"
    return None


def _prepare(model: Any, batch: int, device: torch.device) -> StepperFactory:
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    if device.type != "cuda" and not (device.type == "cpu" and interpreted):
        raise EngineUnavailable(
            f"the triton engine runs on CUDA GPUs (on the CPU only under TRITON_INTERPRET=1, "
            f"for tests); the model is on {device}"
        )
    why = triton_available()
    if why is not None:
        raise EngineUnavailable(why)
    fused = FusedSaShiMi(model)
    return lambda size: FusedSampler(fused, size)


def _auto(model: Any, batch: int, device: torch.device) -> str | None:
    if device.type != "cuda":
        return "runs on CUDA GPUs"
    return triton_available()


#: The engine record the builders attach to SaShiMi language models.
TRITON = EngineSpec(
    name="triton",
    label="triton (fused tier kernels, one CUDA graph per period)",
    prepare=_prepare,
    auto=_auto,
)
