/* softmax_x86.c: the float32 softmax-family row kernels in x86 intrinsics (AVX-512F, and AVX2 +
 * FMA), the rows softmax.c's drivers run on CPUs that have them (chosen at run time by
 * row_level(); see softmax_rows.h). The portable rows, the float64 rows and the drivers live in
 * softmax.c. Off x86-64 GCC/Clang this file compiles to nothing.
 */
#include "softmax_rows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- float32 row kernels in AVX-512 intrinsics -----------------------------------------
 * Why: GCC vectorizes tr_expf() (softmax.c), but in its AVX-512 clone it neither fuses the multiply-
 * adds (the optimize("fp-contract=fast") attribute is dropped under target_clones) nor keeps the
 * special-value selects cheap: 36 instructions per 16 floats, and the 256x1000 softmax spent most
 * of its time there. Written out with intrinsics it is 14: the polynomial is a chain of FMAs,
 * n = round(x*log2e) is one vrndscaleps, and 2^n * p is one vscalefps, which also rounds
 * subnormal results once and saturates to 0 / +inf, so only the two clamps below remain for the
 * special values. The polynomial and the Cody-Waite split are tr_expf's (same accuracy: within
 * 2 ulp, checked by tests/test_kernels.py). Chosen at run time (never -march=native): on a CPU
 * without AVX-512 the AVX2 + FMA versions further down run instead, and without those the
 * target_clones kernels of softmax.c (see row_level()).
 *
 * Tails are handled with masked loads and stores, which touch no memory outside the mask, so a
 * row is read and written exactly within [ptr, ptr + cols). Sums keep two vector accumulators
 * and fold them in a fixed order, so a row's result depends only on the row (not on threads). */
#ifdef TR_AVX512_ROWS
#include <immintrin.h>

#define TR_AVX512 __attribute__((target("avx512f")))

/* The level the float32 row kernels run at, decided once: 2 = the AVX-512 intrinsics below,
 * 1 = the AVX2 + FMA intrinsics further down, 0 = the target_clones loops of softmax.c. It is the
 * highest the CPU has, capped by TINYGRAD_REP_ROW_SIMD ("avx2" or "default"; any other value
 * is ignored), which exists so the tests can run every path on one machine. */
int row_level(void)
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

TR_AVX512 void softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
                                              const float *x, float *out)
{
    float m;
    for (int64_t r = r0; r < r1; ++r) softmax_row16(cols, x + r * cols, out + r * cols, &m);
}

/* out = (x - max) - log(sum(exp(x - max))): exp is summed in registers, never stored */
TR_AVX512 void log_softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
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
TR_AVX512 void log_softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
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
TR_AVX512 void softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols,
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

TR_AVX512 void ce_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x,
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

TR_AVX2 void softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x,
                                          float *out)
{
    float m;
    for (int64_t r = r0; r < r1; ++r) softmax_row8(cols, x + r * cols, out + r * cols, &m);
}

TR_AVX2 void log_softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols,
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

TR_AVX2 void log_softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols,
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

TR_AVX2 void softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y,
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

TR_AVX2 void ce_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x,
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
