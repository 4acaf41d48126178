"""The Triton kernel of the ``triton`` engine: one SaShiMi tier step, every layer of the tier.

One launch steps one tier of the model for a block of ``BB`` sequences per program (grid:
``ceil(batch / BB)``): it reads its input (the embedding of the previous token in the outer
tier; the down-pool of the finer tier's completed frame, a matrix-vector product, in the
others), adds the up-pooled output due at this step and records the input for the next
down-pool, runs the tier's residual layers (S4 / S4D recurrences on their states, GELU,
GLU, feed-forward layers) with each weight read once per step for the block, adds the
tier's input back, and then either up-pools its output into the finer tier's buffer (middle
and centre tiers) or applies the final norm and the head and samples the next token
(outer tier). The arithmetic is :meth:`audio_models.fast.fused.FusedSaShiMi.torch_tier`'s,
its readable twin, in the model's precision (float32 or float64).

Matrix-vector products read their input from a per-program scratch row in global memory, in
chunks of ``KC_*`` inputs, so that the largest register tile stays near ``TILE`` elements
at any width; the recurrences run in chunks of ``HC`` channels. Sampling draws Gumbel noise
from a counter-based hash of ``(seed, period counter, position, row, class)`` (the seed and
the counter are device tensors, so a CUDA graph replays with new noise), the twin computes
the same hash with torch integer ops.

Sizes (widths, modes, classes, pools) must be powers of two; the engine's layout checks.
"""

from __future__ import annotations

import triton
import triton.language as tl

MOD = 2147483647  # 2^31 - 1: the hash works in [0, MOD), products stay below 2^62


@triton.jit
def _mix(x):
    """Three multiply-mod and xor-shift rounds on int64 values in [0, 2^31)."""
    x = (x * 1103515245 + 12345) % 2147483647
    x = x ^ (x >> 16)
    x = (x * 1597334677 + 1013904223) % 2147483647
    x = x ^ (x >> 13)
    x = (x * 747796405 + 743852806) % 2147483647
    return x ^ (x >> 16)


@triton.jit
def _mv(x_ptr, xs, rows, rmask, w_ptr, ws, b_ptr, BB: tl.constexpr, K: tl.constexpr,
        N: tl.constexpr, KC: tl.constexpr):  # fmt: skip
    """``(BB, N)``: rows ``rows`` of ``x (., xs)`` times ``w (K, N)`` (row stride ``ws``) plus
    ``b``, ``KC`` inputs at a time."""
    n = tl.arange(0, N)
    acc = tl.zeros((BB, N), dtype=tl.float32) + tl.load(b_ptr + n)[None, :]
    for k0 in range(0, K, KC):
        k = k0 + tl.arange(0, KC)
        xk = tl.load(x_ptr + rows[:, None] * xs + k[None, :], mask=rmask[:, None], other=0.0)
        wk = tl.load(w_ptr + k[:, None] * ws + n[None, :])
        acc += tl.sum(xk[:, :, None] * wk[None, :, :], axis=1)
    return acc


@triton.jit
def _mv_tokens(tokens_ptr, emb_ptr, pos, B, rows, rmask, w_ptr, ws, b_ptr, BB: tl.constexpr,
               K: tl.constexpr, N: tl.constexpr, KC: tl.constexpr,
               DE: tl.constexpr):  # fmt: skip
    """:func:`_mv` of the outer tier's frame ending at position ``pos``, taken from the
    tokens' embeddings (``emb (classes, DE)``, token rows ``pos - K / DE + 1 .. pos``): the
    frame the outer tier stores, without waiting for its last step."""
    n = tl.arange(0, N)
    acc = tl.zeros((BB, N), dtype=tl.float32) + tl.load(b_ptr + n)[None, :]
    for k0 in range(0, K, KC):
        k = k0 + tl.arange(0, KC)
        row = pos - K // DE + 1 + k // DE
        tok = tl.load(tokens_ptr + row[None, :] * B + rows[:, None], mask=rmask[:, None],
                      other=0)  # fmt: skip
        xk = tl.load(emb_ptr + tok * DE + (k % DE)[None, :], mask=rmask[:, None], other=0.0)
        wk = tl.load(w_ptr + k[:, None] * ws + n[None, :])
        acc += tl.sum(xk[:, :, None] * wk[None, :, :], axis=1)
    return acc


@triton.jit
def _mv_reg(x, w_ptr, ws, b_ptr, K: tl.constexpr, N: tl.constexpr):
    """``(BB, N)``: ``x (BB, K)``, held in registers, times ``w (K, N)`` (row stride ``ws``)
    plus ``b``, in one tile (no scratch round trip)."""
    k = tl.arange(0, K)
    n = tl.arange(0, N)
    w = tl.load(w_ptr + k[:, None] * ws + n[None, :])
    return tl.load(b_ptr + n)[None, :] + tl.sum(x[:, :, None] * w[None, :, :], axis=1)


@triton.jit
def _proj(x, scr, rows, rmask, SW2: tl.constexpr, w_ptr, ws, b_ptr, BB: tl.constexpr,
          K: tl.constexpr, N: tl.constexpr, KC: tl.constexpr, REG: tl.constexpr,
          PUT: tl.constexpr):  # fmt: skip
    """``(BB, N)``: ``x (BB, K)`` times ``w (K, N)`` (row stride ``ws``) plus ``b``; from
    registers with ``REG`` when the input fits one tile (``KC == K``), else in chunks through
    the scratch row, where ``x`` is stored first unless ``PUT`` is false (the previous product
    of the same input stored it)."""
    if REG and KC == K:
        out = _mv_reg(x, w_ptr, ws, b_ptr, K, N)
    else:
        if PUT:
            _put(scr, rows, rmask, SW2, 0, x, K)
        out = _mv(scr, SW2, rows, rmask, w_ptr, ws, b_ptr, BB, K, N, KC)
    return out


@triton.jit
def _put(scr, rows, rmask, SW2: tl.constexpr, off: tl.constexpr, x, W: tl.constexpr):
    """Store ``x (BB, W)`` in the programs' scratch rows at ``off``, fenced on both sides
    (the other threads of the program have read the old contents / see the new ones)."""
    tl.debug_barrier()
    cols = tl.arange(0, W)
    tl.store(scr + rows[:, None] * SW2 + off + cols[None, :], x, mask=rmask[:, None])
    tl.debug_barrier()


@triton.jit
def _skip_put(skip_ptr, rows, rmask, SKW: tl.constexpr, j, x, D: tl.constexpr):
    """Keep ``x (BB, D)`` as skip ``j`` of the rows (``skip (B, SKW)``, ``D`` values each)."""
    cols = tl.arange(0, D)
    tl.store(skip_ptr + rows[:, None] * SKW + j * D + cols[None, :], x, mask=rmask[:, None])
    tl.debug_barrier()


@triton.jit
def _skip_get(skip_ptr, rows, rmask, SKW: tl.constexpr, j, D: tl.constexpr):
    cols = tl.arange(0, D)
    return tl.load(skip_ptr + rows[:, None] * SKW + j * D + cols[None, :], mask=rmask[:, None],
                   other=0.0)  # fmt: skip


@triton.jit
def _norm(x, p_ptr, D: tl.constexpr, LAYER_NORM: tl.constexpr, eps, rmask):
    """LayerNorm (``p``: weight, bias) or the reference's scalar norm (``p``: m, s repeated
    over the ``D`` channels) of ``x (BB, D)``; biased variance (rows past the batch, all
    zeros, get 1 so that they stay finite)."""
    cols = tl.arange(0, D)
    a = tl.load(p_ptr + cols)[None, :]
    b = tl.load(p_ptr + D + cols)[None, :]
    mean = tl.sum(x, axis=1) / D
    xc = x - mean[:, None]
    var = tl.where(rmask, tl.sum(xc * xc, axis=1) / D, 1.0)
    if LAYER_NORM:
        y = xc / tl.sqrt(var + eps)[:, None] * a + b
    else:
        y = b / tl.sqrt(var)[:, None] * (xc + a)
    return y


@triton.jit
def _gelu(x):
    return 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))


@triton.jit
def _s4_layer(h, li, rows, rmask, n1_ptr, ssm_ptr, dsk_ptr, wo_ptr, bo_ptr, state_ptr, scr,
              eps, BB: tl.constexpr, D: tl.constexpr, M: tl.constexpr, NL: tl.constexpr,
              SW: tl.constexpr, HC: tl.constexpr, KC_O: tl.constexpr, GLU: tl.constexpr,
              RANK: tl.constexpr, LAYER_NORM: tl.constexpr, REG: tl.constexpr):  # fmt: skip
    """``h + S4Block(norm(h))`` for S4 layer ``l`` of the tier; its state updated in place.
    The recurrence is ``x = E s + G u - sum_r R_r Re(Z_r^H s)``, ``y = 2 Re(C x)`` over the
    tables ``E, G, C, Z_r, R_r`` (:class:`~audio_models.fast.fused.FusedTier`; S4D: rank 0).
    With ``REG``, a step whose channels fit one chunk (``HC == D``) and a projection whose
    input fits one tile (``KC_O == D``) keep their inputs in registers."""
    SW2: tl.constexpr = 2 * SW
    DM: tl.constexpr = D * M
    KS: tl.constexpr = 6 + 4 * RANK
    dcol = tl.arange(0, D)
    m = tl.arange(0, M)
    u = _norm(h, n1_ptr + li * 2 * D, D, LAYER_NORM, eps, rmask)
    q = ssm_ptr + li * KS * DM
    smask = rmask[:, None, None]
    if REG and HC == D:  # every channel in one chunk, the input and output in registers
        off = (dcol[:, None] * M + m[None, :])[None, :, :]
        sp = state_ptr + rows[:, None, None] * (NL * 2 * DM) + li * 2 * DM + off
        y = _ssm_chunk(u, sp, q, off, smask, DM, RANK)
    else:
        _put(scr, rows, rmask, SW2, 0, u, D)
        for h0 in range(0, D, HC):
            c = h0 + tl.arange(0, HC)
            uc = tl.load(scr + rows[:, None] * SW2 + c[None, :], mask=rmask[:, None], other=0.0)
            off = (c[:, None] * M + m[None, :])[None, :, :]
            sp = state_ptr + rows[:, None, None] * (NL * 2 * DM) + li * 2 * DM + off
            yc = _ssm_chunk(uc, sp, q, off, smask, DM, RANK)
            tl.store(scr + rows[:, None] * SW2 + SW + c[None, :], yc, mask=rmask[:, None])
        tl.debug_barrier()
        y = tl.load(scr + rows[:, None] * SW2 + SW + dcol[None, :], mask=rmask[:, None],
                    other=0.0)  # fmt: skip
    y = _gelu(y + tl.load(dsk_ptr + li * D + dcol)[None, :] * u)
    if GLU:
        w = wo_ptr + li * D * 2 * D
        b = bo_ptr + li * 2 * D
        a = _proj(y, scr, rows, rmask, SW2, w, 2 * D, b, BB, D, D, KC_O, REG, True)
        g = _proj(y, scr, rows, rmask, SW2, w + D, 2 * D, b + D, BB, D, D, KC_O, REG, False)
        out = h + a * tl.sigmoid(g)
    else:
        out = h + _proj(y, scr, rows, rmask, SW2, wo_ptr + li * D * D, D, bo_ptr + li * D, BB,
                        D, D, KC_O, REG, True)  # fmt: skip
    return out


@triton.jit
def _ssm_chunk(uc, sp, q, off, smask, DM: tl.constexpr, RANK: tl.constexpr):
    """One step of the recurrence for a chunk of channels: the input ``uc (BB, HC)``, the
    states at ``sp`` (updated), the tables at ``q + off``; returns ``y (BB, HC)``."""
    sre = tl.load(sp, mask=smask, other=0.0)
    sim = tl.load(sp + DM, mask=smask, other=0.0)
    ere = tl.load(q + off)
    eim = tl.load(q + DM + off)
    nre = ere * sre - eim * sim + tl.load(q + 2 * DM + off) * uc[:, :, None]
    nim = ere * sim + eim * sre + tl.load(q + 3 * DM + off) * uc[:, :, None]
    for r in tl.static_range(RANK):  # S4's low-rank correction, from the old state
        zq = q + (6 + 4 * r) * DM + off
        z = tl.sum(tl.load(zq) * sre + tl.load(zq + DM) * sim, axis=2)[:, :, None]
        nre -= tl.load(zq + 2 * DM) * z
        nim -= tl.load(zq + 3 * DM) * z
    cre = tl.load(q + 4 * DM + off)
    cim = tl.load(q + 5 * DM + off)
    tl.store(sp, nre, mask=smask)
    tl.store(sp + DM, nim, mask=smask)
    return 2 * tl.sum(cre * nre - cim * nim, axis=2)


@triton.jit
def _ff_layer(h, li, rows, rmask, n2_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, scr, eps,
              BB: tl.constexpr, D: tl.constexpr, F: tl.constexpr, SW: tl.constexpr,
              KC_F1: tl.constexpr, KC_F2: tl.constexpr, LAYER_NORM: tl.constexpr,
              REG: tl.constexpr):  # fmt: skip
    """``h + down(GELU(up(norm(h))))`` for feed-forward layer ``l`` of the tier."""
    SW2: tl.constexpr = 2 * SW
    u = _norm(h, n2_ptr + li * 2 * D, D, LAYER_NORM, eps, rmask)
    w1, b1 = w1_ptr + li * D * F, b1_ptr + li * F
    f = _gelu(_proj(u, scr, rows, rmask, SW2, w1, F, b1, BB, D, F, KC_F1, REG, True))
    w2, b2 = w2_ptr + li * F * D, b2_ptr + li * D
    down = _proj(f, scr, rows, rmask, SW2, w2, D, b2, BB, F, D, KC_F2, REG, True)
    return h + down


@triton.jit(do_not_specialize=["slot", "pos"])
def tier_kernel(
    tokens_ptr, emb_ptr, frame_ptr, wdp_ptr, bdp_ptr, up_ptr, down_ptr, slot,
    n1_ptr, ssm_ptr, dsk_ptr, wo_ptr, bo_ptr, n2_ptr, w1_ptr, b1_ptr, w2_ptr,
    b2_ptr, state_ptr, wup_ptr, bup_ptr, upout_ptr, skip_ptr,
    fn_ptr, wh_ptr, bh_ptr, logits_ptr, logp_ptr, forced_ptr, use_ptr, seed_ptr, counter_ptr,
    pos, temperature, top_p, scr, B, eps, head_eps,
    BB: tl.constexpr, D: tl.constexpr, M: tl.constexpr, NL: tl.constexpr, ND: tl.constexpr,
    SKW: tl.constexpr, F: tl.constexpr,
    POOL: tl.constexpr, KIN: tl.constexpr, KOUT: tl.constexpr, C: tl.constexpr,
    PERIOD: tl.constexpr, SW: tl.constexpr, HC: tl.constexpr, KC_IN: tl.constexpr,
    KC_O: tl.constexpr, KC_F1: tl.constexpr, KC_F2: tl.constexpr, KC_UP: tl.constexpr,
    KC_HEAD: tl.constexpr, EMBED: tl.constexpr, TOKENS_IN: tl.constexpr, DE: tl.constexpr,
    CENTER: tl.constexpr, POOL_OUT: tl.constexpr,
    HEAD: tl.constexpr, HAS_FF: tl.constexpr, GLU: tl.constexpr, RANK: tl.constexpr,
    LAYER_NORM: tl.constexpr, GREEDY: tl.constexpr, NUCLEUS: tl.constexpr,
    REG: tl.constexpr,
):  # fmt: skip
    """One step of one tier for rows ``[pid BB, (pid + 1) BB)`` (see the module notes).

    ``tokens (PERIOD + 1, B)``: the outer tier embeds row ``pos`` and writes the sampled
    token to row ``pos + 1``; ``up`` / ``down (B, POOL D)``: this tier's frame buffers
    (``slot``: the step's place in the frame; none in the centre); ``frame (B, KIN)``: the
    finer tier's down buffer, pooled by ``wdp (KIN, D)`` (``TOKENS_IN``: the outer frame
    from the embeddings ``emb`` of width ``DE`` instead); ``upout (B, KOUT)``: the finer
    tier's up buffer, written through ``wup (D, KOUT)``; ``logits (PERIOD, B, C)`` and
    ``logp (PERIOD, B)`` at ``pos``; ``forced`` / ``use (PERIOD, B)``: the prefix;
    ``scr (B, 2 SW)``: this tier's scratch rows.
    """
    pid = tl.program_id(0)
    rows = pid * BB + tl.arange(0, BB)
    rmask = rows < B
    dcol = tl.arange(0, D)
    SW2: tl.constexpr = 2 * SW
    if EMBED:
        tok = tl.load(tokens_ptr + pos * B + rows, mask=rmask, other=0)
        x = tl.load(emb_ptr + tok[:, None] * D + dcol[None, :], mask=rmask[:, None], other=0.0)
    elif TOKENS_IN:
        x = _mv_tokens(tokens_ptr, emb_ptr, pos, B, rows, rmask, wdp_ptr, D, bdp_ptr, BB, KIN, D,
                       KC_IN, DE)  # fmt: skip
    else:
        x = _mv(frame_ptr, KIN, rows, rmask, wdp_ptr, D, bdp_ptr, BB, KIN, D, KC_IN)
    FF: tl.constexpr = 1 + HAS_FF  # residual layers per S4 layer
    if ND > 0:  # the U-Net's down path: skips (the input, each residual's output) kept
        _skip_put(skip_ptr, rows, rmask, SKW, 0, x, D)
        for li in range(ND):
            x = _s4_layer(x, li, rows, rmask, n1_ptr, ssm_ptr, dsk_ptr, wo_ptr, bo_ptr,
                          state_ptr, scr, eps, BB, D, M, NL, SW, HC, KC_O, GLU, RANK,
                          LAYER_NORM, REG)  # fmt: skip
            _skip_put(skip_ptr, rows, rmask, SKW, li * FF + 1, x, D)
            if HAS_FF:
                x = _ff_layer(x, li, rows, rmask, n2_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, scr,
                              eps, BB, D, F, SW, KC_F1, KC_F2, LAYER_NORM, REG)  # fmt: skip
                _skip_put(skip_ptr, rows, rmask, SKW, li * FF + 2, x, D)
    if CENTER:
        s = x
    else:
        at = rows[:, None] * (POOL * D) + slot * D + dcol[None, :]
        s = x + tl.load(up_ptr + at, mask=rmask[:, None], other=0.0)
        tl.store(down_ptr + at, x, mask=rmask[:, None])
    h = s
    for li in range(ND, NL):  # then the U-Net's up path pops the skips: the latest first
        h = _s4_layer(h, li, rows, rmask, n1_ptr, ssm_ptr, dsk_ptr, wo_ptr, bo_ptr, state_ptr,
                      scr, eps, BB, D, M, NL, SW, HC, KC_O, GLU, RANK, LAYER_NORM,
                      REG)  # fmt: skip
        if ND > 0:
            h += _skip_get(skip_ptr, rows, rmask, SKW, (2 * ND - li) * FF - 1, D)
        if HAS_FF:
            h = _ff_layer(h, li, rows, rmask, n2_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, scr, eps,
                          BB, D, F, SW, KC_F1, KC_F2, LAYER_NORM, REG)  # fmt: skip
            if ND > 0:
                h += _skip_get(skip_ptr, rows, rmask, SKW, (2 * ND - li) * FF - 2, D)
    out = h if ND > 0 else h + s
    if POOL_OUT:
        up = _proj(out, scr, rows, rmask, SW2, wup_ptr, KOUT, bup_ptr, BB, D, KOUT, KC_UP, REG,
                   True)  # fmt: skip
        kcol = tl.arange(0, KOUT)
        tl.store(upout_ptr + rows[:, None] * KOUT + kcol[None, :], up, mask=rmask[:, None])
    if HEAD:
        final = _norm(out, fn_ptr, D, True, head_eps, rmask)
        logits = _proj(final, scr, rows, rmask, SW2, wh_ptr, C, bh_ptr, BB, D, C, KC_HEAD, REG,
                       True)  # fmt: skip
        ccol = tl.arange(0, C)
        at = (pos * B + rows[:, None]) * C + ccol[None, :]
        tl.store(logits_ptr + at, logits, mask=rmask[:, None])
        top = tl.max(logits, axis=1)
        lse = top + tl.log(tl.sum(tl.exp(logits - top[:, None]), axis=1))
        logp = logits - lse[:, None]
        if GREEDY:
            drawn = tl.argmax(logits, axis=1)
        else:
            z = logits / temperature
            if NUCLEUS:
                e = tl.exp(z - tl.max(z, axis=1)[:, None])
                pr = e / tl.sum(e, axis=1)[:, None]
                ranked = tl.sort(pr, dim=1, descending=True)
                before = tl.cumsum(ranked, axis=1) - ranked
                kept = tl.min(tl.where(before < top_p, ranked, 2.0), axis=1)
                z = tl.where(pr >= kept[:, None], z, float("-inf"))
            key = _mix((tl.load(seed_ptr) + tl.load(counter_ptr) * PERIOD + pos) % 2147483647)
            key = _mix((key + rows) % 2147483647)
            key = _mix((key[:, None] + ccol[None, :]) % 2147483647)
            u = (key >> 7).to(tl.float32) * 5.9604644775390625e-08 + 2.9802322387695312e-08
            drawn = tl.argmax(z + (-tl.log(-tl.log(u))).to(z.dtype), axis=1)
        use = tl.load(use_ptr + pos * B + rows, mask=rmask, other=0)
        forced = tl.load(forced_ptr + pos * B + rows, mask=rmask, other=0)
        tok = tl.where(use != 0, forced, drawn.to(tl.int64))
        lp = tl.sum(tl.where(ccol[None, :] == tok[:, None], logp, 0.0), axis=1)
        tl.store(tokens_ptr + (pos + 1) * B + rows, tok, mask=rmask)
        tl.store(logp_ptr + pos * B + rows, lp, mask=rmask)
