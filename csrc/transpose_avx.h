/* transpose_avx.h: private to matmul.c and matmul_small.c. The AVX block transposes both matmul
 * paths pack transposed operands with: one 8 x 8 block of floats, one 4 x 4 block of doubles.
 * o[q * ld + p] = s[p * ls + q] for p, q < 8 (floats) or < 4 (doubles). Only compiled where
 * the caller includes <immintrin.h> on x86.
 */
#ifndef TINYGRAD_REP_TRANSPOSE_AVX_H
#define TINYGRAD_REP_TRANSPOSE_AVX_H

#include <immintrin.h>
#include <stdint.h>

__attribute__((target("avx"))) static inline __attribute__((always_inline)) void
tr_transpose8x8_f32_avx(const float *s, int64_t ls, float *o, int64_t ld)
{
    __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + ls);
    __m256 x2 = _mm256_loadu_ps(s + 2 * ls), x3 = _mm256_loadu_ps(s + 3 * ls);
    __m256 x4 = _mm256_loadu_ps(s + 4 * ls), x5 = _mm256_loadu_ps(s + 5 * ls);
    __m256 x6 = _mm256_loadu_ps(s + 6 * ls), x7 = _mm256_loadu_ps(s + 7 * ls);
    __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
    __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
    __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
    __m256 t6 = _mm256_unpacklo_ps(x6, x7), t7 = _mm256_unpackhi_ps(x6, x7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(o + ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(o + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(o + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(o + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(o + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(o + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(o + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

__attribute__((target("avx"))) static inline __attribute__((always_inline)) void
tr_transpose4x4_f64_avx(const double *s, int64_t ls, double *o, int64_t ld)
{
    __m256d x0 = _mm256_loadu_pd(s), x1 = _mm256_loadu_pd(s + ls);
    __m256d x2 = _mm256_loadu_pd(s + 2 * ls), x3 = _mm256_loadu_pd(s + 3 * ls);
    __m256d t0 = _mm256_unpacklo_pd(x0, x1), t1 = _mm256_unpackhi_pd(x0, x1);
    __m256d t2 = _mm256_unpacklo_pd(x2, x3), t3 = _mm256_unpackhi_pd(x2, x3);
    _mm256_storeu_pd(o, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(o + ld, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(o + 2 * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(o + 3 * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
}

#endif /* TINYGRAD_REP_TRANSPOSE_AVX_H */
