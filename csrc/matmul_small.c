/* matmul_small.c: C = op(A) @ op(B) (or C += ...) for small problems, float32 and float64 (see
 * matmul_small.h; tr_matmul_f32/_f64 in matmul.c call it first).
 *
 * Why a separate path: the packed path of matmul.c copies blocks of A and B into panels before
 * it multiplies. For large problems that copy is repaid many times over; for a 32x32 product it
 * costs as much as the product itself. Here nothing is copied (except op(B) when B is stored
 * transposed, see below):
 *  - Register tiles read A and B where they are. An MR x NR tile of C (NR = NV vectors) stays in
 *    vector registers for the whole K loop; each k loads NV vectors of row k of op(B) and
 *    broadcasts MR elements of column k of op(A), one fused multiply-add per accumulator.
 *    Stored transposed (trans_a), op(A)'s column k is contiguous; stored as is, it is MR reads
 *    one row of A apart. Either way the flag is a compile-time constant of the tile.
 *  - Edges: the last vector of a row of the tile is loaded and stored through a lane mask, so any
 *    N works without reading or writing outside the matrices. Rows are split into nearly equal
 *    tiles of at most MRMAX (which depends on NV: the accumulators must fit in the registers),
 *    and every height from 1 to MRMAX has its own compiled tile.
 *  - trans_b: op(B)'s row k would be a column of the stored B, so each column panel of op(B) is
 *    first transposed into a scratch buffer (K x panel width, on the stack when small, hot in
 *    cache while the row tiles use it); its cost is about 1/M of the product's.
 *  - Levels: AVX-512F tiles (32 zmm registers: up to 24 accumulators of 16 floats / 8 doubles,
 *    NR up to 64 / 32), AVX2 + FMA tiles (16 ymm: 12 accumulators, NR up to 16 / 8) and a
 *    portable loop, chosen once at run time with __builtin_cpu_supports (the library is built
 *    without -march flags). TINYGRAD_REP_MM_SIMD=avx2|default caps the level, so the tests
 *    can run every path on one machine.
 *  - Order of operations: every element of C is one chain s = 0; s = fma(a_k, b_k, s) for
 *    k = 0..K-1, then C = s or C = C + s. The chain does not depend on the tile, the row split
 *    or the thread, and is the same in the AVX-512 and AVX2 tiles (the portable loop, compiled
 *    without FMA, rounds each product first). So results do not depend on the thread count.
 *  - Threads: only problems with enough work (as matmul.c's rule) use several; a batch is split
 *    by whole matrices, a single matrix by rows (each thread transposes the panels it needs).
 */
#include "matmul_small.h"
#include "tinygrad_rep.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_SMALL_X86 1
#include <immintrin.h>
#include "transpose_avx.h"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* The largest problems this path takes (larger ones go to the packed path): M*N*K up to 2^26
 * (256 x 1024 x 256) and C of up to 2^18 elements. Measured against the packed path (AMD Zen 4,
 * one thread), this path is 2-5x faster at 16^3-64^3, 1.0-1.2x at 128^3-256^3 and the MLP layer
 * shapes (forward and both backward products), and within 10% at the worst shapes tried (float64,
 * trans_b, M = 16-64 with K*N large); beyond the limits, e.g. a large C in many column panels
 * (1024 x 64 x 1024), the packed path's row-wise writes of C win. */
#ifndef TR_MM_SMALL_MAX
#define TR_MM_SMALL_MAX (67108864.0)
#endif
#ifndef TR_MM_SMALL_MAX_C
#define TR_MM_SMALL_MAX_C (262144.0)
#endif
/* Problems (summed over the batch) with M*N*K below this stay on one thread (as matmul.c). */
#ifndef TR_MM_SMALL_PAR_MIN
#define TR_MM_SMALL_PAR_MIN (2097152.0)
#endif
/* Scratch for the transposed B up to this size lives on the stack. */
#define TR_SMALL_STACK_BYTES 16384

/* Rows of tile t of T nearly equal tiles over h rows start at h*t/T (heights differ by <= 1). */
static inline int64_t split_at(int64_t h, int64_t t, int64_t T) { return h * t / T; }

/* ------------------------------------------------------------------------------------------
 * The register tile, written once for every (level, element type) through these macros.
 * TILE(MR, NV, TA, ...): C[0:MR, 0:(NV-1)*VL + lanes of `last`] (= or +=) op(A) tile times
 * op(B) panel. a points at op(A)[i0, 0] (lda: the stored row length); b at op(B)[0, j0], rows
 * ldb apart. MR, NV and TA are constants at every call (the dispatcher's cases), so the loops
 * unroll completely and the accumulators live in registers.
 * ------------------------------------------------------------------------------------------ */
#define TR_MAXMR 16
#define TR_MAXNV 4

#define DEFINE_TILE(NAME, ATTR, T, VT, MT, VL, ZERO, LOADU, MLOAD, SET1, FMA, ADD, STOREU, MSTORE) \
ATTR static inline __attribute__((always_inline)) void                                         \
NAME(const int MR, const int NV, const int TA, const int FULL, int64_t K, const T *restrict a, \
     int64_t lda, const T *restrict b, int64_t ldb, T *restrict c, int64_t ldc, MT last, int acc) \
{                                                                                              \
    VT s[TR_MAXMR][TR_MAXNV];                                                                  \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r)                                      \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) s[r][v] = ZERO;                   \
    for (int64_t k = 0; k < K; ++k) {                                                          \
        VT bv[TR_MAXNV];                                                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v + 1 < NV; ++v) bv[v] = LOADU(b + v * VL);    \
        bv[NV - 1] = FULL ? LOADU(b + (NV - 1) * VL) : MLOAD(last, b + (NV - 1) * VL);         \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) {                                \
            const VT ar = SET1(TA ? a[r] : a[r * lda]);                                        \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v)                               \
                s[r][v] = FMA(ar, bv[v], s[r][v]);                                             \
        }                                                                                      \
        a += TA ? lda : 1;                                                                     \
        b += ldb;                                                                              \
    }                                                                                          \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) {                                    \
        T *cr = c + r * ldc;                                                                   \
        _Pragma("GCC unroll 4") for (int v = 0; v + 1 < NV; ++v)                               \
            STOREU(cr + v * VL, acc ? ADD(LOADU(cr + v * VL), s[r][v]) : s[r][v]);             \
        VT x = s[r][NV - 1];                                                                   \
        if (acc) x = ADD(FULL ? LOADU(cr + (NV - 1) * VL) : MLOAD(last, cr + (NV - 1) * VL), x); \
        if (FULL) STOREU(cr + (NV - 1) * VL, x);                                               \
        else MSTORE(cr + (NV - 1) * VL, last, x);                                              \
    }                                                                                          \
}

/* Dispatcher: one case per (NV, TA, MR) the level uses, and per FULL when the level has full
 * variants (AVX2: its masked loads cost more than plain ones). CASESn lists MR = 1..n. */
#define TR_MR_CASE(m, TILE, NV, TA, F) \
    case m: TILE(m, NV, TA, F, K, a, lda, b, ldb, c, ldc, last, acc); break;
#define TR_CASES0(TILE, NV, TA, F)
#define TR_CASES6(TILE, NV, TA, F) TR_MR_CASE(1, TILE, NV, TA, F) TR_MR_CASE(2, TILE, NV, TA, F)    \
    TR_MR_CASE(3, TILE, NV, TA, F) TR_MR_CASE(4, TILE, NV, TA, F) TR_MR_CASE(5, TILE, NV, TA, F)  \
    TR_MR_CASE(6, TILE, NV, TA, F)
#define TR_CASES8(TILE, NV, TA, F) TR_CASES6(TILE, NV, TA, F) TR_MR_CASE(7, TILE, NV, TA, F)       \
    TR_MR_CASE(8, TILE, NV, TA, F)
#define TR_CASES12(TILE, NV, TA, F) TR_CASES8(TILE, NV, TA, F) TR_MR_CASE(9, TILE, NV, TA, F)      \
    TR_MR_CASE(10, TILE, NV, TA, F) TR_MR_CASE(11, TILE, NV, TA, F) TR_MR_CASE(12, TILE, NV, TA, F)
#define TR_CASES16(TILE, NV, TA, F) TR_CASES12(TILE, NV, TA, F) TR_MR_CASE(13, TILE, NV, TA, F)    \
    TR_MR_CASE(14, TILE, NV, TA, F) TR_MR_CASE(15, TILE, NV, TA, F) TR_MR_CASE(16, TILE, NV, TA, F)

#define TR_DISPATCH_SWITCH(TILE, C1, C2, C3, C4, F)                                            \
    switch (nv * 2 + (ta != 0)) {                                                              \
    case 2: switch (mr) { C1(TILE, 1, 0, F) default: break; } break;                           \
    case 3: switch (mr) { C1(TILE, 1, 1, F) default: break; } break;                           \
    case 4: switch (mr) { C2(TILE, 2, 0, F) default: break; } break;                           \
    case 5: switch (mr) { C2(TILE, 2, 1, F) default: break; } break;                           \
    case 6: switch (mr) { C3(TILE, 3, 0, F) default: break; } break;                           \
    case 7: switch (mr) { C3(TILE, 3, 1, F) default: break; } break;                           \
    case 8: switch (mr) { C4(TILE, 4, 0, F) default: break; } break;                           \
    case 9: switch (mr) { C4(TILE, 4, 1, F) default: break; } break;                           \
    default: break;                                                                            \
    }

#define DEFINE_DISPATCH(NAME, ATTR, T, MT, TILE, C1, C2, C3, C4, HAS_FULL)                     \
ATTR static void NAME(int nv, int ta, int mr, int full, int64_t K, const T *a, int64_t lda,    \
                      const T *b, int64_t ldb, T *c, int64_t ldc, MT last, int acc)            \
{                                                                                              \
    if (HAS_FULL && full) {                                                                    \
        TR_DISPATCH_SWITCH(TILE, C1, C2, C3, C4, 1)                                            \
    } else {                                                                                   \
        TR_DISPATCH_SWITCH(TILE, C1, C2, C3, C4, 0)                                            \
    }                                                                                          \
}

/* Rows [i_lo, i_hi) of C, over all of N: panels of up to NVMAX vectors, each cut into nearly
 * equal row tiles of at most mrmax[nv] rows. op(B) is K x N with rows N apart, or with trans_b
 * B is N x K and each panel of op(B) is first transposed into bt (K x panel width). */
#define DEFINE_ROWS(NAME, ATTR, T, MT, VL, NVMAX, MRMAX, DISPATCH, MASK, TRANSPOSE)            \
ATTR static void NAME(int64_t M, int64_t N, int64_t K, const void *A_, int ta, const void *B_, \
                      int tb, void *C_, int acc, int64_t i_lo, int64_t i_hi, void *bt_)        \
{                                                                                              \
    const T *A = A_, *B = B_;                                                                  \
    T *C = C_, *bt = bt_;                                                                      \
    const int64_t h = i_hi - i_lo;                                                             \
    for (int64_t j0 = 0; j0 < N; j0 += NVMAX * VL) {                                           \
        const int64_t w = N - j0 < NVMAX * VL ? N - j0 : NVMAX * VL;                           \
        const int nv = (int)((w + VL - 1) / VL);                                               \
        const MT last = MASK((int)(w - (int64_t)(nv - 1) * VL));                               \
        const int64_t tiles = (h + MRMAX[nv] - 1) / MRMAX[nv];                                 \
        const T *bp = B + j0;                                                                  \
        int64_t ldb = N;                                                                       \
        if (tb) {                                                                              \
            TRANSPOSE(w, K, B + j0 * K, bt);                                                   \
            bp = bt;                                                                           \
            ldb = w;                                                                           \
        }                                                                                      \
        for (int64_t t = 0; t < tiles; ++t) {                                                  \
            const int64_t i0 = i_lo + split_at(h, t, tiles), i1 = i_lo + split_at(h, t + 1, tiles); \
            DISPATCH(nv, ta, (int)(i1 - i0), w % VL == 0, K, ta ? A + i0 : A + i0 * K,         \
                     ta ? M : K, bp, ldb, C + i0 * N + j0, N, last, acc);                      \
        }                                                                                      \
    }                                                                                          \
}

/* ------------------------------------------------------------------------------------------
 * Portable: the same chain per element (sequential k), panels of 64 columns, each row's
 * accumulators in a local array the compiler vectorizes.
 * ------------------------------------------------------------------------------------------ */
#define TR_PANEL_MAX 64   /* the widest panel of any level (AVX-512 float32: 4 x 16) */

/* Bt (K x w, rows w apart) = the transpose of w rows of B (each K long), in 8 x 8 blocks. */
#define DEFINE_TRANSPOSE(NAME, T)                                                              \
static void NAME(int64_t w, int64_t K, const T *B, T *Bt)                                      \
{                                                                                              \
    for (int64_t j0 = 0; j0 < w; j0 += 8)                                                      \
        for (int64_t k0 = 0; k0 < K; k0 += 8) {                                                \
            const int64_t j1 = j0 + 8 < w ? j0 + 8 : w, k1 = k0 + 8 < K ? k0 + 8 : K;          \
            for (int64_t j = j0; j < j1; ++j)                                                  \
                for (int64_t k = k0; k < k1; ++k) Bt[k * w + j] = B[j * K + k];                \
        }                                                                                      \
}
DEFINE_TRANSPOSE(transpose_f32_portable, float)
DEFINE_TRANSPOSE(transpose_f64_portable, double)

#define DEFINE_PORTABLE(NAME, T, TRANSPOSE)                                                    \
static void NAME(int64_t M, int64_t N, int64_t K, const void *A_, int ta, const void *B_,      \
                 int tb, void *C_, int acc, int64_t i_lo, int64_t i_hi, void *bt_)             \
{                                                                                              \
    const T *A = A_, *B = B_;                                                                  \
    T *C = C_, *bt = bt_;                                                                      \
    T s[TR_PANEL_MAX];                                                                         \
    for (int64_t j0 = 0; j0 < N; j0 += TR_PANEL_MAX) {                                         \
        const int64_t w = N - j0 < TR_PANEL_MAX ? N - j0 : TR_PANEL_MAX;                       \
        const T *bp = B + j0;                                                                  \
        int64_t ldb = N;                                                                       \
        if (tb) {                                                                              \
            TRANSPOSE(w, K, B + j0 * K, bt);                                                   \
            bp = bt;                                                                           \
            ldb = w;                                                                           \
        }                                                                                      \
        for (int64_t i = i_lo; i < i_hi; ++i) {                                                \
            for (int64_t j = 0; j < w; ++j) s[j] = 0;                                          \
            for (int64_t k = 0; k < K; ++k) {                                                  \
                const T aik = ta ? A[k * M + i] : A[i * K + k];                                \
                const T *bk = bp + k * ldb;                                                    \
                for (int64_t j = 0; j < w; ++j) s[j] += aik * bk[j];                           \
            }                                                                                  \
            T *ci = C + i * N + j0;                                                            \
            if (acc) for (int64_t j = 0; j < w; ++j) ci[j] = ci[j] + s[j];                     \
            else     for (int64_t j = 0; j < w; ++j) ci[j] = s[j];                             \
        }                                                                                      \
    }                                                                                          \
}
DEFINE_PORTABLE(rows_f32_portable, float, transpose_f32_portable)
DEFINE_PORTABLE(rows_f64_portable, double, transpose_f64_portable)

#ifdef TR_SMALL_X86
/* ------------------------------------------------------------------------------------------
 * x86 tiles.
 * ------------------------------------------------------------------------------------------ */
#define TR_AVX512 __attribute__((target("avx512f")))
#define TR_AVX2 __attribute__((target("avx2,fma")))

/* ---- transposes of a panel of B (see DEFINE_TRANSPOSE) with AVX: 8 x 8 floats, 4 x 4 doubles
 * per block ---- */
__attribute__((target("avx"))) static void transpose_f32_avx(int64_t N, int64_t K, const float *B, float *Bt)
{
    int64_t j = 0;
    for (; j + 8 <= N; j += 8) {
        const float *s = B + j * K;
        int64_t k = 0;
        for (; k + 8 <= K; k += 8)
            tr_transpose8x8_f32_avx(s + k, K, Bt + k * N + j, N);
        for (; k < K; ++k)
            for (int q = 0; q < 8; ++q) Bt[k * N + j + q] = s[q * K + k];
    }
    for (; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) Bt[k * N + j] = B[j * K + k];
}

__attribute__((target("avx"))) static void transpose_f64_avx(int64_t N, int64_t K, const double *B, double *Bt)
{
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {
        const double *s = B + j * K;
        int64_t k = 0;
        for (; k + 4 <= K; k += 4)
            tr_transpose4x4_f64_avx(s + k, K, Bt + k * N + j, N);
        for (; k < K; ++k)
            for (int q = 0; q < 4; ++q) Bt[k * N + j + q] = s[q * K + k];
    }
    for (; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) Bt[k * N + j] = B[j * K + k];
}
/* ---- AVX-512F: masks are k-registers, the last vector's lanes ---- */
#define S512_MLOAD(m, p) _mm512_maskz_loadu_ps((m), (p))
#define S512_MSTORE(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define D512_MLOAD(m, p) _mm512_maskz_loadu_pd((m), (p))
#define D512_MSTORE(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
DEFINE_TILE(tile_f32_avx512, TR_AVX512, float, __m512, __mmask16, 16, _mm512_setzero_ps(),
            _mm512_loadu_ps, S512_MLOAD, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
            _mm512_storeu_ps, S512_MSTORE)
DEFINE_TILE(tile_f64_avx512, TR_AVX512, double, __m512d, __mmask8, 8, _mm512_setzero_pd(),
            _mm512_loadu_pd, D512_MLOAD, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd,
            _mm512_storeu_pd, D512_MSTORE)
/* 24 accumulators at most (of 32 registers), and 16 rows when a tile is one vector wide. */
static const int mrmax_avx512[5] = {0, 16, 12, 8, 6};
DEFINE_DISPATCH(dispatch_f32_avx512, TR_AVX512, float, __mmask16, tile_f32_avx512,
                TR_CASES16, TR_CASES12, TR_CASES8, TR_CASES6, 0)
DEFINE_DISPATCH(dispatch_f64_avx512, TR_AVX512, double, __mmask8, tile_f64_avx512,
                TR_CASES16, TR_CASES12, TR_CASES8, TR_CASES6, 0)
static inline __mmask16 mask16(int n) { return (__mmask16)((1u << n) - 1u); }   /* 1 <= n <= 16 */
static inline __mmask8 mask8(int n) { return (__mmask8)((1u << n) - 1u); }      /* 1 <= n <= 8 */
DEFINE_ROWS(rows_f32_avx512, TR_AVX512, float, __mmask16, 16, 4, mrmax_avx512, dispatch_f32_avx512, mask16, transpose_f32_avx)
DEFINE_ROWS(rows_f64_avx512, TR_AVX512, double, __mmask8, 8, 4, mrmax_avx512, dispatch_f64_avx512, mask8, transpose_f64_avx)

/* ---- AVX2 + FMA: masks are vectors of all-ones / zero lanes ---- */
#define S256_MLOAD(m, p) _mm256_maskload_ps((p), (m))
#define S256_MSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define D256_MLOAD(m, p) _mm256_maskload_pd((p), (m))
#define D256_MSTORE(p, m, v) _mm256_maskstore_pd((p), (m), (v))
DEFINE_TILE(tile_f32_avx2, TR_AVX2, float, __m256, __m256i, 8, _mm256_setzero_ps(),
            _mm256_loadu_ps, S256_MLOAD, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
            _mm256_storeu_ps, S256_MSTORE)
DEFINE_TILE(tile_f64_avx2, TR_AVX2, double, __m256d, __m256i, 4, _mm256_setzero_pd(),
            _mm256_loadu_pd, D256_MLOAD, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd,
            _mm256_storeu_pd, D256_MSTORE)
/* 12 accumulators at most (of 16 registers). */
static const int mrmax_avx2[3] = {0, 12, 6};
DEFINE_DISPATCH(dispatch_f32_avx2, TR_AVX2, float, __m256i, tile_f32_avx2,
                TR_CASES12, TR_CASES6, TR_CASES0, TR_CASES0, 1)
DEFINE_DISPATCH(dispatch_f64_avx2, TR_AVX2, double, __m256i, tile_f64_avx2,
                TR_CASES12, TR_CASES6, TR_CASES0, TR_CASES0, 1)
static const int32_t lanes32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t lanes64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
TR_AVX2 static inline __m256i vmask8(int n)   /* first n of 8 int32 lanes, 1 <= n <= 8 */
{
    return _mm256_loadu_si256((const __m256i *)(lanes32 + 8 - n));
}
TR_AVX2 static inline __m256i vmask4(int n)   /* first n of 4 int64 lanes, 1 <= n <= 4 */
{
    return _mm256_loadu_si256((const __m256i *)(lanes64 + 4 - n));
}
DEFINE_ROWS(rows_f32_avx2, TR_AVX2, float, __m256i, 8, 2, mrmax_avx2, dispatch_f32_avx2, vmask8, transpose_f32_avx)
DEFINE_ROWS(rows_f64_avx2, TR_AVX2, double, __m256i, 4, 2, mrmax_avx2, dispatch_f64_avx2, vmask4, transpose_f64_avx)

#endif /* TR_SMALL_X86 */

/* ------------------------------------------------------------------------------------------
 * Level choice and the driver.
 * ------------------------------------------------------------------------------------------ */

/* 2 = AVX-512F tiles, 1 = AVX2 + FMA tiles, 0 = portable; the highest the CPU has, capped by
 * TINYGRAD_REP_MM_SIMD ("avx2" or "default"; other values are ignored). Decided once;
 * racing first calls store the same value. */
static int small_level(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    v = 0;
#ifdef TR_SMALL_X86
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") ? 2
        : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#endif
    const char *cap = getenv("TINYGRAD_REP_MM_SIMD");
    if (cap != NULL && strcmp(cap, "avx2") == 0 && v > 1) v = 1;
    if (cap != NULL && strcmp(cap, "default") == 0) v = 0;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* Rows [i_lo, i_hi) of one matrix (see DEFINE_ROWS); bt: K x TR_PANEL_MAX scratch when tb. */
typedef void (*rows_fn)(int64_t M, int64_t N, int64_t K, const void *A, int ta, const void *B,
                        int tb, void *C, int acc, int64_t i_lo, int64_t i_hi, void *bt);

static rows_fn pick(int is_f64)
{
#ifdef TR_SMALL_X86
    switch (small_level()) {
    case 2: return is_f64 ? rows_f64_avx512 : rows_f32_avx512;
    case 1: return is_f64 ? rows_f64_avx2 : rows_f32_avx2;
    default: break;
    }
#endif
    return is_f64 ? rows_f64_portable : rows_f32_portable;
}

static int small(int is_f64, int64_t batch, int64_t M, int64_t N, int64_t K, const void *A_, int ta,
                 const void *B_, int tb, void *C_, int acc)
{
    /* Matrix-vector products and empty problems stay with matmul.c (it has loops for them). */
    if (batch <= 0 || M < 2 || N < 2 || K < 1) return 0;
    const double work = (double)M * (double)N * (double)K;
    if (work > TR_MM_SMALL_MAX || (double)M * (double)N > TR_MM_SMALL_MAX_C) return 0;

    const size_t es = is_f64 ? sizeof(double) : sizeof(float);
    const char *A = A_, *B = B_;
    char *C = C_;
    const size_t sA = (size_t)(M * K) * es, sB = (size_t)(K * N) * es, sC = (size_t)(M * N) * es;
    const rows_fn rows = pick(is_f64);

    int nt = tr_get_num_threads();
    if (nt < 1 || work * (double)batch < TR_MM_SMALL_PAR_MIN) nt = 1;
#ifndef _OPENMP
    nt = 1;
#endif
    const int by_batch = nt > 1 && batch >= nt;
    if (nt > 1 && !by_batch && M < 2 * nt) nt = 1;

    /* Scratch for transposed panels of B, one per thread. Allocated before any output is
     * written, so running out of memory can still hand the problem back. */
    _Alignas(64) char stack_buf[TR_SMALL_STACK_BYTES];
    char *scratch = NULL, *heap = NULL;
    const size_t per = tb ? ((size_t)K * TR_PANEL_MAX * es + 63) & ~(size_t)63 : 0;
    const size_t need = per * (size_t)nt;
    if (need > 0) {
        if (need <= sizeof stack_buf) {
            scratch = stack_buf;
        } else {
            heap = malloc(need);
            if (heap == NULL) return 0;
            scratch = heap;
        }
    }

    if (nt == 1) {
        for (int64_t b = 0; b < batch; ++b)
            rows(M, N, K, A + b * sA, ta, B + b * sB, tb, C + b * sC, acc, 0, M, scratch);
    }
#ifdef _OPENMP
    else {
#pragma omp parallel num_threads(nt)
        {
            const int tid = omp_get_thread_num(), n = omp_get_num_threads();
            char *bt = scratch ? scratch + per * (size_t)tid : NULL;
            if (by_batch) {   /* whole matrices */
                for (int64_t b = batch * tid / n; b < batch * (tid + 1) / n; ++b)
                    rows(M, N, K, A + b * sA, ta, B + b * sB, tb, C + b * sC, acc, 0, M, bt);
            } else {          /* a share of the rows of every matrix */
                for (int64_t b = 0; b < batch; ++b)
                    rows(M, N, K, A + b * sA, ta, B + b * sB, tb, C + b * sC, acc, M * tid / n,
                         M * (tid + 1) / n, bt);
            }
        }
    }
#endif
    free(heap);
    return 1;
}

int tr_matmul_small_f32(int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, int trans_a,
                        const float *B, int trans_b, float *C, int accumulate)
{
    return small(0, batch, M, N, K, A, trans_a, B, trans_b, C, accumulate);
}

int tr_matmul_small_f64(int64_t batch, int64_t M, int64_t N, int64_t K, const double *A, int trans_a,
                        const double *B, int trans_b, double *C, int accumulate)
{
    return small(1, batch, M, N, K, A, trans_a, B, trans_b, C, accumulate);
}
