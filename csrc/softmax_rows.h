/* softmax_rows.h: private to softmax.c, softmax_x86.c and relu.c (not part of the kernel
 * interface in tinygrad_rep.h). Declares the x86-intrinsic float32 row kernels of softmax_x86.c,
 * which softmax.c's drivers call in place of its portable rows when row_level() says the CPU has
 * them, and the run-time choices those kernels and relu.c's share: the SIMD level and whether an
 * output is written with streaming stores. Each row kernel handles rows [r0, r1) of a rows x cols
 * array and computes exactly what the portable row kernel of the same name (without the suffix)
 * computes; `stream` only changes how the output reaches memory, never a value.
 */
#ifndef TINYGRAD_REP_SOFTMAX_ROWS_H
#define TINYGRAD_REP_SOFTMAX_ROWS_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_AVX512_ROWS 1

/* 2 = AVX-512 rows, 1 = AVX2 + FMA rows, 0 = the portable target_clones rows of softmax.c. */
int row_level(void);

/* 1 when an output of `bytes` bytes should be written with non-temporal (streaming) stores:
 * outputs far larger than the last-level cache, which would only evict what is there and cost a
 * read of every line before it is written (see softmax_x86.c). */
int stream_stores(int64_t bytes);

void softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out, int stream);
void log_softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out, int stream);
void softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out, int stream);
void log_softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out, int stream);
void ce_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, const int64_t *targets, float *losses, float *probs);

void softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out, int stream);
void log_softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out, int stream);
void softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out, int stream);
void log_softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out, int stream);
void ce_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, const int64_t *targets, float *losses, float *probs);

/* ---- storing one row (or one chunk of an element-wise kernel) ----------------------------
 * STORE_ROW16(n, y, stream, pf_a, pf_b, VAL) writes y[j] = VAL for j in [0, n), 16 floats at a
 * time. VAL is an __m512 expression of the lanes j .. j+15 in which LOAD16(p) reads p[j .. j+15]
 * (lanes past n read as 0 and are never stored). With `stream`, the 64-byte lines that lie
 * wholly inside [y, y + n) are written with non-temporal stores: the line goes to memory
 * without first being read into the cache, and without evicting what is cached. The floats
 * before the first such line and after the last get ordinary masked stores, so nothing outside
 * [y, y + n) is touched and misaligned rows work. pf_a, pf_b (const char *, or NULL) are
 * prefetched into L2 at the same byte offset as each block, used to pull the next row of the
 * inputs while this one computes. The caller issues _mm_sfence() after its last streaming
 * store (they are weakly ordered). STORE_ROW8 / LOAD8 are the same with AVX2 (8 floats; the
 * streaming stores need 32-byte alignment).
 * The functions calling these carry the target attribute of their instruction set. */
#include <immintrin.h>

#define TR_PREFETCH_PAIR(pf_a, pf_b, off)                                                    \
    do {                                                                                     \
        if (pf_a) _mm_prefetch((pf_a) + (off), _MM_HINT_T1);                                 \
        if (pf_b) _mm_prefetch((pf_b) + (off), _MM_HINT_T1);                                 \
    } while (0)

#define LOAD16(p) (full_ ? _mm512_loadu_ps((p) + j_) : _mm512_maskz_loadu_ps(k_, (p) + j_))
#define STORE_ROW16(n, y, stream, pf_a, pf_b, VAL)                                            \
    do {                                                                                     \
        const int64_t n_ = (n);                                                              \
        float *const y_ = (y);                                                               \
        const char *const pa_ = (pf_a), *const pb_ = (pf_b);                                 \
        int64_t j_ = 0;                                                                      \
        if (stream) {                                                                        \
            int64_t h_ = (int64_t)((0 - (uintptr_t)y_) & 63) / 4; /* floats to the 1st line */ \
            if (h_ > n_) h_ = n_;                                                            \
            if (h_ > 0) {                                                                    \
                const int full_ = 0;                                                         \
                const __mmask16 k_ = (__mmask16)((1u << h_) - 1u);                           \
                _mm512_mask_storeu_ps(y_, k_, (VAL));                                        \
                j_ = h_;                                                                     \
            }                                                                                \
            for (; j_ + 16 <= n_; j_ += 16) {                                                \
                const int full_ = 1;                                                         \
                const __mmask16 k_ = (__mmask16)0xFFFF;                                      \
                (void)k_;                                                                    \
                TR_PREFETCH_PAIR(pa_, pb_, 4 * j_);                                          \
                _mm512_stream_ps(y_ + j_, (VAL));                                            \
            }                                                                                \
        } else {                                                                             \
            for (; j_ + 16 <= n_; j_ += 16) {                                                \
                const int full_ = 1;                                                         \
                const __mmask16 k_ = (__mmask16)0xFFFF;                                      \
                (void)k_;                                                                    \
                TR_PREFETCH_PAIR(pa_, pb_, 4 * j_);                                          \
                _mm512_storeu_ps(y_ + j_, (VAL));                                            \
            }                                                                                \
        }                                                                                    \
        if (j_ < n_) {                                                                       \
            const int full_ = 0;                                                             \
            const __mmask16 k_ = (__mmask16)((1u << (n_ - j_)) - 1u);                        \
            _mm512_mask_storeu_ps(y_ + j_, k_, (VAL));                                       \
        }                                                                                    \
    } while (0)

/* lanes [0, r) set, 0 <= r <= 8: the 8 entries of bits starting at 8 - r */
__attribute__((target("avx2"))) static inline __m256i tr_tail_mask8(int64_t r)
{
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - r));
}

#define LOAD8(p) (full_ ? _mm256_loadu_ps((p) + j_) : _mm256_maskload_ps((p) + j_, k_))
#define STORE_ROW8(n, y, stream, pf_a, pf_b, VAL)                                             \
    do {                                                                                     \
        const int64_t n_ = (n);                                                              \
        float *const y_ = (y);                                                               \
        const char *const pa_ = (pf_a), *const pb_ = (pf_b);                                 \
        int64_t j_ = 0;                                                                      \
        if (stream) {                                                                        \
            int64_t h_ = (int64_t)((0 - (uintptr_t)y_) & 31) / 4;                            \
            if (h_ > n_) h_ = n_;                                                            \
            if (h_ > 0) {                                                                    \
                const int full_ = 0;                                                         \
                const __m256i k_ = tr_tail_mask8(h_);                                        \
                _mm256_maskstore_ps(y_, k_, (VAL));                                          \
                j_ = h_;                                                                     \
            }                                                                                \
            for (; j_ + 8 <= n_; j_ += 8) {                                                  \
                const int full_ = 1;                                                         \
                const __m256i k_ = _mm256_set1_epi32(-1);                                    \
                (void)k_;                                                                    \
                if ((j_ & 8) == 0) TR_PREFETCH_PAIR(pa_, pb_, 4 * j_);                       \
                _mm256_stream_ps(y_ + j_, (VAL));                                            \
            }                                                                                \
        } else {                                                                             \
            for (; j_ + 8 <= n_; j_ += 8) {                                                  \
                const int full_ = 1;                                                         \
                const __m256i k_ = _mm256_set1_epi32(-1);                                    \
                (void)k_;                                                                    \
                if ((j_ & 8) == 0) TR_PREFETCH_PAIR(pa_, pb_, 4 * j_);                       \
                _mm256_storeu_ps(y_ + j_, (VAL));                                            \
            }                                                                                \
        }                                                                                    \
        if (j_ < n_) {                                                                       \
            const int full_ = 0;                                                             \
            const __m256i k_ = tr_tail_mask8(n_ - j_);                                       \
            _mm256_maskstore_ps(y_ + j_, k_, (VAL));                                         \
        }                                                                                    \
    } while (0)
#endif

#endif /* TINYGRAD_REP_SOFTMAX_ROWS_H */
