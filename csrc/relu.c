/* relu.c: ReLU forward and backward, float32 and float64 (see tinygrad_rep.h).
 *
 * The loops are plain element-wise code that GCC vectorizes; target_clones builds an AVX-512,
 * an AVX2 and a baseline copy and picks one at load time, so the default build (no -march)
 * still runs wide vectors where the CPU has them. Large arrays are split into fixed chunks
 * over OpenMP threads; every element depends on its own input only, so the split cannot
 * change a result.
 */
#include "tinygrad_rep.h"

/* Function multiversioning (x86-64 GCC/Clang only; elsewhere the plain loop is compiled). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)
/* Elements per parallel work item: large enough to amortize scheduling, small enough to
 * balance two threads on a few-MB array. */
#define TR_CHUNK ((int64_t)1 << 14)

static int threads_for(int64_t work)
{
    return work > TR_PAR_MIN ? tr_get_num_threads() : 1;
}

/* out = x > 0 ? x : 0, except that NaN stays NaN (a plain max(x, 0) would turn it into 0). */
#define DEFINE_RELU(T, SUF)                                                                  \
    TR_CLONES static void relu_fwd_##SUF(int64_t n, const T *restrict x, T *restrict out)     \
    {                                                                                        \
        for (int64_t i = 0; i < n; ++i) {                                                    \
            T v = x[i];                                                                      \
            T r = v > 0 ? v : (T)0;                                                          \
            out[i] = v != v ? v : r;                                                         \
        }                                                                                    \
    }                                                                                        \
    TR_CLONES static void relu_bwd_##SUF(int64_t n, const T *restrict x, const T *restrict g, \
                                         T *restrict out)                                    \
    {                                                                                        \
        for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0 ? g[i] : (T)0;                     \
    }                                                                                        \
    void tr_relu_forward_##SUF(int64_t n, const T *x, T *out)                                \
    {                                                                                        \
        int nt = threads_for(n);                                                             \
        if (nt <= 1) {                                                                       \
            relu_fwd_##SUF(n, x, out);                                                       \
            return;                                                                          \
        }                                                                                    \
        int64_t chunks = (n + TR_CHUNK - 1) / TR_CHUNK;                                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                         \
        for (int64_t c = 0; c < chunks; ++c) {                                               \
            int64_t lo = c * TR_CHUNK, len = n - lo < TR_CHUNK ? n - lo : TR_CHUNK;           \
            relu_fwd_##SUF(len, x + lo, out + lo);                                           \
        }                                                                                    \
    }                                                                                        \
    void tr_relu_backward_##SUF(int64_t n, const T *x, const T *grad, T *out)                \
    {                                                                                        \
        int nt = threads_for(n);                                                             \
        if (nt <= 1) {                                                                       \
            relu_bwd_##SUF(n, x, grad, out);                                                 \
            return;                                                                          \
        }                                                                                    \
        int64_t chunks = (n + TR_CHUNK - 1) / TR_CHUNK;                                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                         \
        for (int64_t c = 0; c < chunks; ++c) {                                               \
            int64_t lo = c * TR_CHUNK, len = n - lo < TR_CHUNK ? n - lo : TR_CHUNK;           \
            relu_bwd_##SUF(len, x + lo, grad + lo, out + lo);                                \
        }                                                                                    \
    }

DEFINE_RELU(float, f32)
DEFINE_RELU(double, f64)
