/* softmax.c: softmax, log-softmax and fused cross-entropy along rows, float32 and float64
 * (see tinygrad_rep.h for what each kernel computes).
 *
 * How it is made fast without -ffast-math:
 *  - libm's expf() is a call per element and stops the vectorizer, so float32 uses tr_expf()
 *    below: range reduction plus a polynomial, written branch-free so that every loop calling it
 *    vectorizes. float64 keeps libm's exp() (accuracy first; float64 is the checking dtype).
 *  - A floating-point sum over a row does not vectorize without -ffast-math (the compiler may
 *    not reorder additions). The sums below keep LANES independent partial sums and fold them
 *    in a fixed order at the end: vectorizable, and the order of operations is written out in
 *    the source, not chosen by the compiler. The row max is exact whatever the order, so it
 *    uses an OpenMP simd reduction.
 *  - target_clones builds AVX-512, AVX2 and baseline copies of the row loops; the AVX-512 copy
 *    also fuses multiply-adds (see TR_CLONES), so its last bits may differ from the others'.
 *  - On CPUs with AVX-512F the float32 kernels run hand-written intrinsics instead (see "float32
 *    row kernels in AVX-512 intrinsics" below): about 1.5x faster than the compiler's clone.
 *  - Rows are split over OpenMP threads only for large inputs; each row is computed by one
 *    thread with the same code, so results do not depend on the thread count.
 *
 * Special values follow the math: the row max is subtracted first (huge logits are safe); -inf
 * entries give probability 0 and log-probability -inf; a NaN anywhere in a row, a +inf, or a row
 * that is all -inf makes that row NaN, as the numpy reference does.
 */
#include "tinygrad_rep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fp-contract=fast lets the AVX-512 clone fuse a*b+c into one FMA (the exp polynomial is a chain
 * of them): about 25% faster here. -std=c11 turns contraction off by default, and the AVX2 and
 * baseline clones have no FMA instruction, so those compute without it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TR_NO_CLONES)
#define TR_CLONES \
    __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=fast")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)

/* Partial results kept by the reductions: 16 floats fill one AVX-512 register, two AVX2 ones. */
#define LANES 16

/* ---- a vectorizable expf ----------------------------------------------------------------
 * exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n*ln2 in [-ln2/2, ln2/2] (Cody-Waite: ln2
 * split into a part exact in few bits and a correction, so n*ln2_hi is exact). exp(r) is
 * 1 + r + r^2 * P(r), P a degree-4 fit of relative error 3e-9 on that interval (well below
 * float32's 6e-8 half-ulp). 2^n is built from its bits, in two halves so that 2^n may be
 * subnormal (n down to -151) while each half stays a normal float; the last multiply is then
 * the only rounding of a subnormal result. Measured against float64 exp on 550 million floats
 * spread over [-110, 90]: at most 1.01 ulp (subnormal results counted in units of 2^-149);
 * tests/test_kernels.py keeps checking <= 2 ulp.
 *
 * Special values are patched at the end by two selects on the input, rather than by clamping x
 * first: a clamp to a constant lets GCC split the loop body into constant cases and costs a
 * quarter more instructions. Outside [-105, 89] (inf included) the arithmetic above computes
 * garbage that is then replaced by 0 or +inf; a NaN fails both comparisons and flows through
 * as NaN. n is read from the bits of the rounded value, never by converting a float to int
 * (undefined behaviour for NaN and huge values), and the integer steps cannot overflow.
 */
static inline float tr_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: x + magic rounds x to an integer */
    const uint32_t magic_bits = 0x4B400000u;
    float t = x * 1.44269504088896341f + magic; /* x * log2(e), rounded */
    float n = t - magic;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t ni = (int32_t)(tb - magic_bits); /* n as an integer; in [-152, 129] for x in range */
    float r = x - n * 0.693359375f;          /* ln2_hi */
    r = r - n * -2.12194440e-4f;             /* ln2_lo */
    float p = 1.3814630e-3f;
    p = p * r + 8.3687101e-3f;
    p = p * r + 4.1668385e-2f;
    p = p * r + 1.6666521e-1f;
    p = p * r + 4.9999994e-1f;
    p = p * (r * r) + r + 1.0f;
    /* n1 = floor(n / 2) (GCC's >> on negative ints is arithmetic), n2 = n - n1: for n in
     * [-152, 129] both lie in [-76, 65], so 2^n1 and 2^n2 are normal floats. */
    int32_t n1 = ni >> 1, n2 = ni - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    float e = p * s1 * s2;
    e = x < -105.0f ? 0.0f : e;     /* exp(x) < 2^-151 rounds to 0; also x = -inf */
    e = x > 89.0f ? INFINITY : e;   /* exp(x) > FLT_MAX; also x = +inf */
    return e;
}

/* ---- row reductions in a fixed order (vectorizable, see the file comment) ---- */

#define DEFINE_REDUCTIONS(T, SUF)                                                            \
    /* Max over the row. Max is exact, so the order in which an OpenMP simd reduction visits  \
     * the entries cannot change it (only which of -0/+0 or which NaN wins, and a NaN reaches \
     * the output through exp anyway); the compiler would not vectorize it otherwise. */     \
    static inline T row_max_##SUF(int64_t n, const T *restrict x)                            \
    {                                                                                        \
        T m = -INFINITY;                                                                     \
        _Pragma("omp simd reduction(max:m)")                                                 \
        for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;                             \
        return m;                                                                            \
    }                                                                                        \
    static inline T row_sum_##SUF(int64_t n, const T *restrict x)                            \
    {                                                                                        \
        T acc[LANES] = {0};                                                                  \
        int64_t j = 0;                                                                       \
        for (; j + LANES <= n; j += LANES)                                                   \
            for (int k = 0; k < LANES; ++k) acc[k] += x[j + k];                              \
        for (int k = 0; j + k < n; ++k) acc[k] += x[j + k];                                  \
        for (int w = LANES / 2; w > 0; w /= 2)                                               \
            for (int k = 0; k < w; ++k) acc[k] += acc[k + w];                                \
        return acc[0];                                                                       \
    }                                                                                        \
    static inline T row_dot_##SUF(int64_t n, const T *restrict x, const T *restrict y)       \
    {                                                                                        \
        T acc[LANES] = {0};                                                                  \
        int64_t j = 0;                                                                       \
        for (; j + LANES <= n; j += LANES)                                                   \
            for (int k = 0; k < LANES; ++k) acc[k] += x[j + k] * y[j + k];                   \
        for (int k = 0; j + k < n; ++k) acc[k] += x[j + k] * y[j + k];                       \
        for (int w = LANES / 2; w > 0; w /= 2)                                               \
            for (int k = 0; k < w; ++k) acc[k] += acc[k + w];                                \
        return acc[0];                                                                       \
    }

DEFINE_REDUCTIONS(float, f32)
DEFINE_REDUCTIONS(double, f64)

/* ---- row kernels: each handles rows [r0, r1) of a rows x cols array ----
 * EXP is tr_expf for float32 and libm exp for float64; LOG is only called once per row. */

#define DEFINE_ROW_KERNELS(T, SUF, EXP, LOG)                                                 \
    /* y = exp(x - max) / sum; returns the sum and stores the max (cross-entropy needs both) */ \
    static inline T softmax_row_##SUF(int64_t n, const T *restrict x, T *restrict y,         \
                                      T *max_out)                                            \
    {                                                                                        \
        T m = row_max_##SUF(n, x);                                                           \
        for (int64_t j = 0; j < n; ++j) y[j] = EXP(x[j] - m);                                \
        T s = row_sum_##SUF(n, y);                                                           \
        T inv = (T)1 / s;                                                                    \
        for (int64_t j = 0; j < n; ++j) y[j] *= inv;                                         \
        *max_out = m;                                                                        \
        return s;                                                                            \
    }                                                                                        \
    TR_CLONES static void softmax_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,       \
                                                 const T *x, T *out)                         \
    {                                                                                        \
        T m;                                                                                 \
        for (int64_t r = r0; r < r1; ++r) softmax_row_##SUF(cols, x + r * cols, out + r * cols, &m); \
    }                                                                                        \
    TR_CLONES static void log_softmax_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,   \
                                                     const T *x, T *out)                     \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict xr = x + r * cols;                                             \
            T *restrict yr = out + r * cols;                                                 \
            T m = row_max_##SUF(cols, xr);                                                   \
            /* the row of exp(x - max) is a scratch value in out, overwritten below */       \
            for (int64_t j = 0; j < cols; ++j) yr[j] = EXP(xr[j] - m);                       \
            T lse = LOG(row_sum_##SUF(cols, yr));                                            \
            for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - lse;                    \
        }                                                                                    \
    }                                                                                        \
    TR_CLONES static void softmax_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,       \
                                                 const T *y, const T *g, T *out)             \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict yr = y + r * cols, *restrict gr = g + r * cols;                \
            T *restrict o = out + r * cols;                                                  \
            T d = row_dot_##SUF(cols, gr, yr);                                               \
            for (int64_t j = 0; j < cols; ++j) o[j] = yr[j] * (gr[j] - d);                   \
        }                                                                                    \
    }                                                                                        \
    TR_CLONES static void log_softmax_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,   \
                                                     const T *y, const T *g, T *out)         \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict yr = y + r * cols, *restrict gr = g + r * cols;                \
            T *restrict o = out + r * cols;                                                  \
            T s = row_sum_##SUF(cols, gr);                                                   \
            for (int64_t j = 0; j < cols; ++j) o[j] = gr[j] - EXP(yr[j]) * s;                \
        }                                                                                    \
    }                                                                                        \
    /* loss = logsumexp(x) - x[t], computed as -((x[t] - max) - log(sum)) like the reference */ \
    TR_CLONES static void ce_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols, const T *x, \
                                            const int64_t *targets, T *losses, T *probs)     \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *xr = x + r * cols;                                                      \
            T m;                                                                             \
            T s = softmax_row_##SUF(cols, xr, probs + r * cols, &m);                         \
            losses[r] = -((xr[targets[r]] - m) - LOG(s));                                    \
        }                                                                                    \
    }                                                                                        \
    /* out = (probs - onehot(target)) * grad[r], rounding exactly as the reference does */    \
    TR_CLONES static void ce_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols, const T *p, \
                                            const int64_t *targets, const T *g, T *out)      \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict pr = p + r * cols;                                             \
            T *restrict o = out + r * cols;                                                  \
            T gr = g[r];                                                                     \
            for (int64_t j = 0; j < cols; ++j) o[j] = pr[j] * gr;                            \
            o[targets[r]] = (pr[targets[r]] - (T)1) * gr;                                    \
        }                                                                                    \
    }

DEFINE_ROW_KERNELS(float, f32, tr_expf, logf)
DEFINE_ROW_KERNELS(double, f64, exp, log)

/* ---- float32 row kernels in AVX-512 intrinsics -----------------------------------------
 * Why: GCC vectorizes tr_expf() above, but in its AVX-512 clone it neither fuses the multiply-
 * adds (the optimize("fp-contract=fast") attribute is dropped under target_clones) nor keeps the
 * special-value selects cheap: 36 instructions per 16 floats, and the 256x1000 softmax spent most
 * of its time there. Written out with intrinsics it is 14: the polynomial is a chain of FMAs,
 * n = round(x*log2e) is one vrndscaleps, and 2^n * p is one vscalefps, which also rounds
 * subnormal results once and saturates to 0 / +inf, so only the two clamps below remain for the
 * special values. The polynomial and the Cody-Waite split are tr_expf's (same accuracy: within
 * 2 ulp, checked by tests/test_kernels.py). Chosen at run time (never -march=native): on a CPU
 * without AVX-512 the AVX2 + FMA versions further down run instead, and without those the
 * target_clones kernels above (see row_level()).
 *
 * Tails are handled with masked loads and stores, which touch no memory outside the mask, so a
 * row is read and written exactly within [ptr, ptr + cols). Sums keep two vector accumulators
 * and fold them in a fixed order, so a row's result depends only on the row (not on threads). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_AVX512_ROWS 1
#include <immintrin.h>

#define TR_AVX512 __attribute__((target("avx512f")))

/* The level the float32 row kernels run at, decided once: 2 = the AVX-512 intrinsics below,
 * 1 = the AVX2 + FMA intrinsics further down, 0 = the target_clones loops above. It is the
 * highest the CPU has, capped by TINYGRAD_REP_ROW_SIMD ("avx2" or "default"; any other value
 * is ignored), which exists so the tests can run every path on one machine. */
static int row_level(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 2
            : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
        const char *cap = getenv("TINYGRAD_REP_ROW_SIMD");
        if (cap != NULL && strcmp(cap, "avx2") == 0 && v > 1) v = 1;
        if (cap != NULL && strcmp(cap, "default") == 0) v = 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* The mask of the first r lanes, 0 <= r < 16. */
static inline __mmask16 tail_mask(int64_t r)
{
    return (__mmask16)((1u << r) - 1u);
}

/* exp of 16 floats. The clamps keep vscalefps's exponent in range: below -110 every result
 * rounds to 0 (exp(-103.98) is already under half the smallest subnormal), above 89 it is +inf
 * (exp(88.73) > FLT_MAX). vmaxps/vminps return their second operand when either is NaN, so
 * putting x second lets a NaN through unchanged, and -inf / +inf become -110 / 89. */
TR_AVX512 static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-110.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);    /* x - n*ln2_hi */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);        /* - n*ln2_lo */
    __m512 p = _mm512_set1_ps(1.3814630e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3687101e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1668385e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666521e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.9999994e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);                    /* r + r^2 P(r) */
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);                                      /* p * 2^n */
}

/* Max over a row; NaN entries are skipped (vmaxps keeps its second operand, the running max),
 * which is harmless: a NaN entry still makes its row NaN through exp. */
TR_AVX512 static float max_row16(int64_t n, const float *x)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + j), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + j + 16), m1);
    }
    for (; j + 16 <= n; j += 16) m0 = _mm512_max_ps(_mm512_loadu_ps(x + j), m0);
    if (j < n) m1 = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail_mask(n - j), x + j), m1);
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/* sum(x) over a row, in a fixed order */
TR_AVX512 static float sum_row16(int64_t n, const float *x)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + j + 16));
    }
    for (; j + 16 <= n; j += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
    if (j < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(tail_mask(n - j), x + j));
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* sum(exp(x - m)) over a row, in a fixed order; also stores exp(x - m) to y unless y is NULL
 * (callers pass a constant, so the inlined copy has no test in its loop). */
TR_AVX512 static inline float exp_sum_row16(int64_t n, const float *x, float m, float *y)
{
    const __m512 mv = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv));
        __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), mv));
        if (y) {
            _mm512_storeu_ps(y + j, e0);
            _mm512_storeu_ps(y + j + 16, e1);
        }
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; j + 16 <= n; j += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv));
        if (y) _mm512_storeu_ps(y + j, e);
        s0 = _mm512_add_ps(s0, e);
    }
    if (j < n) {
        __mmask16 k = tail_mask(n - j);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), mv));
        if (y) _mm512_mask_storeu_ps(y + j, k, e);
        s1 = _mm512_mask_add_ps(s1, k, s1, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* softmax of one row into y; returns the sum of exp(x - max) and stores the max */
TR_AVX512 static float softmax_row16(int64_t n, const float *x, float *y, float *max_out)
{
    float m = max_row16(n, x);
    float s = exp_sum_row16(n, x, m, y);
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_loadu_ps(y + j), inv));
    if (j < n) {
        __mmask16 k = tail_mask(n - j);
        _mm512_mask_storeu_ps(y + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + j), inv));
    }
    *max_out = m;
    return s;
}

TR_AVX512 static void softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
                                              const float *x, float *out)
{
    float m;
    for (int64_t r = r0; r < r1; ++r) softmax_row16(cols, x + r * cols, out + r * cols, &m);
}

/* out = (x - max) - log(sum(exp(x - max))): exp is summed in registers, never stored */
TR_AVX512 static void log_softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
                                                  const float *x, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = max_row16(cols, xr);
        const __m512 mv = _mm512_set1_ps(m);
        const __m512 lse = _mm512_set1_ps(logf(exp_sum_row16(cols, xr, m, NULL)));
        int64_t j = 0;
        for (; j + 16 <= cols; j += 16)
            _mm512_storeu_ps(yr + j, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), mv), lse));
        if (j < cols) {
            __mmask16 k = tail_mask(cols - j);
            _mm512_mask_storeu_ps(yr + j, k,
                                  _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + j), mv), lse));
        }
    }
}

/* out = grad - exp(y) * sum(grad), the product rounded before the subtraction as in the
 * reference */
TR_AVX512 static void log_softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
                                                  const float *y, const float *g, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *o = out + r * cols;
        const __m512 s = _mm512_set1_ps(sum_row16(cols, gr));
        int64_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            __m512 e = exp16(_mm512_loadu_ps(yr + j));
            _mm512_storeu_ps(o + j, _mm512_sub_ps(_mm512_loadu_ps(gr + j), _mm512_mul_ps(e, s)));
        }
        if (j < cols) {
            __mmask16 k = tail_mask(cols - j);
            __m512 e = exp16(_mm512_maskz_loadu_ps(k, yr + j));
            _mm512_mask_storeu_ps(o + j, k,
                                  _mm512_sub_ps(_mm512_maskz_loadu_ps(k, gr + j), _mm512_mul_ps(e, s)));
        }
    }
}

/* out = y * (grad - sum(grad * y)); the dot product keeps two FMA chains (one chain waits on
 * its own latency every 16 floats) */
TR_AVX512 static void softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
                                              const float *y, const float *g, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *o = out + r * cols;
        __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 32 <= cols; j += 32) {
            d0 = _mm512_fmadd_ps(_mm512_loadu_ps(gr + j), _mm512_loadu_ps(yr + j), d0);
            d1 = _mm512_fmadd_ps(_mm512_loadu_ps(gr + j + 16), _mm512_loadu_ps(yr + j + 16), d1);
        }
        for (; j + 16 <= cols; j += 16)
            d0 = _mm512_fmadd_ps(_mm512_loadu_ps(gr + j), _mm512_loadu_ps(yr + j), d0);
        if (j < cols) {
            __mmask16 k = tail_mask(cols - j);
            d1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, gr + j), _mm512_maskz_loadu_ps(k, yr + j), d1);
        }
        const __m512 d = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_add_ps(d0, d1)));
        /* While this row is written from L1, pull the next row's y and grad toward L1 (one
         * 64-byte line per 16 floats), so the next dot product does not wait on L2/L3. A
         * prefetch is only a hint: it never faults and reads nothing into the program. */
        const char *ny = (const char *)(yr + cols), *ng = (const char *)(gr + cols);
        const int prefetch = r + 1 < r1;
        j = 0;
        for (; j + 16 <= cols; j += 16) {
            if (prefetch) {
                _mm_prefetch(ny + 4 * j, _MM_HINT_T0);
                _mm_prefetch(ng + 4 * j, _MM_HINT_T0);
            }
            _mm512_storeu_ps(o + j, _mm512_mul_ps(_mm512_loadu_ps(yr + j),
                                                  _mm512_sub_ps(_mm512_loadu_ps(gr + j), d)));
        }
        if (j < cols) {
            __mmask16 k = tail_mask(cols - j);
            _mm512_mask_storeu_ps(o + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yr + j),
                                                          _mm512_sub_ps(_mm512_maskz_loadu_ps(k, gr + j), d)));
        }
    }
}

TR_AVX512 static void ce_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x,
                                         const int64_t *targets, float *losses, float *probs)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m;
        float s = softmax_row16(cols, xr, probs + r * cols, &m);
        losses[r] = -((xr[targets[r]] - m) - logf(s));
    }
}

/* ---- the same float32 row kernels in AVX2 + FMA intrinsics, for CPUs without AVX-512 ----
 * AVX2 has no vscalefps and no mask registers, so 2^n is built from its bits in two halves as
 * tr_expf() does (each half a normal float, so a subnormal result is rounded once, by the last
 * multiply), and tails use vmaskmovps loads and stores, which touch no memory outside the mask.
 * The clamps make n an integer in [-159, 128] whatever x is (a NaN turns the integer steps into
 * garbage, but p is NaN then and so is the product). */
#define TR_AVX2 __attribute__((target("avx2,fma")))

/* lanes [0, r) set, 0 <= r < 8: the 8 entries of tail_bits starting at 8 - r */
static const int32_t tail_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
TR_AVX2 static inline __m256i tail_mask8(int64_t r)
{
    return _mm256_loadu_si256((const __m256i *)(tail_bits + 8 - r));
}

TR_AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-110.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.3814630e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3687101e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1668385e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666521e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.9999994e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* a fixed-order sum of the 8 lanes */
TR_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TR_AVX2 static inline float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TR_AVX2 static float max_row8(int64_t n, const float *x)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + j + 8), m1);
    }
    for (; j + 8 <= n; j += 8) m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
    if (j < n) {
        __m256i k = tail_mask8(n - j);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + j, k), _mm256_castsi256_ps(k));
        m1 = _mm256_max_ps(v, m1);
    }
    return hmax8(_mm256_max_ps(m0, m1));
}

TR_AVX2 static float sum_row8(int64_t n, const float *x)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
    }
    for (; j + 8 <= n; j += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
    if (j < n) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + j, tail_mask8(n - j)));
    return hsum8(_mm256_add_ps(s0, s1));
}

TR_AVX2 static inline float exp_sum_row8(int64_t n, const float *x, float m, float *y)
{
    const __m256 mv = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), mv));
        if (y) {
            _mm256_storeu_ps(y + j, e0);
            _mm256_storeu_ps(y + j + 8, e1);
        }
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv));
        if (y) _mm256_storeu_ps(y + j, e);
        s0 = _mm256_add_ps(s0, e);
    }
    if (j < n) {
        __m256i k = tail_mask8(n - j);
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), mv));
        if (y) _mm256_maskstore_ps(y + j, k, e);
        s1 = _mm256_add_ps(s1, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

TR_AVX2 static float softmax_row8(int64_t n, const float *x, float *y, float *max_out)
{
    float m = max_row8(n, x);
    float s = exp_sum_row8(n, x, m, y);
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_loadu_ps(y + j), inv));
    if (j < n) {
        __m256i k = tail_mask8(n - j);
        _mm256_maskstore_ps(y + j, k, _mm256_mul_ps(_mm256_maskload_ps(y + j, k), inv));
    }
    *max_out = m;
    return s;
}

TR_AVX2 static void softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x,
                                          float *out)
{
    float m;
    for (int64_t r = r0; r < r1; ++r) softmax_row8(cols, x + r * cols, out + r * cols, &m);
}

TR_AVX2 static void log_softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols,
                                              const float *x, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = max_row8(cols, xr);
        const __m256 mv = _mm256_set1_ps(m);
        const __m256 lse = _mm256_set1_ps(logf(exp_sum_row8(cols, xr, m, NULL)));
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), mv), lse));
        if (j < cols) {
            __m256i k = tail_mask8(cols - j);
            _mm256_maskstore_ps(yr + j, k,
                                _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + j, k), mv), lse));
        }
    }
}

TR_AVX2 static void log_softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols,
                                              const float *y, const float *g, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *o = out + r * cols;
        const __m256 s = _mm256_set1_ps(sum_row8(cols, gr));
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 e = exp8(_mm256_loadu_ps(yr + j));
            _mm256_storeu_ps(o + j, _mm256_sub_ps(_mm256_loadu_ps(gr + j), _mm256_mul_ps(e, s)));
        }
        if (j < cols) {
            __m256i k = tail_mask8(cols - j);
            __m256 e = exp8(_mm256_maskload_ps(yr + j, k));
            _mm256_maskstore_ps(o + j, k, _mm256_sub_ps(_mm256_maskload_ps(gr + j, k), _mm256_mul_ps(e, s)));
        }
    }
}

TR_AVX2 static void softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y,
                                          const float *g, float *out)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *o = out + r * cols;
        __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            d0 = _mm256_fmadd_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(yr + j), d0);
            d1 = _mm256_fmadd_ps(_mm256_loadu_ps(gr + j + 8), _mm256_loadu_ps(yr + j + 8), d1);
        }
        for (; j + 8 <= cols; j += 8)
            d0 = _mm256_fmadd_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(yr + j), d0);
        if (j < cols) {
            __m256i k = tail_mask8(cols - j);
            d1 = _mm256_fmadd_ps(_mm256_maskload_ps(gr + j, k), _mm256_maskload_ps(yr + j, k), d1);
        }
        const __m256 d = _mm256_set1_ps(hsum8(_mm256_add_ps(d0, d1)));
        j = 0;
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_loadu_ps(yr + j),
                                                  _mm256_sub_ps(_mm256_loadu_ps(gr + j), d)));
        if (j < cols) {
            __m256i k = tail_mask8(cols - j);
            _mm256_maskstore_ps(o + j, k, _mm256_mul_ps(_mm256_maskload_ps(yr + j, k),
                                                        _mm256_sub_ps(_mm256_maskload_ps(gr + j, k), d)));
        }
    }
}

TR_AVX2 static void ce_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x,
                                     const int64_t *targets, float *losses, float *probs)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m;
        float s = softmax_row8(cols, xr, probs + r * cols, &m);
        losses[r] = -((xr[targets[r]] - m) - logf(s));
    }
}
#endif /* AVX-512 and AVX2 row kernels */

/* The row kernels the drivers call: for float32 the intrinsics ones of row_level(), else the
 * target_clones ones; float64 always the latter. */
#ifdef TR_AVX512_ROWS
#define PICK_F32(AVX512_CALL, AVX2_CALL, GENERIC_CALL)                                       \
    switch (row_level()) {                                                                   \
    case 2: AVX512_CALL; break;                                                              \
    case 1: AVX2_CALL; break;                                                                \
    default: GENERIC_CALL; break;                                                            \
    }
#else
#define PICK_F32(AVX512_CALL, AVX2_CALL, GENERIC_CALL) GENERIC_CALL
#endif
static void softmax_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out)
{
    PICK_F32(softmax_fwd_rows_avx512(r0, r1, cols, x, out), softmax_fwd_rows_avx2(r0, r1, cols, x, out),
             softmax_fwd_rows_f32(r0, r1, cols, x, out));
}
static void log_softmax_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out)
{
    PICK_F32(log_softmax_fwd_rows_avx512(r0, r1, cols, x, out),
             log_softmax_fwd_rows_avx2(r0, r1, cols, x, out),
             log_softmax_fwd_rows_f32(r0, r1, cols, x, out));
}
static void softmax_bwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *y,
                                 const float *g, float *out)
{
    PICK_F32(softmax_bwd_rows_avx512(r0, r1, cols, y, g, out),
             softmax_bwd_rows_avx2(r0, r1, cols, y, g, out),
             softmax_bwd_rows_f32(r0, r1, cols, y, g, out));
}
static void log_softmax_bwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *y,
                                     const float *g, float *out)
{
    PICK_F32(log_softmax_bwd_rows_avx512(r0, r1, cols, y, g, out),
             log_softmax_bwd_rows_avx2(r0, r1, cols, y, g, out),
             log_softmax_bwd_rows_f32(r0, r1, cols, y, g, out));
}
static void ce_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x,
                            const int64_t *targets, float *losses, float *probs)
{
    PICK_F32(ce_fwd_rows_avx512(r0, r1, cols, x, targets, losses, probs),
             ce_fwd_rows_avx2(r0, r1, cols, x, targets, losses, probs),
             ce_fwd_rows_f32(r0, r1, cols, x, targets, losses, probs));
}
#define softmax_fwd_pick_f64 softmax_fwd_rows_f64
#define log_softmax_fwd_pick_f64 log_softmax_fwd_rows_f64
#define log_softmax_bwd_pick_f64 log_softmax_bwd_rows_f64
#define softmax_bwd_pick_f64 softmax_bwd_rows_f64
#define ce_fwd_pick_f64 ce_fwd_rows_f64

/* ---- drivers: split rows over threads when the problem is large ---- */

/* Threads for a rows x cols problem: 1 when small, never more than there are rows. */
static int threads_for(int64_t rows, int64_t cols)
{
    if (rows <= 1 || rows * cols <= TR_PAR_MIN) return 1;
    int nt = tr_get_num_threads();
    return rows < nt ? (int)rows : nt;
}

/* Runs CALL(lo, hi) over [0, rows) in nt contiguous blocks, one per thread. Each row is computed
 * whole by one thread, so the block boundaries cannot change any result. */
#define FOR_ROW_BLOCKS(rows, cols, CALL)                                                     \
    do {                                                                                     \
        if ((rows) <= 0 || (cols) <= 0) break;                                               \
        int nt_ = threads_for((rows), (cols));                                               \
        if (nt_ <= 1) {                                                                      \
            int64_t lo = 0, hi = (rows);                                                     \
            CALL;                                                                            \
            break;                                                                           \
        }                                                                                    \
        int64_t per_ = ((rows) + nt_ - 1) / nt_;                                             \
        _Pragma("omp parallel for num_threads(nt_) schedule(static)")                        \
        for (int t_ = 0; t_ < nt_; ++t_) {                                                   \
            int64_t lo = (int64_t)t_ * per_;                                                 \
            int64_t hi = lo + per_ < (rows) ? lo + per_ : (rows);                            \
            if (lo < hi) CALL;                                                               \
        }                                                                                    \
    } while (0)

#define DEFINE_DRIVERS(T, SUF)                                                               \
    void tr_softmax_forward_##SUF(int64_t rows, int64_t cols, const T *x, T *out)            \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, softmax_fwd_pick_##SUF(lo, hi, cols, x, out));            \
    }                                                                                        \
    void tr_log_softmax_forward_##SUF(int64_t rows, int64_t cols, const T *x, T *out)        \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, log_softmax_fwd_pick_##SUF(lo, hi, cols, x, out));        \
    }                                                                                        \
    void tr_softmax_backward_##SUF(int64_t rows, int64_t cols, const T *y, const T *grad,    \
                                   T *out)                                                   \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, softmax_bwd_pick_##SUF(lo, hi, cols, y, grad, out));      \
    }                                                                                        \
    void tr_log_softmax_backward_##SUF(int64_t rows, int64_t cols, const T *y, const T *grad, \
                                       T *out)                                               \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, log_softmax_bwd_pick_##SUF(lo, hi, cols, y, grad, out));  \
    }                                                                                        \
    void tr_cross_entropy_forward_##SUF(int64_t rows, int64_t cols, const T *logits,         \
                                        const int64_t *targets, T *losses, T *probs)         \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols,                                                           \
                       ce_fwd_pick_##SUF(lo, hi, cols, logits, targets, losses, probs));     \
    }                                                                                        \
    void tr_cross_entropy_backward_##SUF(int64_t rows, int64_t cols, const T *probs,         \
                                         const int64_t *targets, const T *grad, T *out)      \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, ce_bwd_rows_##SUF(lo, hi, cols, probs, targets, grad, out)); \
    }

DEFINE_DRIVERS(float, f32)
DEFINE_DRIVERS(double, f64)
