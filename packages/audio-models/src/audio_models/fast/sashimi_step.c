/* One recurrent step of a SaShiMi language model (embedding -> SaShiMi -> head), fused.
 *
 * The Python side (audio_models/fast/engine.py) lays the model out in flat arrays and compiles
 * this file with the machine's C compiler. Sums, activations and states are double precision
 * (float64 models then match their eager step to 1e-9). The control flow mirrors
 * SaShiMi.step in audio_models/sashimi.py: the outer tier runs every sample, tier i + 1 once
 * tier i has filled a frame of p_i samples, and its up-pooled output is used one frame later;
 * the skip connections are the reference's (SaShiMi or its U-Net). The whole batch goes
 * through each layer together, so every weight row is read once per step for all sequences
 * (the recurrences run per sequence); the Python side may split a batch across threads.
 *
 * Layout (int64 `plan`): a header of HEAD ints, then TIER ints per tier, then LAYER ints per
 * residual layer; offsets point into `w` (weights, matrices stored transposed: in x out; the
 * pools' weights reordered so that frames are (p, d) row-major) and into the
 * per-batch-element `state` block.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The precision weights are stored in: float for float32 models (half the memory traffic,
 * which bounds the step: the SC09 model's weights do not fit in cache), double for float64
 * ones. Activations, states and sums are double either way. */
#ifndef WEIGHT
#define WEIGHT double
#endif
typedef WEIGHT weight_t;

enum { HEAD = 16, TIER = 12, LAYER = 20 };
enum { H_TIERS, H_DMODEL, H_CLASSES, H_EMB, H_NORM_W, H_NORM_B, H_HEAD_W, H_HEAD_B,
       H_NCENTER, H_FCENTER, H_STATE, H_NLAYERS, H_MAXW, H_UNET };
enum { T_D, T_P, T_E, T_NDOWN, T_FDOWN, T_NUP, T_FUP, T_DP_W, T_DP_B, T_UP_W, T_UP_B,
       T_BUF };
/* A residual layer: x + layer(norm(x)). KIND: 0 S4 (diagonal recurrence), 1 S4 (DPLR),
 * 2 feed-forward. NORM: 0 the reference's scalar norm (N1 = m, N2 = s), 1 LayerNorm
 * (N1 = weight, N2 = bias). S4 fields: M, SCALE, GLU, SSM, D, OUT_W, OUT_B, STATE, RANK;
 * feed-forward fields: F (in M), FF1_W, FF1_B (in SSM, D), FF2_W, FF2_B (in OUT_W, OUT_B). */
enum { L_H, L_KIND, L_NORM, L_N1, L_N2, L_M, L_SCALE, L_GLU, L_SSM, L_D, L_OUT_W, L_OUT_B,
       L_STATE, L_RANK };
enum { DIAGONAL = 0, DPLR = 1, FEEDFORWARD = 2 };
enum { SCALAR_NORM = 0, LAYER_NORM = 1 };

typedef struct {
    const weight_t *w;
    const int64_t *plan;
    double *state;   /* nb sequences' states, `size` doubles each */
    int64_t nb, size;
    double eps;
} ctx_t;

/* For each of n rows r: y[r ys + o] = b[o] + sum_i x[r xs + i] * wt[i * n_out + o]. The
 * weight row i is read once for all rows (from cache after the first), so a batch costs one
 * pass over the weights; column sweeps vectorise without reassociation. */
static void linear(const weight_t *restrict wt, const weight_t *restrict b,
                   const double *restrict x, int64_t xs, double *restrict y, int64_t ys,
                   int64_t n, int64_t n_in, int64_t n_out) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < n_out; o++) y[r * ys + o] = b[o];
    for (int64_t i = 0; i < n_in; i++) {
        const weight_t *restrict row = wt + i * n_out;
        for (int64_t r = 0; r < n; r++) {
            const double xi = x[r * xs + i];
            double *restrict yr = y + r * ys;
            for (int64_t o = 0; o < n_out; o++) yr[o] += xi * row[o];
        }
    }
}

static void layer_norm(const double *x, const weight_t *g, const weight_t *b, double *y,
                       int64_t n, double eps) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    const double inv = 1.0 / sqrt(var / (double)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * g[i] + b[i];
}

/* The reference's scalar norm: y = s / std(x) * (x - mean(x) + m), biased std, no epsilon. */
static void scalar_norm(const double *x, const weight_t *m, const weight_t *s, double *y,
                        int64_t n) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    const double scale = (double)s[0] / sqrt(var / (double)n), shift = (double)m[0] - mean;
    for (int64_t i = 0; i < n; i++) y[i] = scale * (x[i] + shift);
}

static inline double gelu(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }

/* A diagonal recurrence (S4D): x <- A x + B u, y = scale Re(C x); complex, split re / im.
 * ssm: A_re, A_im, B_re, B_im, C_re, C_im, each (H, M). */
static void ssm_diagonal(const int64_t *L, const weight_t *q, double *st, const double *u,
                         double *y) {
    const int64_t H = L[L_H], M = L[L_M], HM = L[L_H] * L[L_M];
    const weight_t *are = q, *aim = q + HM, *bre = q + 2 * HM, *bim = q + 3 * HM,
                   *cre = q + 4 * HM, *cim = q + 5 * HM;
    double *sre = st, *sim = st + HM;
    for (int64_t h = 0; h < H; h++) {
        const double uh = u[h];
        double acc = 0;
        for (int64_t k = h * M; k < (h + 1) * M; k++) {
            const double r = are[k] * sre[k] - aim[k] * sim[k] + bre[k] * uh;
            const double i = are[k] * sim[k] + aim[k] * sre[k] + bim[k] * uh;
            sre[k] = r;
            sim[k] = i;
            acc += cre[k] * r - cim[k] * i;
        }
        y[h] = (double)L[L_SCALE] * acc;
    }
}

/* S4's bilinear DPLR step in O(M r) (ssm_kernels.kernels.DPLRKernel.step, mode "linear"):
 *   w = s + dt/2 (Lambda s - P Px) + dt B u,  Px = 2 Re(P^H s)
 *   x = 2/dt (D w - D P inner_inv 2 Re(P^H D w)),  y = 2 Re(C x)
 * ssm: Lambda, B, D, C (each re then im, (H, M)), P (r, re / im, H, M), dt (H),
 * inner_inv (H, r, r). */
static void ssm_dplr(const int64_t *L, const weight_t *q, double *st, const double *u,
                     double *y) {
    const int64_t H = L[L_H], M = L[L_M], R = L[L_RANK], HM = L[L_H] * L[L_M];
    const weight_t *lre = q, *lim = q + HM, *bre = q + 2 * HM, *bim = q + 3 * HM,
                   *dre = q + 4 * HM, *dim = q + 5 * HM, *cre = q + 6 * HM, *cim = q + 7 * HM,
                   *P = q + 8 * HM, *dts = P + 2 * R * HM, *inv = dts + H;
    double *sre = st, *sim = st + HM;
    double wre[M], wim[M], px[R], pdw[R], corr[R];
    for (int64_t h = 0; h < H; h++) {
        const int64_t k0 = h * M;
        const double dt = dts[h], uh = u[h];
        for (int64_t r = 0; r < R; r++) {
            const weight_t *pre = P + (2 * r) * HM + k0, *pim = P + (2 * r + 1) * HM + k0;
            double acc = 0;
            for (int64_t m = 0; m < M; m++) acc += pre[m] * sre[k0 + m] + pim[m] * sim[k0 + m];
            px[r] = 2 * acc;
        }
        for (int64_t m = 0; m < M; m++) {
            const int64_t k = k0 + m;
            double ar = lre[k] * sre[k] - lim[k] * sim[k];
            double ai = lre[k] * sim[k] + lim[k] * sre[k];
            for (int64_t r = 0; r < R; r++) {
                ar -= P[(2 * r) * HM + k] * px[r];
                ai -= P[(2 * r + 1) * HM + k] * px[r];
            }
            const double w_r = sre[k] + 0.5 * dt * ar + dt * bre[k] * uh;
            const double w_i = sim[k] + 0.5 * dt * ai + dt * bim[k] * uh;
            wre[m] = dre[k] * w_r - dim[k] * w_i;  /* D w */
            wim[m] = dre[k] * w_i + dim[k] * w_r;
        }
        for (int64_t r = 0; r < R; r++) {
            const weight_t *pre = P + (2 * r) * HM + k0, *pim = P + (2 * r + 1) * HM + k0;
            double acc = 0;
            for (int64_t m = 0; m < M; m++) acc += pre[m] * wre[m] + pim[m] * wim[m];
            pdw[r] = 2 * acc;
        }
        for (int64_t r = 0; r < R; r++) {
            double acc = 0;
            for (int64_t s = 0; s < R; s++) acc += inv[(h * R + r) * R + s] * pdw[s];
            corr[r] = acc;
        }
        double acc = 0;
        for (int64_t m = 0; m < M; m++) {
            const int64_t k = k0 + m;
            double pr = 0, pi = 0;
            for (int64_t r = 0; r < R; r++) {
                pr += P[(2 * r) * HM + k] * corr[r];
                pi += P[(2 * r + 1) * HM + k] * corr[r];
            }
            const double xr = 2 / dt * (wre[m] - (dre[k] * pr - dim[k] * pi));
            const double xi = 2 / dt * (wim[m] - (dre[k] * pi + dim[k] * pr));
            sre[k] = xr;
            sim[k] = xi;
            acc += cre[k] * xr - cim[k] * xi;
        }
        y[h] = 2 * acc;
    }
}

/* ssm_dplr for rank 1 (every HiPPO measure but legt): the same maths in three sweeps over
 * the modes, each free of inner loops, so that the compiler vectorises them. */
static void ssm_dplr1(const int64_t *L, const weight_t *q, double *st, const double *u,
                      double *y) {
    const int64_t H = L[L_H], M = L[L_M], HM = L[L_H] * L[L_M];
    const weight_t *lre = q, *lim = q + HM, *bre = q + 2 * HM, *bim = q + 3 * HM,
                   *dre = q + 4 * HM, *dim = q + 5 * HM, *cre = q + 6 * HM, *cim = q + 7 * HM,
                   *pre = q + 8 * HM, *pim = q + 9 * HM, *dts = q + 10 * HM, *inv = dts + H;
    double *sre = st, *sim = st + HM;
    double wre[M], wim[M];
    for (int64_t h = 0; h < H; h++) {
        const int64_t k0 = h * M;
        const double dt = dts[h], half = 0.5 * dts[h], du = dts[h] * u[h];
        const weight_t *Lr = lre + k0, *Li = lim + k0, *Br = bre + k0, *Bi = bim + k0,
                       *Dr = dre + k0, *Di = dim + k0, *Cr = cre + k0, *Ci = cim + k0,
                       *Pr = pre + k0, *Pi = pim + k0;
        double *Sr = sre + k0, *Si = sim + k0;
        double px = 0;
        for (int64_t m = 0; m < M; m++) px += Pr[m] * Sr[m] + Pi[m] * Si[m];
        px *= 2;
        double pdw = 0;
        for (int64_t m = 0; m < M; m++) {
            const double ar = Lr[m] * Sr[m] - Li[m] * Si[m] - Pr[m] * px;
            const double ai = Lr[m] * Si[m] + Li[m] * Sr[m] - Pi[m] * px;
            const double w_r = Sr[m] + half * ar + du * Br[m];
            const double w_i = Si[m] + half * ai + du * Bi[m];
            wre[m] = Dr[m] * w_r - Di[m] * w_i;
            wim[m] = Dr[m] * w_i + Di[m] * w_r;
            pdw += Pr[m] * wre[m] + Pi[m] * wim[m];
        }
        const double corr = inv[h] * 2 * pdw, scale = 2 / dt;
        double acc = 0;
        for (int64_t m = 0; m < M; m++) {
            const double pr = Pr[m] * corr, pi = Pi[m] * corr;
            const double xr = scale * (wre[m] - (Dr[m] * pr - Di[m] * pi));
            const double xi = scale * (wim[m] - (Dr[m] * pi + Di[m] * pr));
            Sr[m] = xr;
            Si[m] = xi;
            acc += Cr[m] * xr - Ci[m] * xi;
        }
        y[h] = 2 * acc;
    }
}

/* Each of the nb rows of x (width H): x <- x + layer(norm(x)); S4 states updated in place. */
static void residual(const ctx_t *c, const int64_t *L, double *x) {
    const int64_t H = L[L_H], nb = c->nb;
    const weight_t *w = c->w;
    double u[nb * H];
    for (int64_t r = 0; r < nb; r++) {
        if (L[L_NORM] == SCALAR_NORM)
            scalar_norm(x + r * H, w + L[L_N1], w + L[L_N2], u + r * H, H);
        else
            layer_norm(x + r * H, w + L[L_N1], w + L[L_N2], u + r * H, H, c->eps);
    }
    if (L[L_KIND] == FEEDFORWARD) {
        const int64_t F = L[L_M];
        double f[nb * F], o[nb * H];
        linear(w + L[L_SSM], w + L[L_D], u, H, f, F, nb, H, F);
        for (int64_t i = 0; i < nb * F; i++) f[i] = gelu(f[i]);
        linear(w + L[L_OUT_W], w + L[L_OUT_B], f, F, o, H, nb, F, H);
        for (int64_t i = 0; i < nb * H; i++) x[i] += o[i];
        return;
    }
    double y[nb * H], o[nb * 2 * H];
    for (int64_t r = 0; r < nb; r++) {
        double *st = c->state + r * c->size + L[L_STATE];
        if (L[L_KIND] == DPLR && L[L_RANK] == 1)
            ssm_dplr1(L, w + L[L_SSM], st, u + r * H, y + r * H);
        else if (L[L_KIND] == DPLR)
            ssm_dplr(L, w + L[L_SSM], st, u + r * H, y + r * H);
        else
            ssm_diagonal(L, w + L[L_SSM], st, u + r * H, y + r * H);
    }
    const weight_t *D = w + L[L_D];
    for (int64_t r = 0; r < nb; r++)
        for (int64_t h = 0; h < H; h++) y[r * H + h] = gelu(y[r * H + h] + D[h] * u[r * H + h]);
    if (L[L_GLU]) {
        linear(w + L[L_OUT_W], w + L[L_OUT_B], y, H, o, 2 * H, nb, H, 2 * H);
        for (int64_t r = 0; r < nb; r++) {
            const double *orow = o + r * 2 * H;
            for (int64_t h = 0; h < H; h++) x[r * H + h] += orow[h] / (1.0 + exp(-orow[H + h]));
        }
    } else {
        linear(w + L[L_OUT_W], w + L[L_OUT_B], y, H, o, H, nb, H, H);
        for (int64_t i = 0; i < nb * H; i++) x[i] += o[i];
    }
}

static const int64_t *layer_at(const ctx_t *c, int64_t l) {
    return c->plan + HEAD + c->plan[H_TIERS] * TIER + l * LAYER;
}

static void run(const ctx_t *c, int64_t first, int64_t n, double *x) {
    for (int64_t l = first; l < first + n; l++) residual(c, layer_at(c, l), x);
}

/* Tier i at its time t: h (nb rows, the tier's input of width d) -> the tier's output, in
 * place. Sequence r's frame buffers live in its own state block. */
static void tier(const ctx_t *c, int64_t i, double *h, int64_t t) {
    const int64_t *P = c->plan;
    const int64_t nb = c->nb;
    if (i == P[H_TIERS]) {  /* the centre: its input is added back to its output */
        const int64_t d = layer_at(c, P[H_FCENTER])[L_H];
        double in[nb * d];
        memcpy(in, h, (size_t)(nb * d) * sizeof(double));
        run(c, P[H_FCENTER], P[H_NCENTER], h);
        for (int64_t k = 0; k < nb * d; k++) h[k] += in[k];
        return;
    }
    const int64_t *T = P + HEAD + i * TIER;
    const int64_t d = T[T_D], p = T[T_P], e = T[T_E], slot = t % p, n = T[T_NDOWN];
    const int64_t nd = nb * d;
    double *down0 = c->state + T[T_BUF], *up0 = down0 + p * d;  /* sequence r: + r * size */
    double skips[(n + 1) * nd];  /* the input of every down layer, then the pool's input */
    memcpy(skips, h, (size_t)nd * sizeof(double));
    for (int64_t l = 0; l < n; l++) {
        residual(c, layer_at(c, T[T_FDOWN] + l), h);
        memcpy(skips + (l + 1) * nd, h, (size_t)nd * sizeof(double));
    }
    double out[nd], sum[nd];
    for (int64_t r = 0; r < nb; r++) {
        const double *up = up0 + r * c->size + slot * d;
        for (int64_t k = 0; k < d; k++) out[r * d + k] = sum[r * d + k] = up[k] + h[r * d + k];
    }
    if (P[H_UNET]) {
        for (int64_t l = 0; l < T[T_NUP]; l++) {
            residual(c, layer_at(c, T[T_FUP] + l), out);
            const double *skip = skips + (n - 1 - l) * nd;
            for (int64_t k = 0; k < nd; k++) out[k] += skip[k];
        }
    } else {
        run(c, T[T_FUP], T[T_NUP], out);
        for (int64_t k = 0; k < nd; k++) out[k] += sum[k];
    }
    for (int64_t r = 0; r < nb; r++)
        memcpy(down0 + r * c->size + slot * d, h + r * d, (size_t)d * sizeof(double));
    if (slot == p - 1) {  /* a frame is complete: the coarser tier takes one step */
        double inner[nb * e];
        linear(c->w + T[T_DP_W], c->w + T[T_DP_B], down0, c->size, inner, e, nb, p * d, e);
        tier(c, i + 1, inner, t / p);
        linear(c->w + T[T_UP_W], c->w + T[T_UP_B], inner, e, up0, c->size, nb, e, p * d);
    }
    memcpy(h, out, (size_t)nd * sizeof(double));
}

/* One step for `batch` sequences at time t: tokens (batch) -> logits (batch x classes), the
 * batch going through each layer together (each weight read once per step). */
int sashimi_step(const weight_t *w, const int64_t *plan, double *state, const int64_t *tokens,
                 double *logits, int64_t batch, int64_t t, double eps) {
    const int64_t d = plan[H_DMODEL], classes = plan[H_CLASSES];
    for (int64_t b = 0; b < batch; b++)
        if (tokens[b] < 0 || tokens[b] >= classes) return 1;
    const ctx_t c = {w, plan, state, batch, plan[H_STATE], eps};
    double h[batch * d], y[batch * d];
    for (int64_t b = 0; b < batch; b++) {
        const weight_t *emb = w + plan[H_EMB] + tokens[b] * d;
        for (int64_t k = 0; k < d; k++) h[b * d + k] = emb[k];
    }
    tier(&c, 0, h, t);
    for (int64_t b = 0; b < batch; b++)
        layer_norm(h + b * d, w + plan[H_NORM_W], w + plan[H_NORM_B], y + b * d, d, eps);
    linear(w + plan[H_HEAD_W], w + plan[H_HEAD_B], y, d, logits, classes, batch, d, classes);
    return 0;
}
