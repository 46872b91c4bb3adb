/* matmul.c: C = op(A) @ op(B) (or C += ...) for float32 and float64, see tinygrad_rep.h.
 *
 * Built the GotoBLAS/BLIS way, because a plain loop reaches under half of the FMA peak:
 *  - Cache blocking. K is cut into blocks of about KC and C's columns into work items whose
 *    packed B block (KC x width) fills up to 3/4 of L2. Micro-tiles go along rows of C: one
 *    packed A micro-panel (MR x KC) stays in L1 while the B block streams from L2, and C is
 *    written as a few sequential streams the hardware prefetcher follows. (Going down columns
 *    of C instead, BLIS style, measured slower here, up to several times for short K, where
 *    writing C is most of the cost.)
 *  - Packing. op(A) is copied once per slab (up to TR_MM_SLAB_BYTES of row tiles x K blocks)
 *    into MR-row panels, and each B block of a work item into NR-column panels, in the exact
 *    order the micro-kernel reads them (unit stride, 64-byte aligned). Packing reads through
 *    the transpose flags, so A^T @ B and A @ B^T cost no extra copies. Edge panels are zero
 *    padded: the micro-kernel always runs a full tile and only the store of an edge tile
 *    differs (it goes through a small tile buffer).
 *  - Micro-kernel. An MR x NR block of C stays in vector registers for the whole K block
 *    (AVX-512: 12x32 floats / 8x24 doubles in 24 zmm; AVX2+FMA: 6x16 / 6x8 in 12 ymm), so
 *    each loaded B vector feeds MR fused multiply-adds.
 *  - Dispatch. The library is built without -march flags, so the AVX-512 and AVX2 code is
 *    compiled through __attribute__((target)) and chosen once at run time with
 *    __builtin_cpu_supports; plain C is the portable default. The choice is cached in a
 *    pointer (two threads setting it at once store the same value).
 *  - Threads. op(A) is packed once per slab (a few MB of row tiles x K blocks), shared by the
 *    threads, each panel by the thread that first needs it; the columns (and, for narrow C,
 *    the rows) of the slab's part of C are cut into work items that the threads take from a
 *    shared counter, each packing its own B block into its own L2. No barrier between items:
 *    a thread that another process delays leaves its items to the others. Only large problems
 *    use threads: a persistent worker team (team.c) whose workers spin between calls only
 *    while calls come back to back, or OpenMP when another thread is using the team; waits
 *    inside a call spin briefly instead of sleeping. Every C
 *    element is computed by one thread with the same K blocking and the same kernel, so
 *    results do not depend on the thread count.
 *  - Shapes the blocked path handles badly go elsewhere: matrix-vector products (M or N is 1)
 *    to memory-bound dot/axpy loops, tiny problems to a simple loop without packing.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* sched_getaffinity, sched_setaffinity, sched_getcpu, CPU_SET */
#endif
#include "tinygrad_rep.h"
#include "matmul_small.h"
#include "team.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#include "transpose_avx.h"
#define TR_MM_X86 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__linux__) && defined(_OPENMP)
#include <sched.h>
#define TR_MM_PIN 1
#endif

/* Problems with M*N*K below this take the simple loop (packing would cost more than it saves). */
#ifndef TR_MM_SMALL
#define TR_MM_SMALL 8192.0
#endif
/* Bytes of L2 the packed B block may fill: 3/4 of the L2 size, within these bounds. */
#ifndef TR_MM_B_BLOCK_MIN
#define TR_MM_B_BLOCK_MIN (128 * 1024)
#endif
#ifndef TR_MM_B_BLOCK_MAX
#define TR_MM_B_BLOCK_MAX (1024 * 1024)
#endif
/* Bytes of the packed A slab (see gemm_matrix): a few MB, well inside L3. */
#ifndef TR_MM_SLAB_BYTES
#define TR_MM_SLAB_BYTES (8 * 1024 * 1024)
#endif
/* Work items per thread when threads share a matrix (more: better balance, more A traffic). */
#ifndef TR_MM_ITEMS_PER_THREAD
#define TR_MM_ITEMS_PER_THREAD 2
#endif
/* Threaded problems (M*N*K summed over the batch) from this size on pin their threads to
 * distinct CPUs for the call (see pin_team); two system calls cost well under 1% of them. */
#ifndef TR_MM_PIN_MIN
#define TR_MM_PIN_MIN (64.0 * 1048576.0)
#endif
/* Problems (summed over the batch) with M*N*K below this stay on one thread. */
#ifndef TR_MM_PAR_MIN
#define TR_MM_PAR_MIN (2097152.0)
#endif

/* Micro-kernel: C[0:MR, 0:NR] (= or +=) Ap (kc x MR, packed) times Bp (kc x NR, packed).
 * beta == 0 overwrites C without reading it, beta != 0 adds to it. next_a is the A panel the
 * following call will use (kc x MR, often Ap itself): the x86 kernels pull it into L2 while they
 * compute, so a new panel never waits on L3 or memory (a read only, never dereferenced). */
typedef void (*ukr_fn)(int64_t kc, const void *a, const void *b, void *c, int64_t ldc, int beta,
                       const void *next_a);
/* Packing of `width` rows/columns into W-wide panels (see DEFINE_PACK_BODY). */
typedef void (*pack_fn)(void *dst, const void *src, int64_t ls, int trans, int W, int64_t width,
                        int64_t kc);
/* Edge tile store: C[i, j] (= or +=) tile[i*W + j] for i < m, j < n. */
typedef void (*fringe_fn)(void *c, int64_t ldc, const void *tile, int W, int m, int n, int beta);
/* Simple unpacked loop for small problems (one matrix of the batch). */
typedef void (*small_fn)(int64_t M, int64_t N, int64_t K, const void *A, int trans_a,
                         const void *B, int trans_b, void *C, int accumulate);

/* Matrix-vector products (M == 1 or N == 1), same arguments. */
typedef small_fn vec_fn;

typedef struct {
    int mr, nr;              /* register tile */
    int64_t kc;              /* K block cap; B blocks fill L2, A slabs TR_MM_SLAB_BYTES */
    size_t es;               /* element size */
    ukr_fn ukr;
    pack_fn pack;
    fringe_fn fringe;
    small_fn small;
    vec_fn vec;
} kernel_set;

/* ------------------------------------------------------------------------------------------
 * Packing, edge stores and the small-problem loop, per element type.
 * ------------------------------------------------------------------------------------------ */

/* Packing a block: `width` rows of op(A) (or columns of op(B)) become ceil(width / W) panels,
 * panel p at dst + p*kc*W holding element (p*W + r, k) at [k*W + r]; source element x at k is
 * src[x*ls + k] when trans, else src[k*ls + x]. Rows past `width` are zero.
 * Copy mode walks the source row by row over the whole block (long unit-stride reads the
 * hardware prefetcher follows); transpose mode walks a few source rows at a time along k.
 * W is a compile-time constant in the instantiated copies (see PACK_DISPATCH). */
#define DEFINE_PACK_BODY(NAME, T, ATTR)                                                      \
ATTR static inline __attribute__((always_inline)) void                                       \
NAME(T *restrict dst, const T *restrict src, int64_t ls, int trans, const int W,             \
     int64_t width, int64_t kc)                                                              \
{                                                                                            \
    const int64_t full = width / W, rem = width - full * W;                                  \
    if (!trans) {                                                                            \
        for (int64_t k = 0; k < kc; ++k) {                                                   \
            const T *s = src + k * ls;                                                       \
            T *d = dst + k * W;                                                              \
            for (int64_t p = 0; p < full; ++p, s += W, d += kc * W)                          \
                memcpy(d, s, W * sizeof(T));     /* constant size: inlined vector moves */   \
            if (rem) {                                                                       \
                int r = 0;                                                                   \
                for (; r < rem; ++r) d[r] = s[r];                                            \
                for (; r < W; ++r) d[r] = 0;                                                 \
            }                                                                                \
        }                                                                                    \
        return;                                                                              \
    }                                                                                        \
    for (int64_t p = 0; p * W < width; ++p) {                                                \
        const T *s = src + p * W * ls;                                                       \
        T *d = dst + p * kc * W;                                                             \
        const int w = (int)(p < full ? W : rem);                                             \
        int r = TRANSPOSE_GROUPS(d, s, ls, W, w, kc);                                        \
        for (; r < w; ++r)                                                                   \
            for (int64_t k = 0; k < kc; ++k) d[k * W + r] = s[r * ls + k];                   \
        for (; r < W; ++r)                                                                   \
            for (int64_t k = 0; k < kc; ++k) d[k * W + r] = 0;                               \
    }                                                                                        \
}

/* Transposes groups of 4 (float) / 2 (double) source rows with register shuffles; returns
 * how many rows it did. */
static inline __attribute__((always_inline)) int
transpose_groups_f32(float *restrict d, const float *restrict s, int64_t ls, int W, int w, int64_t kc)
{
    int r = 0;
#ifdef __SSE__
    for (; r + 4 <= w; r += 4) {
        const float *s0 = s + r * ls, *s1 = s0 + ls, *s2 = s1 + ls, *s3 = s2 + ls;
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            __m128 x0 = _mm_loadu_ps(s0 + k), x1 = _mm_loadu_ps(s1 + k);
            __m128 x2 = _mm_loadu_ps(s2 + k), x3 = _mm_loadu_ps(s3 + k);
            _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
            float *o = d + k * W + r;
            _mm_storeu_ps(o, x0);
            _mm_storeu_ps(o + W, x1);
            _mm_storeu_ps(o + 2 * W, x2);
            _mm_storeu_ps(o + 3 * W, x3);
        }
        for (; k < kc; ++k) {
            float *o = d + k * W + r;
            o[0] = s0[k]; o[1] = s1[k]; o[2] = s2[k]; o[3] = s3[k];
        }
    }
#else
    (void)d; (void)s; (void)ls; (void)W; (void)w; (void)kc;
#endif
    return r;
}

static inline __attribute__((always_inline)) int
transpose_groups_f64(double *restrict d, const double *restrict s, int64_t ls, int W, int w, int64_t kc)
{
    int r = 0;
#ifdef __SSE2__
    for (; r + 2 <= w; r += 2) {
        const double *s0 = s + r * ls, *s1 = s0 + ls;
        int64_t k = 0;
        for (; k + 2 <= kc; k += 2) {
            __m128d x0 = _mm_loadu_pd(s0 + k), x1 = _mm_loadu_pd(s1 + k);
            double *o = d + k * W + r;
            _mm_storeu_pd(o, _mm_unpacklo_pd(x0, x1));
            _mm_storeu_pd(o + W, _mm_unpackhi_pd(x0, x1));
        }
        for (; k < kc; ++k) {
            double *o = d + k * W + r;
            o[0] = s0[k]; o[1] = s1[k];
        }
    }
#else
    (void)d; (void)s; (void)ls; (void)W; (void)w; (void)kc;
#endif
    return r;
}

#ifdef TR_MM_X86
/* AVX versions for the AVX2 / AVX-512 packers: 8x8 (float) and 4x4 (double) transposes. */
__attribute__((target("avx"))) static inline __attribute__((always_inline)) int
transpose_groups_f32_avx(float *restrict d, const float *restrict s, int64_t ls, int W, int w, int64_t kc)
{
    int r = 0;
    for (; r + 8 <= w; r += 8) {
        const float *s0 = s + r * ls;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8)
            tr_transpose8x8_f32_avx(s0 + k, ls, d + k * W + r, W);
        for (; k < kc; ++k)
            for (int q = 0; q < 8; ++q) d[k * W + r + q] = s0[q * ls + k];
    }
    return r + transpose_groups_f32(d + r, s + r * ls, ls, W, w - r, kc);
}

__attribute__((target("avx"))) static inline __attribute__((always_inline)) int
transpose_groups_f64_avx(double *restrict d, const double *restrict s, int64_t ls, int W, int w, int64_t kc)
{
    int r = 0;
    for (; r + 4 <= w; r += 4) {
        const double *s0 = s + r * ls, *s1 = s0 + ls, *s2 = s1 + ls, *s3 = s2 + ls;
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4)
            tr_transpose4x4_f64_avx(s0 + k, ls, d + k * W + r, W);
        for (; k < kc; ++k) {
            double *o = d + k * W + r;
            o[0] = s0[k]; o[1] = s1[k]; o[2] = s2[k]; o[3] = s3[k];
        }
    }
    return r + transpose_groups_f64(d + r, s + r * ls, ls, W, w - r, kc);
}
#endif

#define TRANSPOSE_GROUPS transpose_groups_f32
DEFINE_PACK_BODY(pack_body_f32, float, )
#undef TRANSPOSE_GROUPS
#define TRANSPOSE_GROUPS transpose_groups_f64
DEFINE_PACK_BODY(pack_body_f64, double, )
#undef TRANSPOSE_GROUPS
#ifdef TR_MM_X86
#define TRANSPOSE_GROUPS transpose_groups_f32_avx
DEFINE_PACK_BODY(pack_body_f32_avx, float, __attribute__((target("avx"))))
#undef TRANSPOSE_GROUPS
#define TRANSPOSE_GROUPS transpose_groups_f64_avx
DEFINE_PACK_BODY(pack_body_f64_avx, double, __attribute__((target("avx"))))
#undef TRANSPOSE_GROUPS
#endif

/* One copy of the body per panel width in use, so the inner copies have constant length. */
#define PACK_DISPATCH(BODY, T)                                                               \
    T *d = dst_;                                                                             \
    const T *s = src_;                                                                       \
    switch (W) {                                                                             \
    case 4:  BODY(d, s, ls, trans, 4, width, kc); break;                                     \
    case 6:  BODY(d, s, ls, trans, 6, width, kc); break;                                     \
    case 8:  BODY(d, s, ls, trans, 8, width, kc); break;                                     \
    case 12: BODY(d, s, ls, trans, 12, width, kc); break;                                    \
    case 16: BODY(d, s, ls, trans, 16, width, kc); break;                                    \
    case 32: BODY(d, s, ls, trans, 32, width, kc); break;                                    \
    default: BODY(d, s, ls, trans, W, width, kc); break;                                     \
    }

/* The packers and the small loop are also compiled for each SIMD level (wider copies). */
#define DEFINE_PACK(NAME, BODY, T, ATTR)                                                     \
ATTR static void NAME(void *dst_, const void *src_, int64_t ls, int trans, int W,            \
                      int64_t width, int64_t kc)                                             \
{                                                                                            \
    PACK_DISPATCH(BODY, T)                                                                   \
}
#define TR_MM_NOATTR
#define TR_MM_AVX512 __attribute__((target("avx512f")))
#define TR_MM_AVX2 __attribute__((target("avx2,fma")))
DEFINE_PACK(pack_f32, pack_body_f32, float, TR_MM_NOATTR)
DEFINE_PACK(pack_f64, pack_body_f64, double, TR_MM_NOATTR)
#ifdef TR_MM_X86
DEFINE_PACK(pack_f32_avx512, pack_body_f32_avx, float, TR_MM_AVX512)
DEFINE_PACK(pack_f64_avx512, pack_body_f64_avx, double, TR_MM_AVX512)
DEFINE_PACK(pack_f32_avx2, pack_body_f32_avx, float, TR_MM_AVX2)
DEFINE_PACK(pack_f64_avx2, pack_body_f64_avx, double, TR_MM_AVX2)
#endif

/* Same arithmetic as a full-tile store (C + acc, or acc), so edge elements round alike. */
#define DEFINE_FRINGE(NAME, T)                                                               \
static void NAME(void *c_, int64_t ldc, const void *t_, int W, int m, int n, int beta)       \
{                                                                                            \
    T *c = c_;                                                                               \
    const T *t = t_;                                                                         \
    for (int i = 0; i < m; ++i) {                                                            \
        T *ci = c + i * ldc;                                                                 \
        const T *ti = t + i * W;                                                             \
        if (beta) for (int j = 0; j < n; ++j) ci[j] = ci[j] + ti[j];                         \
        else      for (int j = 0; j < n; ++j) ci[j] = ti[j];                                 \
    }                                                                                        \
}
DEFINE_FRINGE(fringe_f32, float)
DEFINE_FRINGE(fringe_f64, double)

/* Small problems: i-k-j order (unit stride over C and B) or, for B stored N x K, dot products
 * along contiguous rows of B. */
#define DEFINE_SMALL(NAME, T, ATTR)                                                          \
ATTR static void NAME(int64_t M, int64_t N, int64_t K, const void *A_, int trans_a,          \
                      const void *B_, int trans_b, void *C_, int accumulate)                 \
{                                                                                            \
    const T *A = A_, *B = B_;                                                                \
    T *C = C_;                                                                               \
    for (int64_t i = 0; i < M; ++i) {                                                        \
        T *crow = C + i * N;                                                                 \
        if (trans_b) {                                                                       \
            for (int64_t j = 0; j < N; ++j) {                                                \
                const T *brow = B + j * K;                                                   \
                T s = 0;                                                                     \
                if (trans_a) for (int64_t k = 0; k < K; ++k) s += A[k * M + i] * brow[k];    \
                else         for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * brow[k];    \
                crow[j] = accumulate ? crow[j] + s : s;                                      \
            }                                                                                \
        } else {                                                                             \
            if (!accumulate) for (int64_t j = 0; j < N; ++j) crow[j] = 0;                    \
            for (int64_t k = 0; k < K; ++k) {                                                \
                const T aik = trans_a ? A[k * M + i] : A[i * K + k];                         \
                const T *brow = B + k * N;                                                   \
                for (int64_t j = 0; j < N; ++j) crow[j] += aik * brow[j];                    \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}
/* Matrix-vector products (M == 1 or N == 1) are memory bound, and packing or a 12x32 tile
 * would waste most of the work. The vector is contiguous whatever its transpose flag.
 * Dot form y[r] = sum_k m[r*ld + k] x[k]: 32 fixed partial sums (vector lanes, two
 * dependency chains), summed in a fixed order. Axpy form y[r] = sum_k x[k] m[k*ld + r]:
 * unit-stride updates of y, in chunks of y that stay in L1. */
#define DEFINE_VEC(NAME, T, ATTR)                                                            \
ATTR static void NAME##_dot(int64_t R, int64_t K, const T *m, int64_t ld, const T *x,        \
                            T *y, int accumulate)                                            \
{                                                                                            \
    for (int64_t r = 0; r < R; ++r) {                                                        \
        const T *mr = m + r * ld;                                                            \
        T part[32];                                                                          \
        for (int l = 0; l < 32; ++l) part[l] = 0;                                            \
        int64_t k = 0;                                                                       \
        for (; k + 32 <= K; k += 32)                                                         \
            for (int l = 0; l < 32; ++l) part[l] += mr[k + l] * x[k + l];                    \
        for (int l = 0; l < 16; ++l) part[l] += part[l + 16];                                \
        for (int l = 0; l < 8; ++l) part[l] += part[l + 8];                                  \
        T s = ((part[0] + part[1]) + (part[2] + part[3]))                                   \
              + ((part[4] + part[5]) + (part[6] + part[7]));                                \
        for (; k < K; ++k) s += mr[k] * x[k];                                                \
        y[r] = accumulate ? y[r] + s : s;                                                    \
    }                                                                                        \
}                                                                                            \
ATTR static void NAME##_axpy(int64_t R, int64_t K, const T *m, int64_t ld, const T *x,       \
                             T *y, int accumulate)                                           \
{                                                                                            \
    for (int64_t r0 = 0; r0 < R; r0 += 2048) {                                               \
        const int64_t n = R - r0 < 2048 ? R - r0 : 2048;                                     \
        T *yc = y + r0;                                                                      \
        if (!accumulate) for (int64_t r = 0; r < n; ++r) yc[r] = 0;                          \
        for (int64_t k = 0; k < K; ++k) {                                                    \
            const T xk = x[k], *mk = m + k * ld + r0;                                        \
            for (int64_t r = 0; r < n; ++r) yc[r] += xk * mk[r];                             \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
ATTR static void NAME(int64_t M, int64_t N, int64_t K, const void *A_, int trans_a,          \
                      const void *B_, int trans_b, void *C_, int accumulate)                 \
{                                                                                            \
    const T *A = A_, *B = B_;                                                                \
    T *C = C_;                                                                               \
    if (N == 1) {          /* C (M) = op(A) x, x = B */                                      \
        if (trans_a) NAME##_axpy(M, K, A, M, B, C, accumulate);                              \
        else         NAME##_dot(M, K, A, K, B, C, accumulate);                               \
    } else {               /* M == 1: C (N) = x op(B), x = A */                              \
        if (trans_b) NAME##_dot(N, K, B, K, A, C, accumulate);                               \
        else         NAME##_axpy(N, K, B, N, A, C, accumulate);                              \
    }                                                                                        \
}
DEFINE_VEC(vec_f32, float, TR_MM_NOATTR)
DEFINE_VEC(vec_f64, double, TR_MM_NOATTR)
#ifdef TR_MM_X86
DEFINE_VEC(vec_f32_avx512, float, TR_MM_AVX512)
DEFINE_VEC(vec_f64_avx512, double, TR_MM_AVX512)
DEFINE_VEC(vec_f32_avx2, float, TR_MM_AVX2)
DEFINE_VEC(vec_f64_avx2, double, TR_MM_AVX2)
#endif

DEFINE_SMALL(small_f32, float, TR_MM_NOATTR)
DEFINE_SMALL(small_f64, double, TR_MM_NOATTR)
#ifdef TR_MM_X86
DEFINE_SMALL(small_f32_avx512, float, TR_MM_AVX512)
DEFINE_SMALL(small_f64_avx512, double, TR_MM_AVX512)
DEFINE_SMALL(small_f32_avx2, float, TR_MM_AVX2)
DEFINE_SMALL(small_f64_avx2, double, TR_MM_AVX2)
#endif

/* ------------------------------------------------------------------------------------------
 * Micro-kernels.
 * ------------------------------------------------------------------------------------------ */

/* Portable default: fixed-size loops the compiler keeps in registers and vectorizes. */
#define DEFINE_UKR_GENERIC(NAME, T, MR, NR)                                                  \
static void NAME(int64_t kc, const void *a_, const void *b_, void *c_, int64_t ldc, int beta, \
                 const void *next_a) \
{                                                                                            \
    const T *restrict a = a_, *restrict b = b_;                                              \
    T *restrict c = c_;                                                                      \
    T acc[MR][NR];                                                                           \
    (void)next_a;                                                                            \
    for (int i = 0; i < MR; ++i)                                                             \
        for (int j = 0; j < NR; ++j) acc[i][j] = 0;                                          \
    for (int64_t k = 0; k < kc; ++k) {                                                       \
        for (int i = 0; i < MR; ++i) {                                                       \
            const T ai = a[i];                                                               \
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];                             \
        }                                                                                    \
        a += MR;                                                                             \
        b += NR;                                                                             \
    }                                                                                        \
    for (int i = 0; i < MR; ++i) {                                                           \
        T *ci = c + i * ldc;                                                                 \
        if (beta) for (int j = 0; j < NR; ++j) ci[j] = ci[j] + acc[i][j];                    \
        else      for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];                            \
    }                                                                                        \
}
DEFINE_UKR_GENERIC(ukr_f32_generic, float, 4, 8)
DEFINE_UKR_GENERIC(ukr_f64_generic, double, 4, 4)

#ifdef TR_MM_X86

/* Prefetch `bytes` past p. The address is formed as an integer: near the end of the packed
 * buffer it points past it (a prefetch never faults), which pointer arithmetic may not. */
#define TR_PREFETCH_AHEAD(p, bytes) \
    _mm_prefetch((const char *)((uintptr_t)(const void *)(p) + (bytes)), _MM_HINT_T0)
/* Row k of the next A panel (MR elements, `bytes` long) toward L2: over the call, all of it. */
#define TR_PREFETCH_NEXT_A(k, bytes) \
    _mm_prefetch((const char *)((uintptr_t)next_a + (uintptr_t)(k) * (bytes)), _MM_HINT_T1)

/* Register-tiled kernels: rows r of the tile are accumulators c<r>0, c<r>1 (two vectors of B
 * width); per k, two B vectors are loaded and each A element is broadcast once. */
#define TR_ROW2(r, SET1, FMA)                                                                \
    { const VT ar = SET1(a[r]); c##r##0 = FMA(ar, b0, c##r##0); c##r##1 = FMA(ar, b1, c##r##1); }
#define TR_STORE2(r, LOAD, STORE, ADD, W)                                                    \
    { ET *cr = c + (r) * ldc;                                                                \
      if (beta) { c##r##0 = ADD(c##r##0, LOAD(cr)); c##r##1 = ADD(c##r##1, LOAD(cr + W)); }  \
      STORE(cr, c##r##0); STORE(cr + W, c##r##1); }

/* ---- AVX-512, float32, 12 x 32 ---- */
#define VT __m512
#define ET float
__attribute__((target("avx512f")))
static void ukr_f32_avx512(int64_t kc, const void *a_, const void *b_, void *c_, int64_t ldc, int beta,
                           const void *next_a)
{
    const float *a = a_, *b = b_;
    float *c = c_;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, c100 = c00, c101 = c00, c110 = c00, c111 = c00;
    if (beta)   /* C is read at the end: start fetching it now */
        for (int r = 0; r < 12; ++r) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
        }
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        TR_PREFETCH_AHEAD(b, 2048);   /* B streams from L2: fetch 16 k ahead */
        TR_PREFETCH_AHEAD(b, 2112);
        TR_PREFETCH_NEXT_A(k, 48);
        TR_ROW2(0, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(1, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(2, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(3, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(4, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(5, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(6, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(7, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(8, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(9, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(10, _mm512_set1_ps, _mm512_fmadd_ps)
        TR_ROW2(11, _mm512_set1_ps, _mm512_fmadd_ps)
        a += 12;
        b += 32;
    }
    TR_STORE2(0, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(1, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(2, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(3, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(4, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(5, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(6, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(7, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(8, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(9, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(10, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
    TR_STORE2(11, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, 16)
}
#undef VT
#undef ET

/* ---- AVX-512, float64, 8 x 24 (three B vectors per k: fewer loads per FMA than 12 x 16) ---- */
#define TR_ROW3(r)                                                                           \
    { const __m512d ar = _mm512_set1_pd(a[r]);                                               \
      c##r##0 = _mm512_fmadd_pd(ar, b0, c##r##0); c##r##1 = _mm512_fmadd_pd(ar, b1, c##r##1); \
      c##r##2 = _mm512_fmadd_pd(ar, b2, c##r##2); }
#define TR_STORE3(r)                                                                         \
    { double *cr = c + (r) * ldc;                                                            \
      if (beta) { c##r##0 = _mm512_add_pd(c##r##0, _mm512_loadu_pd(cr));                   \
                  c##r##1 = _mm512_add_pd(c##r##1, _mm512_loadu_pd(cr + 8));               \
                  c##r##2 = _mm512_add_pd(c##r##2, _mm512_loadu_pd(cr + 16)); }            \
      _mm512_storeu_pd(cr, c##r##0); _mm512_storeu_pd(cr + 8, c##r##1);                      \
      _mm512_storeu_pd(cr + 16, c##r##2); }
__attribute__((target("avx512f")))
static void ukr_f64_avx512(int64_t kc, const void *a_, const void *b_, void *c_, int64_t ldc, int beta,
                           const void *next_a)
{
    const double *a = a_, *b = b_;
    double *c = c_;
    __m512d c00 = _mm512_setzero_pd(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m512d c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    __m512d c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    __m512d c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    if (beta)
        for (int r = 0; r < 8; ++r) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 23), _MM_HINT_T0);
        }
    for (int64_t k = 0; k < kc; ++k) {
        const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8), b2 = _mm512_load_pd(b + 16);
        TR_PREFETCH_AHEAD(b, 3072);
        TR_PREFETCH_AHEAD(b, 3136);
        TR_PREFETCH_AHEAD(b, 3200);
        TR_PREFETCH_NEXT_A(k, 64);
        TR_ROW3(0) TR_ROW3(1) TR_ROW3(2) TR_ROW3(3) TR_ROW3(4) TR_ROW3(5) TR_ROW3(6) TR_ROW3(7)
        a += 8;
        b += 24;
    }
    TR_STORE3(0) TR_STORE3(1) TR_STORE3(2) TR_STORE3(3) TR_STORE3(4) TR_STORE3(5) TR_STORE3(6) TR_STORE3(7)
}

/* ---- AVX2 + FMA, float32, 6 x 16 ---- */
#define VT __m256
#define ET float
__attribute__((target("avx2,fma")))
static void ukr_f32_avx2(int64_t kc, const void *a_, const void *b_, void *c_, int64_t ldc, int beta,
                           const void *next_a)
{
    const float *a = a_, *b = b_;
    float *c = c_;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        TR_PREFETCH_AHEAD(b, 1024);   /* B streams from L2: fetch 16 k ahead */
        if (!(k & 1)) TR_PREFETCH_NEXT_A(k, 24);   /* 48 bytes per two k */
        TR_ROW2(0, _mm256_set1_ps, _mm256_fmadd_ps)
        TR_ROW2(1, _mm256_set1_ps, _mm256_fmadd_ps)
        TR_ROW2(2, _mm256_set1_ps, _mm256_fmadd_ps)
        TR_ROW2(3, _mm256_set1_ps, _mm256_fmadd_ps)
        TR_ROW2(4, _mm256_set1_ps, _mm256_fmadd_ps)
        TR_ROW2(5, _mm256_set1_ps, _mm256_fmadd_ps)
        a += 6;
        b += 16;
    }
    TR_STORE2(0, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
    TR_STORE2(1, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
    TR_STORE2(2, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
    TR_STORE2(3, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
    TR_STORE2(4, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
    TR_STORE2(5, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, 8)
}
#undef VT
#undef ET

/* ---- AVX2 + FMA, float64, 6 x 8 ---- */
#define VT __m256d
#define ET double
__attribute__((target("avx2,fma")))
static void ukr_f64_avx2(int64_t kc, const void *a_, const void *b_, void *c_, int64_t ldc, int beta,
                           const void *next_a)
{
    const double *a = a_, *b = b_;
    double *c = c_;
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; ++k) {
        const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
        TR_PREFETCH_AHEAD(b, 1024);   /* B streams from L2: fetch 16 k ahead */
        TR_PREFETCH_NEXT_A(k, 48);
        TR_ROW2(0, _mm256_set1_pd, _mm256_fmadd_pd)
        TR_ROW2(1, _mm256_set1_pd, _mm256_fmadd_pd)
        TR_ROW2(2, _mm256_set1_pd, _mm256_fmadd_pd)
        TR_ROW2(3, _mm256_set1_pd, _mm256_fmadd_pd)
        TR_ROW2(4, _mm256_set1_pd, _mm256_fmadd_pd)
        TR_ROW2(5, _mm256_set1_pd, _mm256_fmadd_pd)
        a += 6;
        b += 8;
    }
    TR_STORE2(0, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
    TR_STORE2(1, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
    TR_STORE2(2, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
    TR_STORE2(3, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
    TR_STORE2(4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
    TR_STORE2(5, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_add_pd, 4)
}
#undef VT
#undef ET

#endif /* TR_MM_X86 */

/* ------------------------------------------------------------------------------------------
 * Kernel sets and run-time selection.
 * ------------------------------------------------------------------------------------------ */

/* 512 for the AVX-512 float32 kernel: its A panel (24 KB) still sits in L1 beside the B
 * stream, and every C element is read and written half as often as with 256 (sgemm 1024^3 and
 * 2048^3 at 2 threads: +3% on a quiet machine, +8% while other tenants load memory). */
#ifndef TR_MM_KC_S
#define TR_MM_KC_S 512
#endif
/* 384 for the float64 one (A panel 8 x 384 doubles, 24 KB): dgemm 1024^3 at 2 threads 209 ->
 * 241 GFLOP/s, 1 thread unchanged. */
#ifndef TR_MM_KC_D
#define TR_MM_KC_D 384
#endif

/* {mr, nr, kc, element size, kernels...} */
static const kernel_set ks_f32_generic = {4, 8, 256, sizeof(float),
    ukr_f32_generic, pack_f32, fringe_f32, small_f32, vec_f32};
static const kernel_set ks_f64_generic = {4, 4, 256, sizeof(double),
    ukr_f64_generic, pack_f64, fringe_f64, small_f64, vec_f64};
#ifdef TR_MM_X86
static const kernel_set ks_f32_avx512 = {12, 32, TR_MM_KC_S, sizeof(float),
    ukr_f32_avx512, pack_f32_avx512, fringe_f32, small_f32_avx512, vec_f32_avx512};
static const kernel_set ks_f64_avx512 = {8, 24, TR_MM_KC_D, sizeof(double),
    ukr_f64_avx512, pack_f64_avx512, fringe_f64, small_f64_avx512, vec_f64_avx512};
static const kernel_set ks_f32_avx2 = {6, 16, 256, sizeof(float),
    ukr_f32_avx2, pack_f32_avx2, fringe_f32, small_f32_avx2, vec_f32_avx2};
static const kernel_set ks_f64_avx2 = {6, 8, 256, sizeof(double),
    ukr_f64_avx2, pack_f64_avx2, fringe_f64, small_f64_avx2, vec_f64_avx2};
#endif

#ifdef TR_MM_X86
/* 2 = AVX-512, 1 = AVX2+FMA, 0 = portable: the highest the CPU has, capped by
 * TINYGRAD_REP_MM_SIMD ("avx2" or "default"; any other value is ignored), which exists so the
 * tests can run every path on one machine, or at build time by TR_MM_FORCE_LEVEL. */
static int simd_level(void)
{
    int level = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    const char *cap = getenv("TINYGRAD_REP_MM_SIMD");
    if (cap != NULL && strcmp(cap, "avx2") == 0 && level > 1) level = 1;
    if (cap != NULL && strcmp(cap, "default") == 0) level = 0;
#ifdef TR_MM_FORCE_LEVEL
    if (level > TR_MM_FORCE_LEVEL) level = TR_MM_FORCE_LEVEL;
#endif
    return level;
}
#endif

/* Budget for the packed B block: 3/4 of L2 (CPUID leaf 0x80000006 on x86, Intel and AMD). A
 * wider block means fewer passes over the A slab; 3/4 against 1/2 measured 1-3% faster for
 * sgemm at 2 threads, with the rest of L2 still enough for the A and C streams. */
static int64_t b_block_bytes(void)
{
    static int64_t cached;   /* 0 = not yet known; racing first calls store the same value */
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v) return v;
    v = 512 * 1024;
#ifdef TR_MM_X86
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000006, &a, &b, &c, &d) && (c >> 16) != 0) v = (int64_t)(c >> 16) * 1024 * 3 / 4;
#endif
    if (v < TR_MM_B_BLOCK_MIN) v = TR_MM_B_BLOCK_MIN;
    if (v > TR_MM_B_BLOCK_MAX) v = TR_MM_B_BLOCK_MAX;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* Bytes of the A slab: TR_MM_SLAB_BYTES, or TINYGRAD_REP_MM_SLAB_BYTES when set to a whole
 * number >= 4096 (read once), which exists so the tests can reach several slabs with small
 * matrices. */
static int64_t slab_bytes(void)
{
    static int64_t cached;
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v) return v;
    v = TR_MM_SLAB_BYTES;
    const char *env = getenv("TINYGRAD_REP_MM_SLAB_BYTES");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        long long x = strtoll(env, &end, 10);
        if (end != NULL && *end == '\0' && x >= 4096 && x <= ((long long)1 << 40)) v = (int64_t)x;
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

static const kernel_set *kernels(int is_f64)
{
    static const kernel_set *cache[2];
    const kernel_set *ks = __atomic_load_n(&cache[is_f64], __ATOMIC_ACQUIRE);
    if (ks) return ks;
    ks = is_f64 ? &ks_f64_generic : &ks_f32_generic;
#ifdef TR_MM_X86
    switch (simd_level()) {
    case 2: ks = is_f64 ? &ks_f64_avx512 : &ks_f32_avx512; break;
    case 1: ks = is_f64 ? &ks_f64_avx2 : &ks_f32_avx2; break;
    default: break;
    }
#endif
    __atomic_store_n(&cache[is_f64], ks, __ATOMIC_RELEASE);   /* idempotent */
    return ks;
}

/* ------------------------------------------------------------------------------------------
 * Blocked driver (element type through kernel_set; pointers as bytes).
 * ------------------------------------------------------------------------------------------ */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Even block sizes: n split into ceil(n / cap) nearly equal blocks, rounded up to unit. */
static int64_t even_block(int64_t n, int64_t cap, int64_t unit)
{
    int64_t nb = ceil_div(n, cap);
    return ceil_div(ceil_div(n, nb), unit) * unit;
}

static void *buf_alloc(size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;   /* aligned_alloc wants a multiple of the alignment */
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* The packing buffer is kept from one call to the next (one at a time; a call that finds it in
 * use, or needs more than TR_MM_KEEP_BYTES, allocates its own). Why: a buffer of a few MB freed
 * and allocated again per call was often handed back by malloc as fresh pages, and the first
 * write to each page faults: sgemm 1024^3 at 2 threads through the Tensor API took about 250
 * page faults per call. */
#ifndef TR_MM_KEEP_BYTES
#define TR_MM_KEEP_BYTES ((size_t)64 << 20)
#endif
static char *g_kept;                 /* guarded by g_kept_busy (taken with an atomic exchange) */
static size_t g_kept_bytes;
static int g_kept_busy;

static char *buf_take(size_t bytes, int *kept)
{
    *kept = 0;
    if (bytes <= TR_MM_KEEP_BYTES && !__atomic_exchange_n(&g_kept_busy, 1, __ATOMIC_ACQUIRE)) {
        if (g_kept_bytes < bytes) {
            free(g_kept);
            g_kept = buf_alloc(bytes);
            g_kept_bytes = g_kept ? bytes : 0;
        }
        if (g_kept) {
            *kept = 1;
            return g_kept;
        }
        __atomic_store_n(&g_kept_busy, 0, __ATOMIC_RELEASE);
    }
    return buf_alloc(bytes);
}

static void buf_give(char *mem, int kept)
{
    if (kept) __atomic_store_n(&g_kept_busy, 0, __ATOMIC_RELEASE);
    else free(mem);
}

typedef struct {
    const kernel_set *ks;
    int64_t M, N, K;
    int trans_a, trans_b, accumulate;
    int64_t kcb;             /* K block (fixed per problem: it sets the rounding) */
    int64_t st, kbs;         /* A slab: tiles (MR rows each) and K blocks per slab */
    int64_t ncw;             /* columns of a work item (a multiple of NR) */
    int64_t nrow;            /* row parts per column chunk (work items = chunks x row parts) */
    int64_t tail;            /* the last `tail` chunks are each cut into two narrower ones */
} problem;

/* Micro-tile (t, q): rows t*MR.., columns jc + q*NR.. of C, A panel at ap, B panel q of bufB;
 * edge tiles go through `tile`; next_a: the A panel of the tile after it. */
static inline void run_tile(const kernel_set *ks, int64_t M, int64_t N, int64_t jc, int64_t q,
                            int64_t t, int64_t kc, const char *ap, const char *next_a,
                            const char *bufB, char *C, char *tile, int beta)
{
    const int MR = ks->mr, NR = ks->nr;
    const size_t es = ks->es;
    const int64_t i0 = t * MR, j0 = jc + q * NR;
    const int m = (int)min64(MR, M - i0), n = (int)min64(NR, N - j0);
    const char *bp = bufB + (size_t)(q * kc * NR) * es;
    char *c = C + (size_t)(i0 * N + j0) * es;
    if (m == MR && n == NR) {
        ks->ukr(kc, ap, bp, c, N, beta, next_a);
    } else {
        ks->ukr(kc, ap, bp, tile, NR, 0, next_a);
        ks->fringe(c, N, tile, NR, m, n, beta);
    }
}

/* What the threads of one call share: two work counters (see gemm_matrix) and a barrier. */
typedef struct {
    int64_t next[2];
    int arrived;                    /* threads waiting at the barrier */
    int generation;                 /* barriers passed */
} team_state;

/* All nthr threads of the call meet here; what each wrote before is visible to all after.
 * Why not `omp barrier`: OMP_WAIT_POLICY=PASSIVE (set at import, so that our idle threads do
 * not spin on numpy's cores between calls) makes it sleep at once, and waking the sleeper cost
 * about 20 us per barrier on a 2-core VM, ~2% of sgemm 1024^3. The threads here are inside the
 * same call, so the wait is short: spin, then yield the CPU to whoever the wait is for. */
static void team_barrier(team_state *s, int nthr)
{
    if (nthr <= 1) return;
    /* The generation can only move once every thread, this one included, has arrived. */
    const int gen = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&s->arrived, 1, __ATOMIC_ACQ_REL) == nthr) {
        __atomic_store_n(&s->arrived, 0, __ATOMIC_RELAXED);   /* published by the release below */
        __atomic_store_n(&s->generation, gen + 1, __ATOMIC_RELEASE);
        return;
    }
    for (int spins = 0; __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE) == gen;) tr_wait_step(&spins);
}

/* Pack the A panels of tile rows t0..t1-1, K block b, into the slab (ns tile rows from tile row
 * ts, K blocks from bs): block after block, panel after panel. */
static void pack_a_rows(const problem *p, const char *A, char *slabA, int64_t ns, int64_t ts, int64_t bs,
                        int64_t t0, int64_t t1, int64_t b)
{
    const kernel_set *ks = p->ks;
    const int MR = ks->mr;
    const size_t es = ks->es;
    const int64_t pc = b * p->kcb, kc = min64(p->kcb, p->K - pc);
    const int64_t i0 = t0 * MR, h = min64((t1 - t0) * MR, p->M - i0);
    if (h <= 0) return;
    char *dst = slabA + (size_t)((b - bs) * ns * MR * p->kcb + (t0 - ts) * MR * kc) * es;
    if (p->trans_a)
        ks->pack(dst, A + (size_t)(pc * p->M + i0) * es, p->M, 0, MR, h, kc);
    else
        ks->pack(dst, A + (size_t)(i0 * p->K + pc) * es, p->K, 1, MR, h, kc);
}

/* A team's panel (t, b) of slab `round`, packed by whichever thread needs it first: flag value
 * 2*round+1 while a thread packs it, 2*round+2 once it is ready (flags start at 0 each call).
 * Why not pack the slab up front: every thread then waits at a barrier for the slowest packer
 * (and for the worker the call woke, ~20 us late), and each panel is written to L3 and read
 * back, where packed at first use it is still in L1 (sgemm 1024^3, 2 threads: +1%). */
static void need_a_panel(const problem *p, const char *A, char *slabA, int64_t *flag, int64_t round,
                         int64_t ns, int64_t ts, int64_t bs, int64_t t, int64_t b)
{
    const int64_t busy = 2 * round + 1, ready = 2 * round + 2;
    int64_t seen = __atomic_load_n(flag, __ATOMIC_ACQUIRE);
    if (seen == ready) return;
    if (seen < busy && __atomic_compare_exchange_n(flag, &seen, busy, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
        pack_a_rows(p, A, slabA, ns, ts, bs, t, t + 1, b);
        __atomic_store_n(flag, ready, __ATOMIC_RELEASE);
        return;
    }
    for (int spins = 0; __atomic_load_n(flag, __ATOMIC_ACQUIRE) != ready;)   /* another thread packs it now */
        tr_wait_step(&spins);
}

/* Columns jc..jc+nc-1 of work item column c (of nchunk + p->tail): chunk c of width p->ncw,
 * except that the last p->tail chunks come as two halves each (rounded to whole B panels), so
 * the items that end a slab are short and the threads finish it together. */
static void item_columns(const problem *p, int64_t nchunk, int64_t c, int64_t *jc, int64_t *nc)
{
    const int64_t head = nchunk - p->tail;
    if (c < head) {
        *jc = c * p->ncw;
        *nc = min64(p->ncw, p->N - *jc);
        return;
    }
    const int64_t chunk = head + (c - head) / 2, j0 = chunk * p->ncw, end = min64(j0 + p->ncw, p->N);
    const int64_t half = ceil_div(ceil_div(end - j0, 2), p->ks->nr) * p->ks->nr;
    *jc = (c - head) % 2 ? j0 + half : j0;
    *nc = (c - head) % 2 ? end - *jc : min64(half, end - j0);
}

/* One matrix, thread `tid` of `nthr` (all threads of the team call it with the same matrix).
 *
 * op(A) is cut into slabs (p->st row tiles x p->kbs K blocks, a few MB), each packed once into
 * the shared buffer slabA as MR-row panels, block after block: by one thread up front, or in a
 * team by whichever thread first needs a panel (`ready`: one flag per panel). The slab's part of
 * C is cut into work items (columns jc..jc+ncw x one of nrow row ranges), which the threads
 * take one at a time from a shared counter: a thread delayed by another process leaves more
 * items to the others, and no thread waits for another until the slab ends. For each K
 * block, an item packs its B block (kc x ncw: it stays in this core's L2) into the thread's own
 * bufB and sweeps its row tiles along rows of C (the A panel of a tile row stays in L1 while
 * the B block streams from L2).
 * Every C element gets its K blocks in ascending order, each from the same micro-kernel, so
 * the result does not depend on the thread count or on which thread took which item. */
/* team->next: two work counters (one per slab, alternating, so the barrier that ends a slab
 * separates every use of a counter from its reset); *round: slabs this thread started, the
 * same count in every thread. */
static void gemm_matrix(const problem *p, const char *A, const char *B, char *C, char *slabA,
                        char *bufB, char *tile, team_state *team, int64_t *round_, int tid, int nthr,
                        int64_t *ready)
{
    const kernel_set *ks = p->ks;
    const int MR = ks->mr, NR = ks->nr;
    const size_t es = ks->es;
    const int64_t M = p->M, N = p->N, K = p->K, kcb = p->kcb;
    const int64_t mt = ceil_div(M, MR), nk = ceil_div(K, kcb);
    const int64_t nchunk = ceil_div(N, p->ncw), items = (nchunk + p->tail) * p->nrow;

    for (int64_t ts = 0; ts < mt; ts += p->st) {
        const int64_t te = min64(mt, ts + p->st), ns = te - ts;
        for (int64_t bs = 0; bs < nk; bs += p->kbs) {
            const int64_t be = min64(nk, bs + p->kbs);
            const int64_t round = (*round_)++;
            int64_t *next = &team->next[round & 1];
            /* Without flags (one thread), the slab is packed up front; a team with flags
             * packs each panel where it is first needed (see need_a_panel). */
            if (ready == NULL) {
                for (int64_t b = bs; b < be; ++b)
                    pack_a_rows(p, A, slabA, ns, ts, bs, ts, te, b);
            }
            if (tid == 0)   /* the other counter: every thread is done with it (the barrier
                             * that ended the last slab) */
                __atomic_store_n(&team->next[(round + 1) & 1], 0, __ATOMIC_RELAXED);
            for (;;) {
                const int64_t w = nthr > 1 ? __atomic_fetch_add(next, 1, __ATOMIC_RELAXED) : (*next)++;
                if (w >= items) break;
                int64_t jc, nc;
                const int64_t part = w % p->nrow;
                item_columns(p, nchunk, w / p->nrow, &jc, &nc);
                const int64_t np = ceil_div(nc, NR);
                const int64_t r0 = ts + ns * part / p->nrow, r1 = ts + ns * (part + 1) / p->nrow;
                if (r1 <= r0 || nc <= 0) continue;
                for (int64_t b = bs; b < be; ++b) {
                    const int64_t pc = b * kcb, kc = min64(kcb, K - pc);
                    const int beta = p->accumulate || pc > 0;
                    if (p->trans_b)
                        ks->pack(bufB, B + (size_t)(jc * K + pc) * es, K, 1, NR, nc, kc);
                    else
                        ks->pack(bufB, B + (size_t)(pc * N + jc) * es, N, 0, NR, nc, kc);
                    const char *ab = slabA + (size_t)((b - bs) * ns * MR * kcb) * es;
                    const size_t panel = (size_t)(MR * kc) * es;
                    /* Each thread starts its sweep at its own share of the rows, so that the
                     * threads pack different panels; tile rows are independent, any order
                     * gives the same bits. */
                    const int64_t rows = r1 - r0, start = rows * tid / nthr;
                    for (int64_t i = 0; i < rows; ++i) {
                        const int64_t t = r0 + (start + i) % rows, tn = r0 + (start + i + 1) % rows;
                        if (ready)
                            need_a_panel(p, A, slabA, &ready[(b - bs) * ns + (t - ts)], round, ns, ts, bs, t, b);
                        const char *ap = ab + (size_t)(t - ts) * panel;
                        const char *an = i + 1 < rows ? ab + (size_t)(tn - ts) * panel : ap;
                        for (int64_t q = 0; q < np; ++q)
                            run_tile(ks, M, N, jc, q, t, kc, ap, q + 1 < np ? ap : an, bufB, C, tile, beta);
                    }
                }
            }
            if (nthr == 1) *next = 0;
            team_barrier(team, nthr);   /* the slab buffer is packed anew next */
        }
    }
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ------------------------------------------------------------------------------------------
 * One CPU per thread of the team, for the length of a large threaded call.
 *
 * Why: a worker sleeps between calls (unless they come back to back, see team.c), and on waking
 * it (or on waking from a pause itself) the caller's thread may be queued on the same CPU as
 * the worker while another CPU is idle: on a virtual machine the kernel may judge an idle
 * virtual CPU unavailable. The two then share a core until the load balancer steps in,
 * milliseconds later. Measured on a 2-core VM, sgemm 1024^3 at 2 threads with 20 ms pauses
 * between calls: about every other call ran at 1-thread speed (220-240 against 350-450
 * GFLOP/s); with the team pinned, every call ran at 410-450, as OpenBLAS does (its workers spin
 * between calls instead).
 * The caller's thread is pinned to the CPU it is on for the call only (its own mask is restored
 * after it, so threads it starts later are not confined); worker t stays pinned to the t-th
 * allowed CPU after the caller's until the caller is found on another CPU. Taken from the
 * caller's saved mask, never from a worker's own: a worker started during a call (by team.c or
 * the OpenMP runtime) inherits the caller's one-CPU mask. TINYGRAD_REP_PIN_THREADS=0 turns it
 * off.
 * ------------------------------------------------------------------------------------------ */
typedef struct {
    int active;                     /* the caller is pinned for this call */
    int n, first;                   /* allowed CPUs, the caller's index among them */
#ifdef TR_MM_PIN
    int cpus[CPU_SETSIZE];
    cpu_set_t saved;                /* the caller's mask before the call */
#endif
} team_pins;

static int pin_enabled(void)
{
    static int cached;
    return tr_env_switch("TINYGRAD_REP_PIN_THREADS", &cached);
}

static void pin_team(team_pins *t)
{
    t->active = 0;
#ifdef TR_MM_PIN
    if (!pin_enabled() || sched_getaffinity(0, sizeof t->saved, &t->saved) != 0) return;
    const int here = sched_getcpu();
    t->n = 0;
    t->first = -1;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &t->saved)) continue;
        if (c == here) t->first = t->n;
        t->cpus[t->n++] = c;
    }
    if (t->n < 2 || t->first < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(here, &one);
    t->active = sched_setaffinity(0, sizeof one, &one) == 0;
#endif
}

static void unpin_caller(team_pins *t)
{
#ifdef TR_MM_PIN
    if (t->active) (void)sched_setaffinity(0, sizeof t->saved, &t->saved);
#else
    (void)t;
#endif
}

/* Worker tid (>= 1): onto its CPU, unless it is there already (no system call then). */
static void pin_worker(const team_pins *t, int tid)
{
#ifdef TR_MM_PIN
    static __thread int pinned_to = -1;
    if (!t->active || tid == 0) return;
    const int cpu = t->cpus[(t->first + tid) % t->n];
    if (cpu == pinned_to) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_to = sched_setaffinity(0, sizeof one, &one) == 0 ? cpu : -1;
#else
    (void)t;
    (void)tid;
#endif
}

typedef struct {
    const problem *p;
    const char *A, *B;
    char *C;
    int64_t batch;
    size_t sA, sB, sC;              /* bytes per matrix of the batch */
    char *shared_a, *threads_mem;
    size_t per_thread, bytesA, bytesB;
    int by_batch;
    const team_pins *pins;          /* the team's CPUs for this call (see pin_team) */
    team_state team;                /* counters and barrier of the threads sharing a matrix */
    int64_t *ready;                 /* a team's A panel flags (see need_a_panel), or NULL */
} run_ctx;

/* Thread tid of nthr: whole matrices (by_batch), or its share of every matrix. */
static void run_thread(run_ctx *x, int tid, int nthr)
{
    pin_worker(x->pins, tid);
    char *bufB = x->threads_mem + x->per_thread * (size_t)tid;
    char *tile = bufB + x->bytesB;
    int64_t round = 0;
    if (x->by_batch) {
        char *slabA = tile + round64((size_t)(x->p->ks->mr * x->p->ks->nr) * x->p->ks->es);
        team_state own = {{0, 0}, 0, 0};
        for (int64_t b = x->batch * tid / nthr; b < x->batch * (tid + 1) / nthr; ++b)
            gemm_matrix(x->p, x->A + b * x->sA, x->B + b * x->sB, x->C + b * x->sC, slabA, bufB, tile,
                        &own, &round, 0, 1, NULL);
    } else {
        for (int64_t b = 0; b < x->batch; ++b)
            gemm_matrix(x->p, x->A + b * x->sA, x->B + b * x->sB, x->C + b * x->sC, x->shared_a, bufB,
                        tile, &x->team, &round, tid, nthr, nthr > 1 ? x->ready : NULL);
    }
}

static void run_thread_fn(void *x, int tid, int nthr)
{
    run_thread(x, tid, nthr);
}

static int thread_count(void)
{
    int n = tr_get_num_threads();
    return n < 1 ? 1 : n;
}

static void gemm(int is_f64, int64_t batch, int64_t M, int64_t N, int64_t K, const void *A_, int trans_a,
                 const void *B_, int trans_b, void *C_, int accumulate)
{
    const kernel_set *ks = kernels(is_f64);
    const size_t es = ks->es;
    const char *A = A_, *B = B_;
    char *C = C_;
    if (batch <= 0 || M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) memset(C, 0, (size_t)(batch * M * N) * es);
        return;
    }
    const size_t sA = (size_t)(M * K) * es, sB = (size_t)(K * N) * es, sC = (size_t)(M * N) * es;
    const double work = (double)M * (double)N * (double)K;
    if (M == 1 || N == 1) {
        for (int64_t b = 0; b < batch; ++b)
            ks->vec(M, N, K, A + b * sA, trans_a, B + b * sB, trans_b, C + b * sC, accumulate);
        return;
    }
    if (work < TR_MM_SMALL) {
        for (int64_t b = 0; b < batch; ++b)
            ks->small(M, N, K, A + b * sA, trans_a, B + b * sB, trans_b, C + b * sC, accumulate);
        return;
    }

    const int MR = ks->mr, NR = ks->nr;
    problem p = {ks, M, N, K, trans_a != 0, trans_b != 0, accumulate != 0, 0, 0, 0, 0, 1, 0};
    p.kcb = even_block(K, ks->kc, 1);
    const int64_t mt = ceil_div(M, MR), nk = ceil_div(K, p.kcb);
    int64_t ncb;
    {   /* the widest B block: kcb x ncb fills about 3/4 of L2 */
        int64_t cap = b_block_bytes() / (p.kcb * (int64_t)es) / NR * NR;
        ncb = cap < NR ? NR : cap;
    }
    {   /* the A slab: up to slab_bytes(), preferring all row tiles (each B block is then
         * packed once per call; preferring all of K instead packed B once per row slab, and
         * sgemm 2048^3 and 4096^3 ran 2-5% slower), at least 16 tile rows */
        int64_t units = slab_bytes() / (MR * p.kcb * (int64_t)es);   /* tile x K block */
        int64_t st = units < mt ? units : mt;
        if (st < 16) st = 16;
        p.st = even_block(mt, st > mt ? mt : st, 1);
        int64_t kbs = units / p.st;
        if (kbs < 1) kbs = 1;
        p.kbs = even_block(nk, kbs > nk ? nk : kbs, 1);
    }

    int nt = thread_count();
    if (work * (double)batch < TR_MM_PAR_MIN) nt = 1;
    /* Many small matrices: one matrix per thread at a time; else threads share each matrix. */
    const int by_batch = nt > 1 && batch >= nt && work < 16.0 * TR_MM_PAR_MIN;
    if (nt > 1 && !by_batch) {
        /* Several work items per thread, so the share of a thread that another process delays
         * goes to the others; narrower than 4 B panels costs more A traffic than it saves. */
        const int64_t want = (int64_t)nt * TR_MM_ITEMS_PER_THREAD;
        int64_t w = ceil_div(ceil_div(N, want), NR) * NR;
        if (w < 4 * NR) w = 4 * NR;
        p.ncw = even_block(N, w < ncb ? w : ncb, NR);
        const int64_t nchunk = ceil_div(N, p.ncw);
        if (nchunk < want) {   /* few columns: cut the rows too (4 tile rows at least) */
            int64_t nrow = ceil_div(want, nchunk), most = p.st / 4;
            p.nrow = nrow < most ? nrow : (most < 1 ? 1 : most);
        }
        if (p.ncw >= 2 * NR) p.tail = nchunk < nt ? nchunk : nt;
    } else {
        p.ncw = even_block(N, ncb, NR);
    }

    /* One allocation: the shared A slab (unless threads take whole matrices), then per thread
     * a B block, an edge tile and, when threads take whole matrices, an A slab of its own. */
    const size_t bytesA = round64((size_t)(p.st * MR * p.kbs * p.kcb) * es);
    const size_t bytesB = round64((size_t)(p.kcb * p.ncw) * es);
    const size_t bytesT = round64((size_t)(MR * NR) * es);
    const size_t nflags = (size_t)(p.st * p.kbs), bytesF = by_batch ? 0 : round64(nflags * sizeof(int64_t));
    const size_t shared = by_batch ? 0 : bytesA + bytesF;
    team_pins pins;   /* only `active` is read unless pin_team fills the rest (no 4 KB zeroing per call) */
    pins.active = 0;
    run_ctx ctx = {&p, A, B, C, batch, sA, sB, sC, NULL, NULL, 0, bytesA, bytesB, by_batch, &pins, {{0, 0}, 0, 0}, NULL};
    ctx.per_thread = bytesB + bytesT + (by_batch ? bytesA : 0);
    int kept;
    char *mem = buf_take(shared + ctx.per_thread * (size_t)nt, &kept);
    if (!mem) {   /* out of memory: the unpacked loop needs none */
        for (int64_t b = 0; b < batch; ++b)
            ks->small(M, N, K, A + b * sA, trans_a, B + b * sB, trans_b, C + b * sC, accumulate);
        return;
    }
    ctx.shared_a = by_batch ? NULL : mem;
    if (!by_batch) {
        ctx.ready = (int64_t *)(mem + bytesA);
        memset(ctx.ready, 0, nflags * sizeof(int64_t));   /* every panel "not packed" (round 0) */
    }
    ctx.threads_mem = mem + shared;
#ifdef _OPENMP
    if (nt > 1) {
        /* When the team's workers are spinning (calls back to back), each is on a CPU of its
         * own: no woken worker can be queued behind the caller, and pinning would only cost
         * its three system calls (about 10 us, 2% of a 512^3 product). */
        if (work * (double)batch >= TR_MM_PIN_MIN && !tr_team_spinning(nt)) pin_team(&pins);
        /* our own workers (see team.c); OpenMP's when another thread is using them */
        if (!tr_team_run(run_thread_fn, &ctx, nt)) {
#pragma omp parallel num_threads(nt)
            run_thread(&ctx, omp_get_thread_num(), omp_get_num_threads());
        }
        unpin_caller(&pins);
    } else
#endif
    {
        run_thread(&ctx, 0, 1);
    }
    buf_give(mem, kept);
}

void tr_matmul_f32(int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, int trans_a,
                   const float *B, int trans_b, float *C, int accumulate)
{
    if (tr_matmul_small_f32(batch, M, N, K, A, trans_a, B, trans_b, C, accumulate))
        return;   /* small problems: unpacked register tiles (matmul_small.c) */
    gemm(0, batch, M, N, K, A, trans_a, B, trans_b, C, accumulate);
}

void tr_matmul_f64(int64_t batch, int64_t M, int64_t N, int64_t K, const double *A, int trans_a,
                   const double *B, int trans_b, double *C, int accumulate)
{
    if (tr_matmul_small_f64(batch, M, N, K, A, trans_a, B, trans_b, C, accumulate))
        return;   /* small problems: unpacked register tiles (matmul_small.c) */
    gemm(1, batch, M, N, K, A, trans_a, B, trans_b, C, accumulate);
}
