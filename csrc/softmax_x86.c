/* softmax_x86.c: the float32 softmax-family row kernels in x86 intrinsics (AVX-512F, and AVX2 +
 * FMA), the rows softmax.c's drivers run on CPUs that have them (chosen at run time by
 * row_level(); see softmax_rows.h). The portable rows, the float64 rows and the drivers live in
 * softmax.c. Off x86-64 GCC/Clang this file compiles to nothing.
 *
 * Large arrays (the "stream" argument, see stream_stores()): a row of 4096 floats is 16 KB, so
 * it stays in L1/L2 between the passes over it (max, sum, write) and costs one read from memory
 * and one write. Two things make those reach the memory bandwidth: the output is written with
 * streaming stores (STORE_ROW16 in softmax_rows.h; a regular store would first read each line of
 * the output from memory), and while a row is computed the next row of the inputs is prefetched
 * into L2, so the memory keeps working during the arithmetic instead of waiting for the next
 * row's first pass. Neither changes a value.
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

/* Outputs of at least this many bytes are written with streaming stores. A regular store reads
 * the line from memory before writing it and keeps it in the cache: worth it while input and
 * output fit in the caches (the next op reads the output from there), a third more memory
 * traffic once they do not. Measured on a Zen 4 core (1 MB L2, 32 MB L3), streaming stores win
 * from about 8 MB of output on, and cost up to half the speed below 4 MB. */
#define TR_STREAM_MIN_BYTES ((int64_t)8 << 20)

/* Whether an output of `bytes` bytes is streamed: at least TR_STREAM_MIN_BYTES, or the value of
 * TINYGRAD_REP_STREAM_BYTES (a byte count; the tests use it to run the streaming paths on small
 * arrays; anything but a non-negative integer is ignored), read once. */
int stream_stores(int64_t bytes)
{
    static int64_t cached = -1;
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = TR_STREAM_MIN_BYTES;
        const char *env = getenv("TINYGRAD_REP_STREAM_BYTES");
        if (env != NULL && *env >= '0' && *env <= '9') {
            char *end;
            long long parsed = strtoll(env, &end, 10);
            if (*end == '\0' && parsed >= 0) v = (int64_t)parsed;
        }
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return bytes >= v;
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

/* ---- streaming a finished row out while the next one is computed ----
 * The forward kernels compute row r's exps while they write row r - 1's output: the streaming
 * stores of a whole row issued at once would stall on the few write-combining buffers, while
 * spread over the exp loop they drain during the arithmetic. The row written is
 * wy[j] = wsrc[j] * wa (W_SCALE, softmax) or (wsrc[j] - wa) - wb (W_SHIFT, log-softmax): exactly
 * the roundings of the non-streaming kernels. The floats before wy's first whole 64-byte line
 * and after its last get masked ordinary stores (nothing outside the row is touched). */
enum { W_SCALE = 1, W_SHIFT = 2 };

TR_AVX512 static inline __m512 writer_value(__m512 v, __m512 a, __m512 b, int mode)
{
    return mode == W_SCALE ? _mm512_mul_ps(v, a) : _mm512_sub_ps(_mm512_sub_ps(v, a), b);
}

/* sum(exp(x - m)) over a row, in a fixed order; also stores exp(x - m) to y unless y is NULL
 * (callers pass a constant, so the inlined copy has no test in its loop). Unless pf is NULL,
 * the n floats at pf (the next row) are prefetched into L2 meanwhile, and unless wy is NULL,
 * the n floats of wy are written (see above) meanwhile: this pass is the arithmetic, during
 * which the memory would otherwise sit idle. */
TR_AVX512 static inline __attribute__((always_inline)) float
exp_sum_row16(int64_t n, const float *x, float m, float *y, const char *pf, float *wy, const float *wsrc,
              __m512 wa, __m512 wb, int mode)
{
    const __m512 mv = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t p = 0;   /* the next float of wy to write */
    int64_t lag = 0; /* the writer starts at j = lag */
    if (wy) {
        int64_t h = (int64_t)((0 - (uintptr_t)wy) & 63) / 4;
        p = h > n ? n : h;
        if (p > 0) {
            __mmask16 k = tail_mask(p);
            _mm512_mask_storeu_ps(wy, k, writer_value(_mm512_maskz_loadu_ps(k, wsrc), wa, wb, mode));
        }
        /* Keep the stores 2 KB away from the loads of x modulo 4 KB: a load whose address
         * matches a pending store's in its low 12 bits waits for it (4K aliasing), and two
         * arrays of the same alignment with rows of 4096 floats would match on every step. */
        uintptr_t d = ((uintptr_t)(wy + p) - (uintptr_t)x) & 4095;
        lag = (int64_t)(((d + 2048) & 4095) / 4) & ~(int64_t)31;
    }
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        if (pf) {
            _mm_prefetch(pf + 4 * j, _MM_HINT_T1);
            _mm_prefetch(pf + 4 * j + 64, _MM_HINT_T1);
        }
        if (wy && j >= lag && p + 32 <= n) {
            _mm512_stream_ps(wy + p, writer_value(_mm512_loadu_ps(wsrc + p), wa, wb, mode));
            _mm512_stream_ps(wy + p + 16, writer_value(_mm512_loadu_ps(wsrc + p + 16), wa, wb, mode));
            p += 32;
        }
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
        if (pf) _mm_prefetch(pf + 4 * j, _MM_HINT_T1);
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
    if (wy) {
        for (; p + 16 <= n; p += 16)
            _mm512_stream_ps(wy + p, writer_value(_mm512_loadu_ps(wsrc + p), wa, wb, mode));
        if (p < n) {
            __mmask16 k = tail_mask(n - p);
            _mm512_mask_storeu_ps(wy + p, k, writer_value(_mm512_maskz_loadu_ps(k, wsrc + p), wa, wb, mode));
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* softmax of one row into y; returns the sum of exp(x - max) and stores the max. exp(x - max)
 * is kept in y, then scaled there. */
TR_AVX512 static float softmax_row16(int64_t n, const float *x, float *y, float *max_out)
{
    float m = max_row16(n, x);
    float s = exp_sum_row16(n, x, m, y, NULL, NULL, NULL, _mm512_setzero_ps(), _mm512_setzero_ps(), 0);
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    STORE_ROW16(n, y, 0, NULL, NULL, _mm512_mul_ps(LOAD16(y), inv));
    *max_out = m;
    return s;
}

/* Rows up to this many floats are streamed through scratch rows (see softmax_fwd_rows_avx512);
 * two of 64 KB stay in L2 and come from malloc's heap, not from fresh pages. */
#define TR_SCRATCH_MAX 16384

/* The next row of an input after row r of a block [.., r1), to prefetch while streaming; NULL
 * at the end of the block, and without streaming (arrays that fit in the caches are there
 * already, and the prefetches cost about 5% at 256x1000). */
#define NEXT_ROW(p, r, r1, cols) \
    (stream && (r) + 1 < (r1) ? (const char *)((p) + ((r) + 1) * (cols)) : NULL)

/* Streaming: exp(x - max) of row r goes to a scratch row that stays in L1/L2 while row r - 1 is
 * scaled from the other scratch row and streamed to out (keeping exp in out would read out's
 * lines into the cache first). Without stream, or for rows too long for scratch rows, or if
 * malloc fails, it is kept in out as softmax_row16 does; the values are the same either way. */
TR_AVX512 void softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out,
                                       int stream)
{
    float *scratch = stream && cols <= TR_SCRATCH_MAX ? aligned_alloc(64, 2 * (size_t)((cols + 15) & ~15) * sizeof(float)) : NULL;
    if (scratch == NULL) {
        float m;
        for (int64_t r = r0; r < r1; ++r) softmax_row16(cols, x + r * cols, out + r * cols, &m);
        return;
    }
    float *cur = scratch, *prev = scratch + cols;
    const __m512 zero = _mm512_setzero_ps();
    __m512 inv_prev = zero;
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m = max_row16(cols, xr);
        float s = exp_sum_row16(cols, xr, m, cur, NEXT_ROW(x, r, r1, cols), r > r0 ? out + (r - 1) * cols : NULL,
                                prev, inv_prev, zero, W_SCALE);
        inv_prev = _mm512_set1_ps(1.0f / s);
        float *t = cur;
        cur = prev;
        prev = t;
    }
    /* the last row: nothing left to compute beside it */
    if (r1 > r0) STORE_ROW16(cols, out + (r1 - 1) * cols, 1, NULL, NULL, _mm512_mul_ps(LOAD16(prev), inv_prev));
    _mm_sfence();
    free(scratch);
}

/* out = (x - max) - log(sum(exp(x - max))): exp is summed in registers, never stored. Streaming,
 * row r - 1 is written during row r's exp loop, as in softmax_fwd_rows_avx512. */
TR_AVX512 void log_softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out,
                                           int stream)
{
    if (!stream) {
        for (int64_t r = r0; r < r1; ++r) {
            const float *xr = x + r * cols;
            float m = max_row16(cols, xr);
            const __m512 mv = _mm512_set1_ps(m);
            const __m512 lse = _mm512_set1_ps(
                logf(exp_sum_row16(cols, xr, m, NULL, NULL, NULL, NULL, mv, mv, 0)));
            STORE_ROW16(cols, out + r * cols, 0, NULL, NULL, _mm512_sub_ps(_mm512_sub_ps(LOAD16(xr), mv), lse));
        }
        return;
    }
    __m512 m_prev = _mm512_setzero_ps(), lse_prev = m_prev;
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m = max_row16(cols, xr);
        float lse = logf(exp_sum_row16(cols, xr, m, NULL, NEXT_ROW(x, r, r1, cols),
                                       r > r0 ? out + (r - 1) * cols : NULL, xr - cols, m_prev, lse_prev, W_SHIFT));
        m_prev = _mm512_set1_ps(m);
        lse_prev = _mm512_set1_ps(lse);
    }
    if (r1 > r0) {
        const float *xl = x + (r1 - 1) * cols;
        STORE_ROW16(cols, out + (r1 - 1) * cols, 1, NULL, NULL, _mm512_sub_ps(_mm512_sub_ps(LOAD16(xl), m_prev), lse_prev));
    }
    _mm_sfence();
}

/* The backward rows written by reduce_row16: out = y * (grad - d) (softmax) or
 * grad - exp(y) * d (log-softmax), the roundings of the non-streaming kernels. */
enum { W_SOFTMAX_BWD = 3, W_LOG_SOFTMAX_BWD = 4 };

TR_AVX512 static inline __m512 bwd_value(__m512 y, __m512 g, __m512 d, int mode)
{
    return mode == W_SOFTMAX_BWD ? _mm512_mul_ps(y, _mm512_sub_ps(g, d)) : _mm512_sub_ps(g, _mm512_mul_ps(exp16(y), d));
}

/* sum(g * y) over a row, or sum(g) when y is NULL, in a fixed order: two chains (one chain
 * waits on its own latency every 16 floats). Unless pa / pb are
 * NULL, the n floats there (the next rows) are prefetched meanwhile; unless wo is NULL, the
 * backward row wo = bwd_value(wy, wg, wd) is written meanwhile, with streaming stores, as
 * exp_sum_row16 writes the forward rows (its comment says why, and why the writer runs 2 KB
 * away from the loads modulo 4 KB). */
TR_AVX512 static inline __attribute__((always_inline)) float
reduce_row16(int64_t n, const float *g, const float *y, const char *pa, const char *pb, float *wo, const float *wy,
             const float *wg, __m512 wd, int mode)
{
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
    int64_t p = 0, lag = 0;
    if (wo) {
        int64_t h = (int64_t)((0 - (uintptr_t)wo) & 63) / 4;
        p = h > n ? n : h;
        if (p > 0) {
            __mmask16 k = tail_mask(p);
            _mm512_mask_storeu_ps(wo, k, bwd_value(_mm512_maskz_loadu_ps(k, wy), _mm512_maskz_loadu_ps(k, wg), wd, mode));
        }
        uintptr_t dist = ((uintptr_t)(wo + p) - (uintptr_t)g) & 4095;
        lag = (int64_t)(((dist + 2048) & 4095) / 4) & ~(int64_t)31;
    }
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        if (pa) {
            _mm_prefetch(pa + 4 * j, _MM_HINT_T1);
            _mm_prefetch(pa + 4 * j + 64, _MM_HINT_T1);
            _mm_prefetch(pb + 4 * j, _MM_HINT_T1);
            _mm_prefetch(pb + 4 * j + 64, _MM_HINT_T1);
        }
        if (wo && j >= lag && p + 32 <= n) {
            _mm512_stream_ps(wo + p, bwd_value(_mm512_loadu_ps(wy + p), _mm512_loadu_ps(wg + p), wd, mode));
            _mm512_stream_ps(wo + p + 16, bwd_value(_mm512_loadu_ps(wy + p + 16), _mm512_loadu_ps(wg + p + 16), wd, mode));
            p += 32;
        }
        if (y) {
            d0 = _mm512_fmadd_ps(_mm512_loadu_ps(g + j), _mm512_loadu_ps(y + j), d0);
            d1 = _mm512_fmadd_ps(_mm512_loadu_ps(g + j + 16), _mm512_loadu_ps(y + j + 16), d1);
        } else {
            d0 = _mm512_add_ps(d0, _mm512_loadu_ps(g + j));
            d1 = _mm512_add_ps(d1, _mm512_loadu_ps(g + j + 16));
        }
    }
    for (; j + 16 <= n; j += 16)
        d0 = y ? _mm512_fmadd_ps(_mm512_loadu_ps(g + j), _mm512_loadu_ps(y + j), d0)
               : _mm512_add_ps(d0, _mm512_loadu_ps(g + j));
    if (j < n) {
        __mmask16 k = tail_mask(n - j);
        d1 = y ? _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, g + j), _mm512_maskz_loadu_ps(k, y + j), d1)
               : _mm512_add_ps(d1, _mm512_maskz_loadu_ps(k, g + j));
    }
    if (wo) {
        for (; p + 16 <= n; p += 16)
            _mm512_stream_ps(wo + p, bwd_value(_mm512_loadu_ps(wy + p), _mm512_loadu_ps(wg + p), wd, mode));
        if (p < n) {
            __mmask16 k = tail_mask(n - p);
            _mm512_mask_storeu_ps(wo + p, k, bwd_value(_mm512_maskz_loadu_ps(k, wy + p), _mm512_maskz_loadu_ps(k, wg + p),
                                                       wd, mode));
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
}

/* The backward rows [r0, r1): reduce_row16 over (y, g) rows (the dot product for softmax, the
 * sum of grad for log-softmax), then the row. Streaming, row r - 1 is written during row r's
 * reduction, and the next rows of y and grad are prefetched meanwhile. */
TR_AVX512 static inline __attribute__((always_inline)) void
bwd_rows16(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out, int stream, int mode)
{
    const __m512 zero = _mm512_setzero_ps();
    const int dot = mode == W_SOFTMAX_BWD;
    if (!stream) {
        for (int64_t r = r0; r < r1; ++r) {
            const float *yr = y + r * cols, *gr = g + r * cols;
            const __m512 d = _mm512_set1_ps(reduce_row16(cols, gr, dot ? yr : NULL, NULL, NULL, NULL, NULL, NULL, zero, mode));
            STORE_ROW16(cols, out + r * cols, 0, NULL, NULL, bwd_value(LOAD16(yr), LOAD16(gr), d, mode));
        }
        return;
    }
    __m512 d_prev = zero;
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        const char *pa = NEXT_ROW(y, r, r1, cols), *pb = NEXT_ROW(g, r, r1, cols);
        float d = r > r0 ? reduce_row16(cols, gr, dot ? yr : NULL, pa, pb, out + (r - 1) * cols, yr - cols, gr - cols,
                                        d_prev, mode)
                         : reduce_row16(cols, gr, dot ? yr : NULL, pa, pb, NULL, NULL, NULL, zero, mode);
        d_prev = _mm512_set1_ps(d);
    }
    if (r1 > r0) {
        const float *yl = y + (r1 - 1) * cols, *gl = g + (r1 - 1) * cols;
        STORE_ROW16(cols, out + (r1 - 1) * cols, 1, NULL, NULL, bwd_value(LOAD16(yl), LOAD16(gl), d_prev, mode));
    }
    _mm_sfence();
}

/* out = y * (grad - sum(grad * y)) */
TR_AVX512 void softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g,
                                       float *out, int stream)
{
    bwd_rows16(r0, r1, cols, y, g, out, stream, W_SOFTMAX_BWD);
}

/* out = grad - exp(y) * sum(grad), the product rounded before the subtraction as in the
 * reference */
TR_AVX512 void log_softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g,
                                           float *out, int stream)
{
    bwd_rows16(r0, r1, cols, y, g, out, stream, W_LOG_SOFTMAX_BWD);
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

#define tail_mask8 tr_tail_mask8 /* softmax_rows.h */

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

TR_AVX2 static inline float exp_sum_row8(int64_t n, const float *x, float m, float *y, const char *pf)
{
    const __m256 mv = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        if (pf) _mm_prefetch(pf + 4 * j, _MM_HINT_T1);
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
        if (pf) _mm_prefetch(pf + 4 * j, _MM_HINT_T1);
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

TR_AVX2 static float softmax_row8(int64_t n, const float *x, float *y, float *max_out, const char *pf)
{
    float m = max_row8(n, x);
    float s = exp_sum_row8(n, x, m, y, pf);
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    STORE_ROW8(n, y, 0, NULL, NULL, _mm256_mul_ps(LOAD8(y), inv));
    *max_out = m;
    return s;
}

TR_AVX2 void softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out, int stream)
{
    float *scratch = stream && cols <= TR_SCRATCH_MAX ? malloc((size_t)cols * sizeof(float)) : NULL;
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m;
        if (scratch == NULL) {
            softmax_row8(cols, xr, yr, &m, NULL);
            continue;
        }
        m = max_row8(cols, xr);
        const __m256 inv = _mm256_set1_ps(1.0f / exp_sum_row8(cols, xr, m, scratch, NEXT_ROW(x, r, r1, cols)));
        STORE_ROW8(cols, yr, 1, NULL, NULL, _mm256_mul_ps(LOAD8(scratch), inv));
    }
    if (scratch != NULL) {
        _mm_sfence();
        free(scratch);
    }
}

TR_AVX2 void log_softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out,
                                       int stream)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m = max_row8(cols, xr);
        const __m256 mv = _mm256_set1_ps(m);
        const __m256 lse = _mm256_set1_ps(logf(exp_sum_row8(cols, xr, m, NULL, NEXT_ROW(x, r, r1, cols))));
        STORE_ROW8(cols, out + r * cols, stream, NULL, NULL, _mm256_sub_ps(_mm256_sub_ps(LOAD8(xr), mv), lse));
    }
    if (stream) _mm_sfence();
}

TR_AVX2 void log_softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g,
                                       float *out, int stream)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        const __m256 s = _mm256_set1_ps(sum_row8(cols, gr));
        STORE_ROW8(cols, out + r * cols, stream, NEXT_ROW(y, r, r1, cols), NEXT_ROW(g, r, r1, cols),
                   _mm256_sub_ps(LOAD8(gr), _mm256_mul_ps(exp8(LOAD8(yr)), s)));
    }
    if (stream) _mm_sfence();
}

TR_AVX2 void softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g,
                                   float *out, int stream)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
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
        STORE_ROW8(cols, out + r * cols, stream, NEXT_ROW(y, r, r1, cols), NEXT_ROW(g, r, r1, cols),
                   _mm256_mul_ps(LOAD8(yr), _mm256_sub_ps(LOAD8(gr), d)));
    }
    if (stream) _mm_sfence();
}

TR_AVX2 void ce_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x,
                                     const int64_t *targets, float *losses, float *probs)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float m;
        float s = softmax_row8(cols, xr, probs + r * cols, &m, NULL);
        losses[r] = -((xr[targets[r]] - m) - logf(s));
    }
}
#endif /* AVX-512 and AVX2 row kernels */
