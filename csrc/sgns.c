/* sgns.c: word2vec's skip-gram negative-sampling kernels, float32 and float64 (see tinygrad_rep.h).
 *
 * sgns_forward_backward computes, for each of B rows, the loss of one center vector against its
 * true context and K negatives together with the gradients of that loss: one pass over the
 * gathered rows instead of the dozen elementary ops (products, sums, log-sigmoids and their
 * backwards) that the same loss costs when it is composed in the engine. Rows are independent,
 * so large batches are split over threads by rows; each row is always computed the same way,
 * so results do not depend on the thread count.
 *
 * Dot products keep TR_LANES partial sums (lane j % TR_LANES), added in a fixed order at the
 * end: the compiler vectorizes that without reassociating anything (no -ffast-math), so every
 * SIMD level gives the same bits.
 *
 * sample_negatives draws word ids from a Walker alias table with a counter-based generator
 * (splitmix64 of seed + position), so a draw depends only on (seed, row, slot, attempt): no
 * state is carried between calls or threads, and numpy_ref reproduces it exactly.
 */
#include "tinygrad_rep.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

#define TR_INLINE static inline __attribute__((always_inline))

/* Below this many multiply-adds a thread team costs more than it saves. */
#define TR_SGNS_PAR_MIN ((int64_t)1 << 17)
/* Partial sums per dot product: 16 float32 fill one AVX-512 register. */
#define TR_LANES 16
/* sample_negatives: draws per slot before a draw equal to `avoid` is kept anyway. */
#define TR_SGNS_MAX_TRIES 16

/* One row: loss and gradients of center c (d) against targets t (T x d), t[0] the true context.
 * Each target's loss is softplus(z) = max(z, 0) + log(1 + x), z = -s for the true context and
 * s for a negative, x = exp(-|s|) in (0, 1]: nothing overflows for any s, and sigmoid(s) comes
 * from the same x. The log(1 + x) terms are summed as one log of their product (at most 2^T,
 * flushed every ~100 factors): one log per row instead of T, with a rounding error of a few
 * units in the last place of the loss. */
#define DEFINE_SGNS_ROW(T, SUF, EXP, LOG)                                                     \
    TR_INLINE T dot_##SUF(int64_t d, const T *restrict a, const T *restrict b)               \
    {                                                                                         \
        T acc[TR_LANES] = {0};                                                                \
        int64_t j = 0;                                                                        \
        for (; j + TR_LANES <= d; j += TR_LANES)                                              \
            for (int l = 0; l < TR_LANES; ++l) acc[l] += a[j + l] * b[j + l];                  \
        for (int l = 0; j < d; ++j, ++l) acc[l] += a[j] * b[j];                                \
        T s = 0;                                                                              \
        for (int l = 0; l < TR_LANES; ++l) s += acc[l];                                        \
        return s;                                                                             \
    }                                                                                         \
    /* y += a * x */                                                                          \
    TR_INLINE void axpy_##SUF(int64_t d, T a, const T *restrict x, T *restrict y)             \
    {                                                                                         \
        for (int64_t j = 0; j < d; ++j) y[j] += a * x[j];                                     \
    }                                                                                         \
    /* y = a * x */                                                                           \
    TR_INLINE void scale_##SUF(int64_t d, T a, const T *restrict x, T *restrict y)            \
    {                                                                                         \
        for (int64_t j = 0; j < d; ++j) y[j] = a * x[j];                                      \
    }                                                                                         \
    TR_CLONES static void sgns_row_##SUF(int64_t nt, int64_t d, const T *restrict c,          \
                                         const T *restrict t, T *restrict loss,               \
                                         T *restrict gc, T *restrict gt)                      \
    {                                                                                         \
        T total = 0, prod = 1;                                                                \
        for (int64_t j = 0; j < d; ++j) gc[j] = 0;                                            \
        for (int64_t k = 0; k < nt; ++k) {                                                    \
            const T *tk = t + k * d;                                                          \
            T *gk = gt + k * d;                                                               \
            T s = dot_##SUF(d, c, tk);                                                        \
            T x = EXP(s >= 0 ? -s : s);                                                       \
            T sig = s >= 0 ? (T)1 / ((T)1 + x) : x / ((T)1 + x);                              \
            T z = k == 0 ? -s : s; /* this term's loss: softplus(z) */                        \
            total += z > 0 ? z : (T)0;                                                        \
            prod *= (T)1 + x;                                                                 \
            if (prod > (T)1e30) { total += LOG(prod); prod = 1; }                              \
            T e = k == 0 ? sig - (T)1 : sig;                                                  \
            axpy_##SUF(d, e, tk, gc);                                                         \
            scale_##SUF(d, e, c, gk);                                                         \
        }                                                                                     \
        *loss = total + LOG(prod);                                                            \
    }

DEFINE_SGNS_ROW(float, f32, expf, logf)
DEFINE_SGNS_ROW(double, f64, exp, log)

#define DEFINE_SGNS(T, SUF)                                                                   \
    void tr_sgns_forward_backward_##SUF(int64_t B, int64_t nt_, int64_t d, const T *center,  \
                                        const T *targets, T *losses, T *grad_center,         \
                                        T *grad_targets)                                     \
    {                                                                                         \
        if (B <= 0 || nt_ <= 0 || d < 0) return;                                              \
        int nt = B * nt_ * d > TR_SGNS_PAR_MIN ? tr_get_num_threads() : 1;                    \
        if (nt <= 1) {                                                                        \
            for (int64_t b = 0; b < B; ++b)                                                   \
                sgns_row_##SUF(nt_, d, center + b * d, targets + b * nt_ * d, losses + b,     \
                               grad_center + b * d, grad_targets + b * nt_ * d);              \
            return;                                                                           \
        }                                                                                     \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t b = 0; b < B; ++b)                                                       \
            sgns_row_##SUF(nt_, d, center + b * d, targets + b * nt_ * d, losses + b,         \
                           grad_center + b * d, grad_targets + b * nt_ * d);                  \
    }

DEFINE_SGNS(float, f32)
DEFINE_SGNS(double, f64)

/* How many pairs ahead sgns_sgd prefetches rows. */
#define TR_AHEAD 2

/* Ask for the cache lines of one row (a hint: never faults, changes no result). */
static inline void prefetch_row(const void *p, int64_t bytes)
{
    for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch((const char *)p + b, 1, 3);
}

/* In-place skip-gram SGD over index pairs, the original word2vec's inner loop. Pair i, with
 * c = W_in[inputs[i]] and o_k = W_out[targets[i, k]] as they are when the pair starts:
 *   e_k = sigmoid(c . o_k) - (k == 0)
 *   o_k -= lr * e_k * c  for every k (a row listed twice gets both updates)
 *   c   -= lr * sum_k e_k * o_k
 * i.e. one SGD step on the pair's loss, and pair i + 1 starts from the updated rows. work holds
 * T + d scratch values (e, then the sum for c). Sequential by nature: one thread. */
#define DEFINE_SGNS_SGD(T, SUF, EXP, LOG)                                                     \
    TR_CLONES static T sgd_pair_##SUF(int64_t nt, int64_t d, T *restrict c, T *W_out,         \
                                      const int64_t *tg, T lr, T *restrict e,                 \
                                      T *restrict acc)                                        \
    {                                                                                         \
        T total = 0, prod = 1; /* sum_k log(1 + x_k) = log(prod_k (1 + x_k)): one log a pair */ \
        for (int64_t k = 0; k < nt; ++k) {                                                    \
            T s = dot_##SUF(d, c, W_out + tg[k] * d);                                         \
            T x = EXP(s >= 0 ? -s : s);                                                       \
            T sig = s >= 0 ? (T)1 / ((T)1 + x) : x / ((T)1 + x);                              \
            T z = k == 0 ? -s : s;                                                            \
            total += z > 0 ? z : (T)0;                                                        \
            prod *= (T)1 + x;                                                                 \
            if (prod > (T)1e30) { total += LOG(prod); prod = 1; } /* T beyond ~100 */          \
            e[k] = k == 0 ? sig - (T)1 : sig;                                                 \
        }                                                                                     \
        total += LOG(prod);                                                                   \
        for (int64_t j = 0; j < d; ++j) acc[j] = 0;                                           \
        for (int64_t k = 0; k < nt; ++k) axpy_##SUF(d, e[k], W_out + tg[k] * d, acc);         \
        for (int64_t k = 0; k < nt; ++k) axpy_##SUF(d, -(lr * e[k]), c, W_out + tg[k] * d);   \
        axpy_##SUF(d, -lr, acc, c);                                                           \
        return total;                                                                         \
    }                                                                                         \
    void tr_sgns_sgd_##SUF(int64_t n, int64_t nt, int64_t d, T *W_in, T *W_out,               \
                           const int64_t *inputs, const int64_t *targets, T lr, T *losses,    \
                           T *work)                                                           \
    {                                                                                         \
        for (int64_t i = 0; i < n; ++i) {                                                     \
            if (i + TR_AHEAD < n) { /* rows of a later pair: their cache misses overlap work */ \
                prefetch_row(W_in + inputs[i + TR_AHEAD] * d, d * (int64_t)sizeof(T));        \
                for (int64_t k = 0; k < nt; ++k)                                              \
                    prefetch_row(W_out + targets[(i + TR_AHEAD) * nt + k] * d, d * (int64_t)sizeof(T)); \
            }                                                                                 \
            losses[i] = sgd_pair_##SUF(nt, d, W_in + inputs[i] * d, W_out, targets + i * nt,  \
                                       lr, work, work + nt);                                  \
        }                                                                                     \
    }

DEFINE_SGNS_SGD(float, f32, expf, logf)
DEFINE_SGNS_SGD(double, f64, exp, log)

#define TR_GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t splitmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* the k draws of row r (see tinygrad_rep.h for the exact stream) */
static void sample_row(int64_t r, int64_t k, int64_t V, const double *prob, const int64_t *alias,
                       int64_t avoid, uint64_t seed, int64_t *out)
{
    for (int64_t j = 0; j < k; ++j) {
        uint64_t n = (uint64_t)(r * k + j);
        int64_t word = 0;
        for (uint64_t a = 0; a < TR_SGNS_MAX_TRIES; ++a) {
            uint64_t x = splitmix64(seed + (n * TR_SGNS_MAX_TRIES + a + 1) * TR_GOLDEN);
            uint64_t i = ((x & 0xFFFFFFFFULL) * (uint64_t)V) >> 32;
            double u = (double)(x >> 32) * (1.0 / 4294967296.0);
            word = u < prob[i] ? (int64_t)i : alias[i];
            if (word != avoid) break;
        }
        out[j] = word;
    }
}

void tr_sample_negatives(int64_t rows, int64_t k, int64_t V, const double *prob, const int64_t *alias,
                         const int64_t *avoid, uint64_t seed, int64_t *out)
{
    if (rows <= 0 || k <= 0 || V <= 0) return;
    int nt = rows * k > TR_SGNS_PAR_MIN ? tr_get_num_threads() : 1;
    if (nt <= 1) {
        for (int64_t r = 0; r < rows; ++r) sample_row(r, k, V, prob, alias, avoid[r], seed, out + r * k);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) sample_row(r, k, V, prob, alias, avoid[r], seed, out + r * k);
}
