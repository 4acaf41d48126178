/* One recurrent step of a SaShiMi language model (embedding -> SaShiMi -> head), fused.
 *
 * The Python side (audio_models/fast/engine.py) lays the model out in flat arrays and compiles
 * this file with the machine's C compiler. Sums, activations and states are in the model's
 * precision, as in its eager step (float64 models then match it to 1e-9, float32 ones to
 * float32 rounding). The control flow mirrors
 * SaShiMi.step in audio_models/sashimi.py: the outer tier runs every sample, tier i + 1 once
 * tier i has filled a frame of p_i samples, and its up-pooled output is used one frame later;
 * the skip connections are the reference's (SaShiMi or its U-Net). The whole batch goes
 * through each layer together, so every weight row is read once per step for all sequences
 * (the recurrences run per sequence); the Python side may split a batch across threads, and
 * a team of threads (below) shares one sequence's step.
 *
 * Layout (int64 `plan`): a header of HEAD ints, then TIER ints per tier, then LAYER ints per
 * residual layer; offsets point into `w` (weights, matrices stored transposed: in x out; the
 * pools' weights reordered so that frames are (p, d) row-major) and into the
 * per-batch-element `state` block.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FLUSH_SUBNORMALS 1
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* The model's precision: float for float32 models (half the memory traffic of double and
 * twice the SIMD lanes; the SC09 model's weights do not fit in cache), double for float64
 * ones. */
#ifndef WEIGHT
#define WEIGHT double
#endif
typedef WEIGHT weight_t;
/* Activations, states and sums are in the same precision (the eager step's); the norms'
 * statistics are double. */
typedef WEIGHT real_t;


enum { HEAD = 16, TIER = 12, LAYER = 20 };
enum { H_TIERS, H_DMODEL, H_CLASSES, H_EMB, H_NORM_W, H_NORM_B, H_HEAD_W, H_HEAD_B,
       H_NCENTER, H_FCENTER, H_STATE, H_NLAYERS, H_MAXW, H_UNET };
enum { T_D, T_P, T_E, T_NDOWN, T_FDOWN, T_NUP, T_FUP, T_DP_W, T_DP_B, T_UP_W, T_UP_B,
       T_BUF };
/* A residual layer: x + layer(norm(x)). KIND: 0 S4 (diagonal recurrence), 1 S4 (DPLR),
 * 2 feed-forward, 3 S4 (DPLR, in the basis of the states divided by G). NORM: 0 the reference's scalar norm (N1 = m, N2 = s), 1 LayerNorm
 * (N1 = weight, N2 = bias). S4 fields: M, SCALE, GLU, SSM, D, OUT_W, OUT_B, STATE, RANK;
 * feed-forward fields: F (in M), FF1_W, FF1_B (in SSM, D), FF2_W, FF2_B (in OUT_W, OUT_B). */
enum { L_H, L_KIND, L_NORM, L_N1, L_N2, L_M, L_SCALE, L_GLU, L_SSM, L_D, L_OUT_W, L_OUT_B,
       L_STATE, L_RANK };
enum { DIAGONAL = 0, DPLR = 1, FEEDFORWARD = 2, DPLR_SCALED = 3 };
enum { SCALAR_NORM = 0, LAYER_NORM = 1 };

/* A team of threads that share one sequence's step (batch 1, where a batch cannot be split):
 * each runs the whole step on its own copies of the activations, computing its share of every
 * recurrence (channel blocks) and projection, and the shares meet at a barrier once per layer.
 * A projection that follows a split recurrence is split by its inputs: each thread multiplies
 * its channels, writes the partial sums to its slot, and after the barrier every thread adds
 * the slots in the same order (so all hold the same activations, bit for bit). Slots
 * alternate between two sets by the barrier's parity: a thread can be at most one barrier
 * ahead, so the set it writes is never the one another still reads. */
#define MAX_TEAM 8
typedef struct team team_t;
/* Sampling inside the C step (sashimi_sample): n steps, the first n_forced taking the prefix's
 * tokens, the others drawn as torch.multinomial draws them, argmax over classes of p / q with
 * p the tempered softmax in float64 (top_p < 1: zero outside the nucleus, as
 * audio_models.sampling.sample_logits masks it) and q the caller's Exp(1) noise (argmax of
 * the logits at temperature 0, noise NULL). Rows are strided by `stride` (the whole batch) in
 * forced, noise and out. */
typedef struct {
    int64_t n, n_forced, stride;
    const int64_t *forced;  /* (n_forced, stride) */
    const double *noise;    /* (n - n_forced, stride, classes), or NULL */
    double temperature, top_p;
    int64_t *out;           /* (n, stride): the tokens */
    double *logp;           /* (batch): += the drawn tokens' log-probabilities (temperature 1) */
} block_t;
typedef struct {
    team_t *team;
    int k;
} member_t;
struct team {
    struct {
        int64_t n;      /* barriers this thread has reached */
        char pad[56];   /* one cache line each */
    } arrive[MAX_TEAM];
    int64_t passed[MAX_TEAM];  /* barriers passed, each thread's own count */
    int nt;
    member_t members[MAX_TEAM];
    pthread_t threads[MAX_TEAM];
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int64_t job;  /* jobs posted; workers run each one */
    int quit;
    /* the job */
    const weight_t *w;
    const int64_t *plan;
    real_t *state;
    const int64_t *tokens;
    real_t *logits;
    int64_t t;
    double eps;
    const block_t *block;  /* NULL: one step, no sampling */
    int64_t maxw;  /* the widest split projection's outputs */
    real_t *slots;  /* 2 x nt x maxw */
    real_t *spare;  /* sampling: the logits of every other step (spare_n values) */
    int64_t spare_n;
};

typedef struct {
    const weight_t *w;
    const int64_t *plan;
    real_t *state;   /* nb sequences' states, `size` values each */
    int64_t nb, size;
    double eps;
    team_t *team;    /* NULL: one thread; else thread k of nt (nb = 1) */
    int k, nt;
} ctx_t;

/* Spin this many pauses (about half a millisecond) before yielding the CPU, or sleeping. */
enum { SPINS = 20000 };

static void barrier(const ctx_t *c) {
    if (c->nt == 1) return;
    team_t *T = c->team;
    const int64_t e = ++T->passed[c->k];
    __atomic_store_n(&T->arrive[c->k].n, e, __ATOMIC_RELEASE);
    for (int j = 0; j < c->nt; j++) {
        for (int64_t spins = 0; __atomic_load_n(&T->arrive[j].n, __ATOMIC_ACQUIRE) < e; spins++) {
            if (spins < SPINS)
                cpu_relax();
            else
                sched_yield();
        }
    }
}

/* Thread j's slot for the partial sums that meet at the next barrier / met at the last one. */
static real_t *slot_next(const ctx_t *c, int j) {
    const team_t *T = c->team;
    return T->slots + (((T->passed[c->k] + 1) & 1) * c->nt + j) * T->maxw;
}
static const real_t *slot_met(const ctx_t *c, int j) {
    const team_t *T = c->team;
    return T->slots + ((T->passed[c->k] & 1) * c->nt + j) * T->maxw;
}

/* After the barrier: out = the sum of every thread's partial sums (n values), in order. */
static void gather(const ctx_t *c, real_t *out, int64_t n) {
    memcpy(out, slot_met(c, 0), (size_t)n * sizeof(real_t));
    for (int j = 1; j < c->nt; j++) {
        const real_t *part = slot_met(c, j);
        for (int64_t i = 0; i < n; i++) out[i] += part[i];
    }
}

/* This thread's share [lo, hi) of n items, in whole units (the last share may be short). */
static void share(const ctx_t *c, int64_t n, int64_t unit, int64_t *lo, int64_t *hi) {
    const int64_t units = (n + unit - 1) / unit, per = units / c->nt, extra = units % c->nt;
    const int64_t a = c->k * per + (c->k < extra ? c->k : extra);
    const int64_t b = a + per + (c->k < extra ? 1 : 0);
    *lo = a * unit < n ? a * unit : n;
    *hi = b * unit < n ? b * unit : n;
}

/* SIMD vectors of VW values (64 bytes: one AVX-512 register, two AVX2 or four NEON ones; the
 * compiler lowers the vector extension to what the machine has), loaded and stored unaligned. */
#define VBYTES 64
#define VW ((int64_t)(VBYTES / sizeof(real_t)))
typedef real_t vec_t __attribute__((vector_size(VBYTES)));
static inline vec_t vload(const real_t *p) { vec_t v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real_t *p, vec_t v) { memcpy(p, &v, sizeof v); }

/* A matrix (stored transposed: in x out) is laid out in panels of PANEL outputs (the last
 * may be narrower): panel j holds outputs j PANEL .. for every input, row-major, so that a
 * strip of a row's outputs is read as one contiguous stream (the hardware prefetches that
 * from L3 or memory at 2-3x the bandwidth of strips strided across wider rows; measured on
 * 23 MB of 256 x 512 matrices). Matrices of at most PANEL outputs are plain row-major. */
#define PANEL (16 * VW)

/* Panel p0 / PANEL of a matrix of n_in rows and n_out outputs: its first weight and width. */
static inline const weight_t *panel_at(const weight_t *wt, int64_t n_in, int64_t n_out,
                                       int64_t p0, int64_t *width) {
    *width = n_out - p0 < PANEL ? n_out - p0 : PANEL;
    return wt + p0 * n_in;
}

/* S vectors of outputs in one panel: y = b + sum_i x[i] wp[i * ld] with S vector accumulators
 * held in registers over the n rows (each row's strip read once, in order). S is a constant
 * at each call, so that the compiler unrolls the strip; b NULL: no bias. */
static inline __attribute__((always_inline)) void row_strip(
    const weight_t *restrict wp, int64_t ld, const weight_t *restrict b,
    const real_t *restrict x, real_t *restrict y, int64_t n, const int S) {
    vec_t a[16];
#pragma GCC unroll 16
    for (int j = 0; j < S; j++) a[j] = b != NULL ? vload(b + j * VW) : (vec_t){0};
    for (int64_t i = 0; i < n; i++) {
        const real_t xi = x[i];
        const weight_t *restrict row = wp + i * ld;
#pragma GCC unroll 16
        for (int j = 0; j < S; j++) a[j] += xi * vload(row + j * VW);
    }
#pragma GCC unroll 16
    for (int j = 0; j < S; j++) vstore(y + j * VW, a[j]);
}

/* One row (a matrix-vector product) over the inputs i0 .. i1 - 1 of n_in (x[i0 .. i1 - 1])
 * and the outputs o0 .. o1 - 1 of n_out (b NULL: no bias): in each panel, strips of up to 16
 * vectors, so that the panel's weights are read as one stream, row after row. */
static void linear_cols(const weight_t *restrict wt, const weight_t *restrict b,
                        const real_t *restrict x, real_t *restrict y, int64_t i0, int64_t i1,
                        int64_t n_in, int64_t n_out, int64_t o0, int64_t o1) {
    const int64_t n = i1 - i0;
    for (int64_t p0 = o0 / PANEL * PANEL; p0 < o1; p0 += PANEL) {
        int64_t ld;
        const weight_t *base = panel_at(wt, n_in, n_out, p0, &ld) + i0 * ld - p0;
        const int64_t end = p0 + ld < o1 ? p0 + ld : o1;
        int64_t o = o0 > p0 ? o0 : p0;
#define STRIP(S) row_strip(base + o, ld, b != NULL ? b + o : NULL, x + i0, y + o, n, S)
        for (; o + 16 * VW <= end; o += 16 * VW) STRIP(16);
        if (o + 8 * VW <= end) {
            STRIP(8);
            o += 8 * VW;
        }
        if (o + 4 * VW <= end) {
            STRIP(4);
            o += 4 * VW;
        }
        for (; o + VW <= end; o += VW) STRIP(1);
#undef STRIP
        for (; o < end; o++) {
            real_t a = b != NULL ? b[o] : 0;
            for (int64_t i = 0; i < n; i++) a += x[i0 + i] * base[i * ld + o];
            y[o] = a;
        }
    }
}

/* A team's projection split by its inputs: this thread's rows lo .. hi - 1 of wt times x[lo ..
 * hi - 1] (thread 0 adds the bias) into its slot, then the barrier, then y = the sum. */
static void linear_split_in(const ctx_t *c, const weight_t *wt, const weight_t *b,
                            const real_t *x, real_t *y, int64_t lo, int64_t hi, int64_t n_in,
                            int64_t n_out) {
    linear_cols(wt, c->k == 0 ? b : NULL, x, slot_next(c, c->k), lo, hi, n_in, n_out, 0,
                n_out);
    barrier(c);
    gather(c, y, n_out);
}

/* For each of n rows r: y[r ys + o] = b[o] + sum_i x[r xs + i] * W[i, o].
 *
 * Rows in blocks of 4, when n_out is a multiple of 2 VW: 4 rows x 2 VW outputs accumulate in
 * 8 vector registers over all inputs (each weight vector loaded once for the 4 rows; the
 * strip of weights, n_in x 2 VW, stays in L1 for the next block of rows), then are stored.
 * The rows left over (all of them at batch 1) go one by one through linear_cols. */
static void linear(const weight_t *restrict wt, const weight_t *restrict b,
                   const real_t *restrict x, int64_t xs, real_t *restrict y, int64_t ys,
                   int64_t n, int64_t n_in, int64_t n_out) {
    int64_t done = 0;
    if (n_out % (2 * VW) == 0 && n >= 4) {
        done = n - n % 4;
        for (int64_t p0 = 0; p0 < n_out; p0 += PANEL) {
            int64_t ld;
            const weight_t *base = panel_at(wt, n_in, n_out, p0, &ld);
            for (int64_t o = 0; o < ld; o += 2 * VW) {
                const vec_t b0 = vload(b + p0 + o), b1 = vload(b + p0 + o + VW);
                for (int64_t r = 0; r < done; r += 4) {
                    const real_t *x0 = x + r * xs, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;
                    vec_t a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1,
                          a30 = b0, a31 = b1;
                    for (int64_t i = 0; i < n_in; i++) {
                        const vec_t w0 = vload(base + i * ld + o);
                        const vec_t w1 = vload(base + i * ld + o + VW);
                        a00 += x0[i] * w0; a01 += x0[i] * w1;
                        a10 += x1[i] * w0; a11 += x1[i] * w1;
                        a20 += x2[i] * w0; a21 += x2[i] * w1;
                        a30 += x3[i] * w0; a31 += x3[i] * w1;
                    }
                    real_t *y0 = y + r * ys + p0 + o;
                    vstore(y0, a00); vstore(y0 + VW, a01);
                    vstore(y0 + ys, a10); vstore(y0 + ys + VW, a11);
                    vstore(y0 + 2 * ys, a20); vstore(y0 + 2 * ys + VW, a21);
                    vstore(y0 + 3 * ys, a30); vstore(y0 + 3 * ys + VW, a31);
                }
            }
        }
    }
    for (int64_t r = done; r < n; r++)
        linear_cols(wt, b, x + r * xs, y + r * ys, 0, n_in, n_in, n_out, 0, n_out);
}

static void layer_norm(const real_t *x, const weight_t *g, const weight_t *b, real_t *y,
                       int64_t n, double eps) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    const real_t inv = (real_t)(1.0 / sqrt(var / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * g[i] + b[i];
}

/* The reference's scalar norm: y = s / std(x) * (x - mean(x) + m), biased std, no epsilon. */
static void scalar_norm(const real_t *x, const weight_t *m, const weight_t *s, real_t *y,
                        int64_t n) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    const real_t scale = (real_t)(s[0] / sqrt(var / (double)n)), shift = (real_t)(m[0] - mean);
    for (int64_t i = 0; i < n; i++) y[i] = scale * (x[i] + shift);
}

/* exp, erf-based GELU and sigmoid without library calls, so that the loops over them
 * vectorise, for float models: exp(x) = 2^k exp(r), k = rint(x / ln 2), r = x - k ln 2 (ln 2
 * in two parts), exp(r) by its degree-7 Taylor polynomial (|r| <= ln 2 / 2), 2^k through the
 * exponent bits; erfc(z) for z >= 0 by Abramowitz & Stegun 7.1.26 (absolute error below
 * 1.5e-7). Measured over [-12, 12]: exp within 2e-7 relative, GELU(x) = x / 2 (1 + erf(x /
 * sqrt 2)) within 2.2e-7 max(1, |x|), sigmoid within 1e-7. Double models keep the C library's
 * erf and exp. */
static inline float fexp(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float k = rintf(x * 1.44269504088896341f);
    const float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
    const float p =
        1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
        r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float gelu_f(float x) {
    const float z = fabsf(x) * 0.70710678118654752f, t = 1.0f / (1.0f + 0.3275911f * z);
    const float q = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
                    t * (-1.453152027f + t * 1.061405429f)))) * fexp(-z * z);  /* erfc(z) */
    return 0.5f * x * (x >= 0 ? 2.0f - q : q);
}

static inline double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }
static inline float sigmoid_f(float x) { return 1.0f / (1.0f + fexp(-x)); }
static inline double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
#define gelu(x) _Generic((x), float: gelu_f, default: gelu_d)(x)
#define sigmoid(x) _Generic((x), float: sigmoid_f, default: sigmoid_d)(x)

/* v <- GELU(v + d * u) over n values (d, u may be NULL: none), a loop that vectorises. */
static void gelu_all(real_t *restrict v, const weight_t *restrict d, const real_t *restrict u,
                     int64_t n) {
    if (d != NULL)
        for (int64_t i = 0; i < n; i++) v[i] = gelu(v[i] + d[i] * u[i]);
    else
        for (int64_t i = 0; i < n; i++) v[i] = gelu(v[i]);
}

/* x[i] += a[i] sigmoid(g[i]) over n values (the GLU's output added to the residual). */
static void glu_add(real_t *restrict x, const real_t *restrict a, const real_t *restrict g,
                    int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += a[i] * sigmoid(g[i]);
}

/* The recurrences run VW channels at a time, one channel per SIMD lane, so that a channel's
 * sums over its modes need no horizontal additions. A layer's tables are laid out (H / VW,
 * M, K, VW): for each block of VW channels, for each mode, K vectors of VW channels (H padded
 * to a multiple of VW with zero tables, whose lanes stay zero); a sequence's states likewise
 * (H / VW, M, 2, VW), real then imaginary parts. u and y hold H / VW whole vectors. */

/* A sequence's states come from L3 or memory (they do not fit in L2 for a batch): while one
 * sequence's sweep runs, it asks for the same mode's states of the next sequence (at offset
 * `ahead`, 0 for the last), so that those are in cache when that sweep starts. */
static inline void prefetch_state(const real_t *s) {
    __builtin_prefetch(s, 1);
    __builtin_prefetch(s + VW, 1);
}

/* A diagonal recurrence (S4D): x <- A x + B u, y = scale Re(C x), in the basis of the states
 * divided by B (x' = x / B: x' <- A x' + u, y = scale Re(C B x')), which saves B's table and
 * its products; a mode with B = 0 never moves and is laid out with A = C B = 0. K = 4: A, C B
 * (re, im). */
static void ssm_diagonal(const int64_t *L, const weight_t *restrict q, real_t *restrict st,
                         const real_t *restrict u, real_t *restrict y, int64_t ahead,
                         int64_t b0, int64_t b1) {
    const int64_t M = L[L_M];
    const real_t scale = (real_t)L[L_SCALE];
    for (int64_t b = b0; b < b1; b++) {
        const vec_t uv = vload(u + b * VW);
        vec_t acc = {0};
        for (int64_t m = 0; m < M; m++) {
            const weight_t *restrict t = q + (b * M + m) * 4 * VW;
            real_t *restrict s = st + (b * M + m) * 2 * VW;
            const vec_t sr = vload(s), si = vload(s + VW), ar = vload(t), ai = vload(t + VW);
            const vec_t xr = ar * sr - ai * si + uv;
            const vec_t xi = ar * si + ai * sr;
            vstore(s, xr);
            vstore(s + VW, xi);
            prefetch_state(s + ahead);
            acc += vload(t + 2 * VW) * xr - vload(t + 3 * VW) * xi;
        }
        vstore(y + b * VW, scale * acc);
    }
}

/* S4's bilinear DPLR step of rank R, in its discrete form (derived in
 * audio_models/fast/engine.py, discrete_dplr): the transition is diagonal plus rank R,
 *   z_r = Re(Z_r^H s),  x = E s + G u - sum_r R_r z_r,  y = scale Re(C x).
 * The z_r of the next step are summed in the same sweep that makes x, and kept after the
 * modes' states, (H / VW, R, VW) (zero, as the states, before the first step): one sweep over
 * the modes per step, where a separate sum would wait on its additions' latency. WITH_G: the
 * tables are E, G, C, then per r Z_r, R_r (re, im; K = 6 + 4 R); without, the layout works in
 * the basis of the states divided by G (DPLR_SCALED: x' = x / G, so that G' = 1 and C, Z_r,
 * R_r become C G, Z_r conj(G), R_r / G; K = 4 + 4 R), which saves G's table and its
 * products. The rank and WITH_G are parameters that the caller passes as constants for rank
 * 1, so that the compiler specialises those cases. */
static inline void dplr_blocks(const int64_t *L, const weight_t *restrict q,
                               real_t *restrict st, const real_t *restrict u,
                               real_t *restrict y, int64_t ahead, int64_t b0, int64_t b1,
                               const int64_t R, const int WITH_G) {
    const int64_t blocks = (L[L_H] + VW - 1) / VW, M = L[L_M];
    const int64_t c0 = WITH_G ? 4 : 2, K = c0 + 2 + 4 * R;  /* C's place, the tables */
    const real_t scale = (real_t)L[L_SCALE];
    real_t *restrict carried = st + blocks * M * 2 * VW;
    vec_t z[R], next[R];
    for (int64_t b = b0; b < b1; b++) {
        const vec_t uv = vload(u + b * VW);
        for (int64_t r = 0; r < R; r++) {
            z[r] = vload(carried + (b * R + r) * VW);
            next[r] = (vec_t){0};
        }
        vec_t acc = {0};
        for (int64_t m = 0; m < M; m++) {
            const weight_t *restrict t = q + (b * M + m) * K * VW;
            real_t *restrict s = st + (b * M + m) * 2 * VW;
            const vec_t sr = vload(s), si = vload(s + VW), er = vload(t), ei = vload(t + VW);
            vec_t xr = er * sr - ei * si, xi = er * si + ei * sr;
            if (WITH_G) {
                xr += vload(t + 2 * VW) * uv;
                xi += vload(t + 3 * VW) * uv;
            } else {
                xr += uv;
            }
            for (int64_t r = 0; r < R; r++) {
                xr -= vload(t + (c0 + 4 + 4 * r) * VW) * z[r];
                xi -= vload(t + (c0 + 5 + 4 * r) * VW) * z[r];
            }
            vstore(s, xr);
            vstore(s + VW, xi);
            prefetch_state(s + ahead);
            acc += vload(t + c0 * VW) * xr - vload(t + (c0 + 1) * VW) * xi;
            for (int64_t r = 0; r < R; r++)
                next[r] += vload(t + (c0 + 2 + 4 * r) * VW) * xr +
                           vload(t + (c0 + 3 + 4 * r) * VW) * xi;
        }
        for (int64_t r = 0; r < R; r++) vstore(carried + (b * R + r) * VW, next[r]);
        vstore(y + b * VW, scale * acc);
    }
}

/* The recurrence of an S4 layer over channel blocks b0 .. b1 - 1 (u, y: whole vectors). */
static void ssm(const int64_t *L, const weight_t *q, real_t *st, const real_t *u, real_t *y,
                int64_t ahead, int64_t b0, int64_t b1) {
    const int with_g = L[L_KIND] == DPLR;
    if (L[L_KIND] == DIAGONAL)
        ssm_diagonal(L, q, st, u, y, ahead, b0, b1);
    else if (L[L_RANK] == 1 && !with_g)
        dplr_blocks(L, q, st, u, y, ahead, b0, b1, 1, 0);
    else if (L[L_RANK] == 1)
        dplr_blocks(L, q, st, u, y, ahead, b0, b1, 1, 1);
    else
        dplr_blocks(L, q, st, u, y, ahead, b0, b1, L[L_RANK], with_g);
}

static void norm(const ctx_t *c, const int64_t *L, const real_t *x, real_t *u) {
    const weight_t *w = c->w;
    if (L[L_NORM] == SCALAR_NORM)
        scalar_norm(x, w + L[L_N1], w + L[L_N2], u, L[L_H]);
    else
        layer_norm(x, w + L[L_N1], w + L[L_N2], u, L[L_H], c->eps);
}

/* residual for a team (one sequence): this thread's channel blocks of the recurrence, or its
 * share of the feed-forward's hidden units, then the projection back split by its inputs:
 * one barrier per layer. */
static void residual_team(const ctx_t *c, const int64_t *L, real_t *x) {
    const int64_t H = L[L_H];
    const weight_t *w = c->w;
    real_t u[H];
    norm(c, L, x, u);
    int64_t lo, hi;
    if (L[L_KIND] == FEEDFORWARD) {
        const int64_t F = L[L_M];
        real_t f[F], o[H];
        share(c, F, VW, &lo, &hi);
        linear_cols(w + L[L_SSM], w + L[L_D], u, f, 0, H, H, F, lo, hi);
        gelu_all(f + lo, NULL, NULL, hi - lo);
        linear_split_in(c, w + L[L_OUT_W], w + L[L_OUT_B], f, o, lo, hi, F, H);
        for (int64_t i = 0; i < H; i++) x[i] += o[i];
        return;
    }
    const int64_t padded = (H + VW - 1) / VW * VW, n_out = L[L_GLU] ? 2 * H : H;
    real_t ub[padded], y[padded], o[n_out];
    memcpy(ub, u, (size_t)H * sizeof(real_t));
    for (int64_t k = H; k < padded; k++) ub[k] = 0;
    share(c, H, VW, &lo, &hi);
    if (hi > lo)  /* its channel blocks (a share may be empty: fewer blocks than threads) */
        ssm(L, w + L[L_SSM], c->state + L[L_STATE], ub, y, 0, lo / VW, (hi + VW - 1) / VW);
    gelu_all(y + lo, w + L[L_D] + lo, u + lo, hi - lo);
    linear_split_in(c, w + L[L_OUT_W], w + L[L_OUT_B], y, o, lo, hi, H, n_out);
    if (L[L_GLU])
        glu_add(x, o, o + H, H);
    else
        for (int64_t i = 0; i < H; i++) x[i] += o[i];
}

/* Each of the nb rows of x (width H): x <- x + layer(norm(x)); S4 states updated in place. */
static void residual(const ctx_t *c, const int64_t *L, real_t *x) {
    if (c->nt > 1) {
        residual_team(c, L, x);
        return;
    }
    const int64_t H = L[L_H], nb = c->nb;
    const weight_t *w = c->w;
    real_t u[nb * H];
    for (int64_t r = 0; r < nb; r++) norm(c, L, x + r * H, u + r * H);
    if (L[L_KIND] == FEEDFORWARD) {
        const int64_t F = L[L_M];
        real_t f[nb * F], o[nb * H];
        linear(w + L[L_SSM], w + L[L_D], u, H, f, F, nb, H, F);
        gelu_all(f, NULL, NULL, nb * F);
        linear(w + L[L_OUT_W], w + L[L_OUT_B], f, F, o, H, nb, F, H);
        for (int64_t i = 0; i < nb * H; i++) x[i] += o[i];
        return;
    }
    real_t y[nb * H], o[nb * 2 * H];
    /* Row by row: a row's states are contiguous (about 1 MB per row at the SC09 size, so a
     * batch's do not fit in cache), and streaming them row after row beats visiting every row
     * per channel. The recurrences take whole vectors: a width that is not a multiple of VW
     * goes through padded copies. */
    const int64_t padded = (H + VW - 1) / VW * VW;
    real_t ub[padded], yb[padded];
    for (int64_t k = H; k < padded; k++) ub[k] = 0;
    for (int64_t r = 0; r < nb; r++) {
        real_t *st = c->state + r * c->size + L[L_STATE];
        const int64_t ahead = r + 1 < nb ? c->size : 0;
        const int exact = padded == H;
        const real_t *ur = exact ? u + r * H : ub;
        real_t *yr = exact ? y + r * H : yb;
        if (!exact) memcpy(ub, u + r * H, (size_t)H * sizeof(real_t));
        ssm(L, w + L[L_SSM], st, ur, yr, ahead, 0, padded / VW);
        if (!exact) memcpy(y + r * H, yb, (size_t)H * sizeof(real_t));
    }
    const weight_t *D = w + L[L_D];
    for (int64_t r = 0; r < nb; r++) gelu_all(y + r * H, D, u + r * H, H);
    if (L[L_GLU]) {
        linear(w + L[L_OUT_W], w + L[L_OUT_B], y, H, o, 2 * H, nb, H, 2 * H);
        for (int64_t r = 0; r < nb; r++) glu_add(x + r * H, o + r * 2 * H, o + r * 2 * H + H, H);
    } else {
        linear(w + L[L_OUT_W], w + L[L_OUT_B], y, H, o, H, nb, H, H);
        for (int64_t i = 0; i < nb * H; i++) x[i] += o[i];
    }
}

static const int64_t *layer_at(const ctx_t *c, int64_t l) {
    return c->plan + HEAD + c->plan[H_TIERS] * TIER + l * LAYER;
}

static void run(const ctx_t *c, int64_t first, int64_t n, real_t *x) {
    for (int64_t l = first; l < first + n; l++) residual(c, layer_at(c, l), x);
}

/* Tier i at its time t: h (nb rows, the tier's input of width d) -> the tier's output, in
 * place. Sequence r's frame buffers live in its own state block. */
static void tier(const ctx_t *c, int64_t i, real_t *h, int64_t t) {
    const int64_t *P = c->plan;
    const int64_t nb = c->nb;
    if (i == P[H_TIERS]) {  /* the centre: its input is added back to its output */
        const int64_t d = layer_at(c, P[H_FCENTER])[L_H];
        real_t in[nb * d];
        memcpy(in, h, (size_t)(nb * d) * sizeof(real_t));
        run(c, P[H_FCENTER], P[H_NCENTER], h);
        for (int64_t k = 0; k < nb * d; k++) h[k] += in[k];
        return;
    }
    const int64_t *T = P + HEAD + i * TIER;
    const int64_t d = T[T_D], p = T[T_P], e = T[T_E], slot = t % p, n = T[T_NDOWN];
    const int64_t nd = nb * d;
    real_t *down0 = c->state + T[T_BUF], *up0 = down0 + p * d;  /* sequence r: + r * size */
    real_t skips[(n + 1) * nd];  /* the input of every down layer, then the pool's input */
    memcpy(skips, h, (size_t)nd * sizeof(real_t));
    for (int64_t l = 0; l < n; l++) {
        residual(c, layer_at(c, T[T_FDOWN] + l), h);
        memcpy(skips + (l + 1) * nd, h, (size_t)nd * sizeof(real_t));
    }
    real_t out[nd], sum[nd];
    for (int64_t r = 0; r < nb; r++) {
        const real_t *up = up0 + r * c->size + slot * d;
        for (int64_t k = 0; k < d; k++) out[r * d + k] = sum[r * d + k] = up[k] + h[r * d + k];
    }
    if (P[H_UNET]) {
        for (int64_t l = 0; l < T[T_NUP]; l++) {
            residual(c, layer_at(c, T[T_FUP] + l), out);
            const real_t *skip = skips + (n - 1 - l) * nd;
            for (int64_t k = 0; k < nd; k++) out[k] += skip[k];
        }
    } else {
        run(c, T[T_FUP], T[T_NUP], out);
        for (int64_t k = 0; k < nd; k++) out[k] += sum[k];
    }
    if (c->nt > 1) {
        /* A team splits the down-pool by its inputs: each thread keeps (and reads) only its
         * share of the frame. The up-pool is split by its outputs, written to the shared
         * frame that every thread reads from the next sample on, after a barrier. */
        int64_t lo, hi;
        share(c, p * d, VW, &lo, &hi);
        for (int64_t k = 0; k < d; k++)
            if (slot * d + k >= lo && slot * d + k < hi) down0[slot * d + k] = h[k];
        if (slot == p - 1) {
            real_t inner[e];
            linear_split_in(c, c->w + T[T_DP_W], c->w + T[T_DP_B], down0, inner, lo, hi, p * d,
                            e);
            tier(c, i + 1, inner, t / p);
            linear_cols(c->w + T[T_UP_W], c->w + T[T_UP_B], inner, up0, 0, e, e, p * d, lo, hi);
            barrier(c);
        }
        memcpy(h, out, (size_t)nd * sizeof(real_t));
        return;
    }
    for (int64_t r = 0; r < nb; r++)
        memcpy(down0 + r * c->size + slot * d, h + r * d, (size_t)d * sizeof(real_t));
    if (slot == p - 1) {  /* a frame is complete: the coarser tier takes one step */
        real_t inner[nb * e];
        linear(c->w + T[T_DP_W], c->w + T[T_DP_B], down0, c->size, inner, e, nb, p * d, e);
        tier(c, i + 1, inner, t / p);
        linear(c->w + T[T_UP_W], c->w + T[T_UP_B], inner, e, up0, c->size, nb, e, p * d);
    }
    memcpy(h, out, (size_t)nd * sizeof(real_t));
}

/* The step's body, for one thread (c->nt == 1) or each thread of a team. */
static int step_body(const ctx_t *c, const int64_t *tokens, real_t *logits, int64_t t) {
    const int64_t *plan = c->plan;
    const weight_t *w = c->w;
    const int64_t d = plan[H_DMODEL], classes = plan[H_CLASSES], batch = c->nb;
    for (int64_t b = 0; b < batch; b++)
        if (tokens[b] < 0 || tokens[b] >= classes) return 1;
    real_t h[batch * d], y[batch * d];
    for (int64_t b = 0; b < batch; b++) {
        const weight_t *emb = w + plan[H_EMB] + tokens[b] * d;
        for (int64_t k = 0; k < d; k++) h[b * d + k] = emb[k];
    }
    tier(c, 0, h, t);
    for (int64_t b = 0; b < batch; b++)
        layer_norm(h + b * d, w + plan[H_NORM_W], w + plan[H_NORM_B], y + b * d, d, c->eps);
    if (c->nt > 1) {  /* each thread writes its share of the logits */
        int64_t lo, hi;
        share(c, classes, VW, &lo, &hi);
        linear_cols(w + plan[H_HEAD_W], w + plan[H_HEAD_B], y, logits, 0, d, d, classes, lo,
                    hi);
    } else {
        linear(w + plan[H_HEAD_W], w + plan[H_HEAD_B], y, d, logits, classes, batch, d, classes);
    }
    return 0;
}

/* The nucleus of probabilities p (n classes): p[k] = 0 for every class whose more likely
 * classes (ranked by p, descending; equal ones by index) hold a mass of top_p or more, the
 * mass taken as sample_logits takes it (the running sum, minus p[k]). */
typedef struct {
    double p;
    int64_t k;
} ranked_t;

static int by_probability(const void *a, const void *b) {
    const ranked_t *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->k < y->k ? -1 : (x->k > y->k);
}

static void nucleus(double *p, int64_t n, double top_p) {
    /* Only classes of probability >= tau need ranking when those hold a mass of top_p or
     * more: every other class has them all ranked higher. tau starts at the largest
     * probability and falls 16-fold until they do, with a margin far above the sums'
     * rounding (so that the classes below are masked as a ranking of all would mask them);
     * after 8 tries (a long tail, or top_p within the margin of 1) all are ranked. */
    double tau = 0;
    for (int64_t k = 0; k < n; k++) tau = p[k] > tau ? p[k] : tau;
    for (int tries = 1;; tries++, tau /= 16) {
        double mass = 0;
        for (int64_t k = 0; k < n; k++) mass += p[k] >= tau ? p[k] : 0;
        if (mass >= top_p + 1e-9) break;
        if (tries == 8) {
            tau = 0;
            break;
        }
    }
    ranked_t r[n];
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++) {
        if (p[k] >= tau)
            r[m++] = (ranked_t){p[k], k};
        else
            p[k] = 0;
    }
    qsort(r, (size_t)m, sizeof r[0], by_probability);
    double sum = 0;
    for (int64_t j = 0; j < m; j++) {
        sum += r[j].p;
        if (sum - r[j].p >= top_p) p[r[j].k] = 0;
    }
}

/* exp for doubles in a loop that vectorises (the C library's exp is a call per value; the
 * sampler takes one per class and step): exp(x) = 2^k exp(r) as fexp, with exp(r) by its
 * degree-13 Taylor polynomial and r = x - k ln 2 by fused multiply-adds (written as such, so
 * that -fassociative-math cannot merge ln 2's two parts). Within 1 ulp of the C library's over
 * [-708, 709] (measured on 2e7 points); below -708 (a class e^-708 times less likely than the
 * best) it returns exp(-708). */
#ifdef __FMA__
#define MUL_SUB(a, b, c) fma(-(a), (b), (c))
#else
#define MUL_SUB(a, b, c) ((c) - (a) * (b))
#endif
static inline double dexp(double x) {
    x = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    const double k = rint(x * 1.44269504088896340736);
    const double r = MUL_SUB(k, 1.90821492927058770002e-10,
                             MUL_SUB(k, 6.93147180369123816490e-01, x));
    double p = 1.0 / 6227020800.0;  /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const int64_t bits = ((int64_t)(int32_t)k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* One draw from a row of logits x (see block_t); lp: the drawn class's log-probability under
 * the model (log_softmax at temperature 1, float64). The first of equal maxima wins, as in
 * torch.argmax. The loops over classes vectorise but the argmax scans. */
static int64_t draw(const real_t *x, int64_t classes, const double *q, double temperature,
                    double top_p, double *lp) {
    double top = x[0];
    for (int64_t k = 1; k < classes; k++) top = x[k] > top ? x[k] : top;
    double sum = 0, e[classes];  /* e: the tempered softmax's numerators */
    for (int64_t k = 0; k < classes; k++) sum += e[k] = dexp((double)x[k] - top);
    int64_t best = 0;
    if (q == NULL) {
        for (int64_t k = 1; k < classes; k++)
            if (x[k] > x[best]) best = k;
    } else {
        double zsum = sum;
        if (temperature != 1.0) {
            double ztop = (double)x[0] / temperature;
            for (int64_t k = 1; k < classes; k++) {
                const double z = (double)x[k] / temperature;
                ztop = z > ztop ? z : ztop;
            }
            zsum = 0;
            for (int64_t k = 0; k < classes; k++)
                zsum += e[k] = dexp((double)x[k] / temperature - ztop);
        }
        double p[classes];
        for (int64_t k = 0; k < classes; k++) p[k] = e[k] / zsum;
        if (top_p < 1.0) nucleus(p, classes, top_p);
        for (int64_t k = 0; k < classes; k++) p[k] /= q[k];  /* p / q, as torch divides */
        double v = -1;
        for (int64_t k = 0; k < classes; k++) {
            if (p[k] > v) {
                v = p[k];
                best = k;
            }
        }
    }
    *lp = (double)x[best] - (top + log(sum));
    return best;
}

/* n steps with sampling (block_t) from the previous tokens prev_in; a team's threads each run
 * it, draw the same tokens from the same logits, and thread 0 writes them. A team writes the
 * logits of odd steps to its spare row: a thread that is done drawing from one step's logits
 * may write its share of the next step's while another still reads them (it cannot get two
 * steps ahead: the next step has barriers). */
static int block_body(const ctx_t *c, const int64_t *prev_in, real_t *logits, int64_t t0,
                      const block_t *B) {
    const int64_t batch = c->nb, classes = c->plan[H_CLASSES];
    real_t *rows[2] = {logits, c->team != NULL ? c->team->spare : logits};
    int64_t prev[batch];
    memcpy(prev, prev_in, (size_t)batch * sizeof(int64_t));
    for (int64_t j = 0; j < B->n; j++) {
        real_t *x = rows[j & 1];
        const int status = step_body(c, prev, x, t0 + j);
        barrier(c);  /* the logits complete: each thread of a team wrote a share */
        if (status) return status;
        for (int64_t r = 0; r < batch; r++) {
            int64_t token;
            double lp = 0;
            if (j < B->n_forced) {
                token = B->forced[j * B->stride + r];
                if (token < 0 || token >= classes) return 1;
            } else {
                const double *q = B->noise != NULL
                    ? B->noise + ((j - B->n_forced) * B->stride + r) * classes : NULL;
                token = draw(x + r * classes, classes, q, B->temperature, B->top_p, &lp);
            }
            prev[r] = token;
            if (c->k == 0) {
                B->out[j * B->stride + r] = token;
                if (j >= B->n_forced) B->logp[r] += lp;
            }
        }
    }
    return 0;
}

#ifdef FLUSH_SUBNORMALS
/* Decaying modes drift into subnormal numbers, each operation on which costs about a hundred
 * cycles on x86: they are flushed to zero during a step (flush-to-zero and
 * denormals-are-zero), the caller's mode restored after. */
#define FLUSHED(x)                                                                            \
    do {                                                                                      \
        const unsigned int csr_ = _mm_getcsr();                                               \
        _mm_setcsr(csr_ | 0x8040);                                                            \
        x;                                                                                    \
        _mm_setcsr(csr_);                                                                     \
    } while (0)
#else
#define FLUSHED(x) x
#endif

/* One step for `batch` sequences at time t: tokens (batch) -> logits (batch x classes), the
 * batch going through each layer together (each weight read once per step). Non-zero: a
 * token out of range. */
int sashimi_step(const weight_t *w, const int64_t *plan, real_t *state, const int64_t *tokens,
                 real_t *logits, int64_t batch, int64_t t, double eps) {
    const ctx_t c = {w, plan, state, batch, plan[H_STATE], eps, NULL, 0, 1};
    int status;
    FLUSHED(status = step_body(&c, tokens, logits, t));
    return status;
}

/* -- the team: sashimi_team_new(nt, maxw, classes), sashimi_team_step(team, ...),
 * sashimi_team_free -- */

void sashimi_team_free(void *team);

static int team_job(team_t *T, int k) {
    const ctx_t c = {T->w, T->plan, T->state, 1, T->plan[H_STATE], T->eps, T, k, T->nt};
    const int status = T->block != NULL ? block_body(&c, T->tokens, T->logits, T->t, T->block)
                                        : step_body(&c, T->tokens, T->logits, T->t);
    barrier(&c);  /* every share done (and every read of the job's inputs) */
    return status;
}

static void *team_worker(void *arg) {
    member_t *m = arg;
    team_t *T = m->team;
#ifdef FLUSH_SUBNORMALS
    _mm_setcsr(_mm_getcsr() | 0x8040);  /* this thread only runs steps */
#endif
    int64_t seen = 0;
    for (;;) {
        for (int64_t spins = 0; __atomic_load_n(&T->job, __ATOMIC_ACQUIRE) == seen; spins++) {
            if (__atomic_load_n(&T->quit, __ATOMIC_ACQUIRE)) return NULL;
            if (spins < SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&T->lock);  /* idle: sleep until the next job */
            while (T->job == seen && !T->quit) pthread_cond_wait(&T->wake, &T->lock);
            pthread_mutex_unlock(&T->lock);
        }
        seen = __atomic_load_n(&T->job, __ATOMIC_ACQUIRE);
        team_job(T, m->k);
    }
}

/* A team of nt threads (this one and nt - 1 workers) for steps whose split projections have
 * at most maxw outputs, sampling up to `classes` classes; NULL if it cannot be made. */
void *sashimi_team_new(int64_t nt, int64_t maxw, int64_t classes) {
    if (nt < 2 || nt > MAX_TEAM || maxw < 1 || classes < 1) return NULL;
    team_t *T;
    if (posix_memalign((void **)&T, 64, sizeof *T) != 0) return NULL;
    memset(T, 0, sizeof *T);
    T->nt = (int)nt;
    T->maxw = (maxw + VW - 1) / VW * VW;
    if (posix_memalign((void **)&T->slots, 64, (size_t)(2 * nt * T->maxw) * sizeof(real_t))) {
        free(T);
        return NULL;
    }
    if (posix_memalign((void **)&T->spare, 64, (size_t)classes * sizeof(real_t))) {
        free(T->slots);
        free(T);
        return NULL;
    }
    T->spare_n = classes;
    pthread_mutex_init(&T->lock, NULL);
    pthread_cond_init(&T->wake, NULL);
    for (int k = 1; k < T->nt; k++) {
        T->members[k] = (member_t){T, k};
        if (pthread_create(&T->threads[k], NULL, team_worker, &T->members[k]) != 0) {
            T->nt = k;  /* the ones started so far: stop them */
            sashimi_team_free(T);
            return NULL;
        }
    }
    return T;
}

void sashimi_team_free(void *team) {
    team_t *T = team;
    if (T == NULL) return;
    pthread_mutex_lock(&T->lock);
    __atomic_store_n(&T->quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&T->wake);
    pthread_mutex_unlock(&T->lock);
    for (int k = 1; k < T->nt; k++) pthread_join(T->threads[k], NULL);
    pthread_mutex_destroy(&T->lock);
    pthread_cond_destroy(&T->wake);
    free(T->slots);
    free(T->spare);
    free(T);
}

/* sashimi_step for one sequence (batch must be 1), shared by the team's threads. */
static int team_run(team_t *T, const weight_t *w, const int64_t *plan, real_t *state,
                    const int64_t *tokens, real_t *logits, int64_t t, double eps,
                    const block_t *block) {
    if (block != NULL && T->spare_n < plan[H_CLASSES]) return 2;
    T->w = w, T->plan = plan, T->state = state, T->tokens = tokens, T->logits = logits;
    T->t = t, T->eps = eps, T->block = block;
    pthread_mutex_lock(&T->lock);
    __atomic_store_n(&T->job, T->job + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&T->wake);
    pthread_mutex_unlock(&T->lock);
    int status;
    FLUSHED(status = team_job(T, 0));
    return status;
}

int sashimi_team_step(void *team, const weight_t *w, const int64_t *plan, real_t *state,
                      const int64_t *tokens, real_t *logits, int64_t batch, int64_t t,
                      double eps) {
    if (batch != 1) return 2;
    return team_run(team, w, plan, state, tokens, logits, t, eps, NULL);
}

/* n steps with sampling (block_t) for `batch` sequences (team NULL) or one (a team), from the
 * previous tokens `tokens`; out (n, stride) and logp (batch) as block_t says. Non-zero: a
 * token out of range. */
int sashimi_sample(void *team, const weight_t *w, const int64_t *plan, real_t *state,
                   const int64_t *tokens, real_t *logits, int64_t batch, int64_t t, double eps,
                   int64_t n, int64_t n_forced, const int64_t *forced, const double *noise,
                   int64_t stride, double temperature, double top_p, int64_t *out,
                   double *logp) {
    const block_t B = {n, n_forced, stride, forced, noise, temperature, top_p, out, logp};
    if (team != NULL) {
        if (batch != 1) return 2;
        return team_run(team, w, plan, state, tokens, logits, t, eps, &B);
    }
    const ctx_t c = {w, plan, state, batch, plan[H_STATE], eps, NULL, 0, 1};
    int status;
    FLUSHED(status = block_body(&c, tokens, logits, t, &B));
    return status;
}
