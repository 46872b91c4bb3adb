/* embedding.c: embedding row gather and scatter-add, float32 and float64 (see tinygrad_rep.h).
 *
 * gather copies whole rows with memcpy (glibc already picks the widest copy the CPU has), and
 * splits rows over threads for large outputs. scatter_add must apply repeated indices in order
 * i, so it is never split over i: large problems are split over column blocks instead, each
 * thread walking all n indices for its own columns. Every output element thus receives its
 * additions in the same order whatever the thread count. The row addition is the hot loop and
 * is multiversioned with target_clones.
 */
#include "tinygrad_rep.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)
/* The narrowest column block worth a thread in scatter_add (one cache line of float32 is 16). */
#define TR_MIN_COLS_PER_THREAD 64

#define DEFINE_EMBEDDING(T, SUF)                                                             \
    void tr_embedding_gather_##SUF(int64_t n, int64_t d, const T *weight,                    \
                                   const int64_t *indices, T *out)                           \
    {                                                                                        \
        if (n <= 0 || d <= 0) return;                                                        \
        size_t row_bytes = (size_t)d * sizeof(T);                                            \
        int nt = n * d > TR_PAR_MIN ? tr_get_num_threads() : 1;                              \
        if (nt <= 1) {                                                                       \
            for (int64_t i = 0; i < n; ++i)                                                  \
                memcpy(out + i * d, weight + indices[i] * d, row_bytes);                     \
            return;                                                                          \
        }                                                                                    \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                         \
        for (int64_t i = 0; i < n; ++i)                                                      \
            memcpy(out + i * d, weight + indices[i] * d, row_bytes);                         \
    }                                                                                        \
    /* dst[j] += src[j] for j < len */                                                       \
    TR_CLONES static void add_row_##SUF(int64_t len, const T *restrict src, T *restrict dst)  \
    {                                                                                        \
        for (int64_t j = 0; j < len; ++j) dst[j] += src[j];                                  \
    }                                                                                        \
    /* columns [c0, c1) of out[indices[i]] += grad[i], for i = 0 .. n-1 in order */           \
    static void scatter_cols_##SUF(int64_t n, int64_t d, int64_t c0, int64_t c1, const T *grad, \
                                   const int64_t *indices, T *out)                           \
    {                                                                                        \
        for (int64_t i = 0; i < n; ++i)                                                      \
            add_row_##SUF(c1 - c0, grad + i * d + c0, out + indices[i] * d + c0);            \
    }                                                                                        \
    void tr_embedding_scatter_add_##SUF(int64_t n, int64_t d, const T *grad,                 \
                                        const int64_t *indices, T *out)                      \
    {                                                                                        \
        if (n <= 0 || d <= 0) return;                                                        \
        int nt = n * d > TR_PAR_MIN ? tr_get_num_threads() : 1;                              \
        int64_t max_blocks = d / TR_MIN_COLS_PER_THREAD;                                     \
        if (nt > max_blocks) nt = (int)max_blocks;                                           \
        if (nt <= 1) {                                                                       \
            scatter_cols_##SUF(n, d, 0, d, grad, indices, out);                              \
            return;                                                                          \
        }                                                                                    \
        int64_t per = (d + nt - 1) / nt;                                                     \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                         \
        for (int t = 0; t < nt; ++t) {                                                       \
            int64_t c0 = (int64_t)t * per, c1 = c0 + per < d ? c0 + per : d;                 \
            if (c0 < c1) scatter_cols_##SUF(n, d, c0, c1, grad, indices, out);               \
        }                                                                                    \
    }

DEFINE_EMBEDDING(float, f32)
DEFINE_EMBEDDING(double, f64)
