/* One recurrent step of a WaveNet language model (embedding -> WaveNet -> head), fused.
 *
 * The Python side (audio_models/fast/wavenet.py) lays the model out and compiles this file
 * with the machine's C compiler, as for sashimi_step.c. The maths is WaveNet.step in
 * audio_models/wavenet.py, with two products folded on the Python side in float64: the
 * embedding into the start convolution (one table row per token) and the last end
 * convolution into the language model's head. Sums, activations and queues are in the
 * model's precision (float for float32 models: twice the SIMD lanes and half the traffic of
 * double, as in its eager step), the weights too.
 *
 * The whole batch goes through one layer before the next, so each weight row is read once
 * per step and reused from cache for every sequence.
 *
 * Layout (int64 `plan`): a header of HEAD ints, then LAYER ints per layer. Matrices are
 * stored transposed (in x out). A layer's gate weights are (k, R, 2 Dc): tap j (0 = oldest),
 * input channel c, then the filter's Dc outputs followed by the gate's. A layer's queue holds
 * the last (k - 1) d residual inputs, slot tau % size holding time tau, R values per slot.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef WEIGHT
#define WEIGHT double
#endif
typedef WEIGHT weight_t;
typedef WEIGHT real_t;

enum { HEAD = 16, LAYER = 8 };
enum { H_LAYERS, H_R, H_DC, H_S, H_E, H_V, H_K, H_STATE, H_START, H_END1_W, H_END1_B,
       H_OUT_W, H_OUT_B, H_SCRATCH };
enum { L_DILATION, L_GATE_W, L_RES_W, L_SKIP_W, L_QUEUE, L_SIZE };

/* y[b, o] += sum_i x[b, i] * wt[i * n_out + o] for every b < n: each weight row once. */
static void matmul_acc(const weight_t *restrict wt, const real_t *restrict x,
                       real_t *restrict y, int64_t n, int64_t n_in, int64_t n_out) {
    for (int64_t i = 0; i < n_in; i++) {
        const weight_t *restrict row = wt + i * n_out;
        for (int64_t b = 0; b < n; b++) {
            const real_t xi = x[b * n_in + i];
            real_t *restrict yb = y + b * n_out;
            for (int64_t o = 0; o < n_out; o++) yb[o] += xi * row[o];
        }
    }
}

static void set_rows(real_t *y, const weight_t *b, int64_t n, int64_t width) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < width; o++) y[r * width + o] = b ? b[o] : 0;
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
#define sigmoid(x) _Generic((x), float: sigmoid_f, default: sigmoid_d)(x)
#define tanh_r(x) _Generic((x), float: tanhf, default: tanh)(x)

/* Returns 1 (and computes nothing) when a token is outside [0, V). */
int wavenet_step(const weight_t *w, const int64_t *plan, real_t *state, real_t *scratch,
                 const int64_t *tokens, real_t *logits, int64_t batch, int64_t t) {
    const int64_t n_layers = plan[H_LAYERS], R = plan[H_R], Dc = plan[H_DC], S = plan[H_S];
    const int64_t E = plan[H_E], V = plan[H_V], k = plan[H_K], n_state = plan[H_STATE];
    for (int64_t b = 0; b < batch; b++)
        if (tokens[b] < 0 || tokens[b] >= V) return 1;
    real_t *h = scratch, *win = h + batch * R, *fg = win + batch * k * R;
    real_t *z = fg + batch * 2 * Dc, *skip = z + batch * Dc, *e = skip + batch * S;
    for (int64_t b = 0; b < batch; b++) {
        const weight_t *row = w + plan[H_START] + tokens[b] * R;
        for (int64_t c = 0; c < R; c++) h[b * R + c] = row[c];
    }
    set_rows(skip, NULL, batch, S);
    for (int64_t l = 0; l < n_layers; l++) {
        const int64_t *L = plan + HEAD + l * LAYER;
        const int64_t d = L[L_DILATION], size = L[L_SIZE];
        for (int64_t b = 0; b < batch; b++) {
            real_t *queue = state + b * n_state + L[L_QUEUE];
            for (int64_t j = 0; j < k - 1; j++) {
                int64_t slot = (t - (k - 1 - j) * d) % size;
                if (slot < 0) slot += size;
                memcpy(win + (b * k + j) * R, queue + slot * R, (size_t)R * sizeof(real_t));
            }
            memcpy(win + (b * k + k - 1) * R, h + b * R, (size_t)R * sizeof(real_t));
            /* The oldest tap's slot is now free: it takes this step's input. */
            memcpy(queue + (t % size) * R, h + b * R, (size_t)R * sizeof(real_t));
        }
        set_rows(fg, NULL, batch, 2 * Dc);
        matmul_acc(w + L[L_GATE_W], win, fg, batch, k * R, 2 * Dc);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t c = 0; c < Dc; c++)
                z[b * Dc + c] = tanh_r(fg[b * 2 * Dc + c]) * sigmoid(fg[b * 2 * Dc + Dc + c]);
        matmul_acc(w + L[L_SKIP_W], z, skip, batch, Dc, S);
        matmul_acc(w + L[L_RES_W], z, h, batch, Dc, R);
    }
    for (int64_t i = 0; i < batch * S; i++) skip[i] = skip[i] > 0 ? skip[i] : 0;
    set_rows(e, w + plan[H_END1_B], batch, E);
    matmul_acc(w + plan[H_END1_W], skip, e, batch, S, E);
    for (int64_t i = 0; i < batch * E; i++) e[i] = e[i] > 0 ? e[i] : 0;
    set_rows(logits, w + plan[H_OUT_B], batch, V);
    matmul_acc(w + plan[H_OUT_W], e, logits, batch, E, V);
    return 0;
}
