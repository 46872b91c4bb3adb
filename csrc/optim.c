/* optim.c: the fused Adam / AdamW parameter update, float32 and float64 (see tinygrad_rep.h).
 *
 * One pass over param, grad, m and v instead of the ~10 whole-array numpy passes of the Python
 * optimizer. The arithmetic is the same sequence of correctly rounded IEEE operations, in the
 * same order and at the array's precision, as numpy_ref.adam_step (the library builds with
 * -std=c11, so GCC does not contract a * b + c into an FMA, and the intrinsics below use
 * separate multiplies and adds), so results are bit-identical to the reference.
 *
 * Vector sqrt: GCC only vectorizes sqrt under -fno-math-errno, which the library is not built
 * with and which GCC 12 ignores in optimize pragmas/attributes. So on AVX-512 CPUs (chosen at
 * run time, as softmax.c does) an intrinsics loop runs; elsewhere the plain loop does (correct,
 * slower: scalar sqrt). Large arrays are split into fixed chunks over OpenMP threads; every
 * element depends on its own inputs only, so neither the split nor the path changes a result.
 */
#include "tinygrad_rep.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define TR_ADAM_AVX512 1
#include <immintrin.h>
#define TR_AVX512 __attribute__((target("avx512f")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)
/* Elements per parallel work item. */
#define TR_CHUNK ((int64_t)1 << 14)

/* The coefficients, each already rounded to the array's dtype (numpy rounds a Python float
 * operand to the array's dtype): decay is the L2 coefficient (0: none, and always 0 for AdamW),
 * shrink AdamW's 1 - lr * wd (1: none). */
#define DEFINE_COEF(T, SUF)                                                                   \
    typedef struct {                                                                          \
        T b1, c1, b2, c2, eps, decay, shrink, step_size, bias2_sqrt;                          \
    } adam_coef_##SUF;
DEFINE_COEF(float, f32)
DEFINE_COEF(double, f64)

/* The portable loop (any CPU). */
#define DEFINE_ADAM_PLAIN(T, SUF, SQRT)                                                       \
    TR_CLONES static void adam_plain_##SUF(int64_t n, T *restrict p, const T *restrict g,      \
                                           T *restrict m, T *restrict v, adam_coef_##SUF k)    \
    {                                                                                         \
        for (int64_t i = 0; i < n; ++i) {                                                     \
            T pi = p[i];                                                                      \
            if (k.shrink != (T)1) pi *= k.shrink;                                             \
            T gi = k.decay != (T)0 ? g[i] + pi * k.decay : g[i];                              \
            T mi = m[i] * k.b1 + gi * k.c1;                                                   \
            T vi = v[i] * k.b2 + gi * gi * k.c2;                                              \
            m[i] = mi;                                                                        \
            v[i] = vi;                                                                        \
            p[i] = pi - mi / (SQRT(vi) / k.bias2_sqrt + k.eps) * k.step_size;                 \
        }                                                                                     \
    }
DEFINE_ADAM_PLAIN(float, f32, __builtin_sqrtf)
DEFINE_ADAM_PLAIN(double, f64, __builtin_sqrt)

#ifdef TR_ADAM_AVX512
static int has_avx512(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* W lanes of type T in vector type V; X is the intrinsic suffix (ps / pd), M the mask type.
 * The tail is done with masked loads and stores, which touch no memory outside the mask. */
#define DEFINE_ADAM_AVX512(T, SUF, V, X, M, W)                                                \
    TR_AVX512 static inline void adam_lanes_##SUF(T *p, const T *g, T *m, T *v, M mask,        \
                                                 const adam_coef_##SUF *k)                    \
    {                                                                                         \
        V pi = _mm512_maskz_loadu_##X(mask, p), gi = _mm512_maskz_loadu_##X(mask, g);         \
        V mi = _mm512_maskz_loadu_##X(mask, m), vi = _mm512_maskz_loadu_##X(mask, v);         \
        if (k->shrink != (T)1) pi = _mm512_mul_##X(pi, _mm512_set1_##X(k->shrink));           \
        if (k->decay != (T)0)                                                                 \
            gi = _mm512_add_##X(gi, _mm512_mul_##X(pi, _mm512_set1_##X(k->decay)));           \
        mi = _mm512_add_##X(_mm512_mul_##X(mi, _mm512_set1_##X(k->b1)),                       \
                            _mm512_mul_##X(gi, _mm512_set1_##X(k->c1)));                      \
        vi = _mm512_add_##X(_mm512_mul_##X(vi, _mm512_set1_##X(k->b2)),                       \
                            _mm512_mul_##X(_mm512_mul_##X(gi, gi), _mm512_set1_##X(k->c2)));  \
        V d = _mm512_add_##X(_mm512_div_##X(_mm512_sqrt_##X(vi), _mm512_set1_##X(k->bias2_sqrt)), \
                             _mm512_set1_##X(k->eps));                                        \
        pi = _mm512_sub_##X(pi, _mm512_mul_##X(_mm512_div_##X(mi, d),                         \
                                               _mm512_set1_##X(k->step_size)));               \
        _mm512_mask_storeu_##X(m, mask, mi);                                                  \
        _mm512_mask_storeu_##X(v, mask, vi);                                                  \
        _mm512_mask_storeu_##X(p, mask, pi);                                                  \
    }                                                                                         \
    TR_AVX512 static void adam_avx512_##SUF(int64_t n, T *p, const T *g, T *m, T *v,          \
                                            adam_coef_##SUF k)                                \
    {                                                                                         \
        int64_t i = 0;                                                                        \
        for (; i + W <= n; i += W) adam_lanes_##SUF(p + i, g + i, m + i, v + i, (M)~(M)0, &k); \
        if (i < n) adam_lanes_##SUF(p + i, g + i, m + i, v + i, (M)((1u << (n - i)) - 1u), &k); \
    }
DEFINE_ADAM_AVX512(float, f32, __m512, ps, __mmask16, 16)
DEFINE_ADAM_AVX512(double, f64, __m512d, pd, __mmask8, 8)
#endif

#ifdef TR_ADAM_AVX512
#define ADAM_RUN(SUF, n, p, g, m, v, k)                                                       \
    (has_avx512() ? adam_avx512_##SUF(n, p, g, m, v, k) : adam_plain_##SUF(n, p, g, m, v, k))
#else
#define ADAM_RUN(SUF, n, p, g, m, v, k) adam_plain_##SUF(n, p, g, m, v, k)
#endif

#define DEFINE_ADAM(T, SUF)                                                                   \
    void tr_adam_step_##SUF(int64_t n, T *param, const T *grad, T *exp_avg, T *exp_avg_sq,     \
                            double beta1, double beta2, double eps, double weight_decay,       \
                            int decoupled, double lr, double step_size, double bias2_sqrt)     \
    {                                                                                         \
        adam_coef_##SUF k;                                                                    \
        k.b1 = (T)beta1;                                                                      \
        k.c1 = (T)(1.0 - beta1);                                                              \
        k.b2 = (T)beta2;                                                                      \
        k.c2 = (T)(1.0 - beta2);                                                              \
        k.eps = (T)eps;                                                                       \
        k.decay = decoupled ? (T)0 : (T)weight_decay;                                         \
        k.shrink = decoupled && weight_decay != 0.0 ? (T)(1.0 - lr * weight_decay) : (T)1;    \
        k.step_size = (T)step_size;                                                           \
        k.bias2_sqrt = (T)bias2_sqrt;                                                         \
        int nt = n > TR_PAR_MIN ? tr_get_num_threads() : 1;                                   \
        if (nt <= 1) {                                                                        \
            ADAM_RUN(SUF, n, param, grad, exp_avg, exp_avg_sq, k);                            \
            return;                                                                           \
        }                                                                                     \
        int64_t chunks = (n + TR_CHUNK - 1) / TR_CHUNK;                                       \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t c = 0; c < chunks; ++c) {                                                \
            int64_t lo = c * TR_CHUNK, len = n - lo < TR_CHUNK ? n - lo : TR_CHUNK;            \
            ADAM_RUN(SUF, len, param + lo, grad + lo, exp_avg + lo, exp_avg_sq + lo, k);      \
        }                                                                                     \
    }
DEFINE_ADAM(float, f32)
DEFINE_ADAM(double, f64)
