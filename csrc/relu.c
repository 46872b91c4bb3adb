/* relu.c: ReLU forward and backward, float32 and float64 (see tinygrad_rep.h).
 *
 * float32 on x86-64 runs the AVX-512 or AVX2 intrinsics loops below, at the level row_level()
 * chooses at run time (softmax_rows.h; TINYGRAD_REP_ROW_SIMD caps it, for the tests). They
 * exist for large arrays: an output larger than the caches is written with streaming stores
 * (stream_stores()), which skip reading each output line from memory before writing it, a
 * third of the memory traffic of a ReLU forward. float64, and float32 below AVX2, run plain
 * element-wise loops that GCC vectorizes; target_clones builds an AVX-512, an AVX2 and a
 * baseline copy and picks one at load time, so the default build (no -march) still runs wide
 * vectors where the CPU has them. Large arrays are split into fixed chunks over OpenMP
 * threads; every element depends on its own input only, so neither the split nor the kind of
 * store can change a result.
 */
#include "tinygrad_rep.h"
#include "softmax_rows.h"

/* Function multiversioning (x86-64 GCC/Clang only; elsewhere the plain loop is compiled). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)
/* Elements per parallel work item: large enough to amortize scheduling, small enough to
 * balance two threads on a few-MB array. A multiple of 16 floats, so every chunk of an output
 * starts at the same offset within a 64-byte line as the output does. */
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
    }

DEFINE_RELU(float, f32)
DEFINE_RELU(double, f64)

#ifdef TR_AVX512_ROWS
#define TR_AVX512 __attribute__((target("avx512f")))
#define TR_AVX2 __attribute__((target("avx2")))

/* The comparisons give the same answers as the loops above: _CMP_NLE_UQ ("not <= 0", true for
 * NaN) keeps x when x > 0 or NaN and gives +0 otherwise, -0 included; _CMP_GT_OQ is false for
 * NaN. (vmaxps would turn a NaN into 0 or keep -0, depending on the operand order.) */
TR_AVX512 static inline __m512 relu16(__m512 v)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
}
TR_AVX512 static void relu_fwd_avx512(int64_t n, const float *x, float *out, int stream)
{
    STORE_ROW16(n, out, stream, NULL, NULL, relu16(LOAD16(x)));
    if (stream) _mm_sfence();
}
TR_AVX512 static void relu_bwd_avx512(int64_t n, const float *x, const float *g, float *out, int stream)
{
    const __m512 zero = _mm512_setzero_ps();
    STORE_ROW16(n, out, stream, NULL, NULL,
                _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(LOAD16(x), zero, _CMP_GT_OQ), LOAD16(g)));
    if (stream) _mm_sfence();
}

TR_AVX2 static inline __m256 relu8(__m256 v)
{
    return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ), v);
}
TR_AVX2 static void relu_fwd_avx2(int64_t n, const float *x, float *out, int stream)
{
    STORE_ROW8(n, out, stream, NULL, NULL, relu8(LOAD8(x)));
    if (stream) _mm_sfence();
}
TR_AVX2 static void relu_bwd_avx2(int64_t n, const float *x, const float *g, float *out, int stream)
{
    const __m256 zero = _mm256_setzero_ps();
    STORE_ROW8(n, out, stream, NULL, NULL, _mm256_and_ps(_mm256_cmp_ps(LOAD8(x), zero, _CMP_GT_OQ), LOAD8(g)));
    if (stream) _mm_sfence();
}

static void relu_fwd_pick_f32(int64_t n, const float *x, float *out, int stream)
{
    switch (row_level()) {
    case 2: relu_fwd_avx512(n, x, out, stream); break;
    case 1: relu_fwd_avx2(n, x, out, stream); break;
    default: relu_fwd_f32(n, x, out); break;
    }
}
static void relu_bwd_pick_f32(int64_t n, const float *x, const float *g, float *out, int stream)
{
    switch (row_level()) {
    case 2: relu_bwd_avx512(n, x, g, out, stream); break;
    case 1: relu_bwd_avx2(n, x, g, out, stream); break;
    default: relu_bwd_f32(n, x, g, out); break;
    }
}
#define STREAM_STORES(bytes) stream_stores(bytes)
#else
#define relu_fwd_pick_f32(n, x, out, stream) ((void)(stream), relu_fwd_f32(n, x, out))
#define relu_bwd_pick_f32(n, x, g, out, stream) ((void)(stream), relu_bwd_f32(n, x, g, out))
#define STREAM_STORES(bytes) 0
#endif
#define relu_fwd_pick_f64(n, x, out, stream) ((void)(stream), relu_fwd_f64(n, x, out))
#define relu_bwd_pick_f64(n, x, g, out, stream) ((void)(stream), relu_bwd_f64(n, x, g, out))

/* The chunks of [0, n) one thread at a time or over OpenMP threads; CALL(lo, len) per chunk. */
#define FOR_CHUNKS(n, CALL)                                                                  \
    do {                                                                                     \
        int nt_ = threads_for(n);                                                            \
        if (nt_ <= 1) {                                                                      \
            int64_t lo = 0, len = (n);                                                       \
            CALL;                                                                            \
            break;                                                                           \
        }                                                                                    \
        int64_t chunks_ = ((n) + TR_CHUNK - 1) / TR_CHUNK;                                   \
        _Pragma("omp parallel for num_threads(nt_) schedule(static)")                        \
        for (int64_t c_ = 0; c_ < chunks_; ++c_) {                                           \
            int64_t lo = c_ * TR_CHUNK, len = (n) - lo < TR_CHUNK ? (n) - lo : TR_CHUNK;      \
            CALL;                                                                            \
        }                                                                                    \
    } while (0)

#define DEFINE_RELU_DRIVERS(T, SUF)                                                          \
    void tr_relu_forward_##SUF(int64_t n, const T *x, T *out)                                \
    {                                                                                        \
        const int st = n > 0 && STREAM_STORES(n * (int64_t)sizeof(T));                       \
        FOR_CHUNKS(n, relu_fwd_pick_##SUF(len, x + lo, out + lo, st));                       \
    }                                                                                        \
    void tr_relu_backward_##SUF(int64_t n, const T *x, const T *grad, T *out)                \
    {                                                                                        \
        const int st = n > 0 && STREAM_STORES(n * (int64_t)sizeof(T));                       \
        FOR_CHUNKS(n, relu_bwd_pick_##SUF(len, x + lo, grad + lo, out + lo, st));            \
    }

DEFINE_RELU_DRIVERS(float, f32)
DEFINE_RELU_DRIVERS(double, f64)
