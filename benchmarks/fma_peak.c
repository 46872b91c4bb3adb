/* fma_peak.c: the measured FMA peak of one core, the ceiling drawn in the benchmark report.
 *
 * Compiled at run time by benchmarks/ceilings.py with the system C compiler (cc, or $CC) into a
 * temporary shared library and timed through ctypes; one function per SIMD level and dtype.
 * Each loop keeps NACC independent accumulator registers, so the FMA latency is hidden and only
 * the FMA units' throughput limits it. Returns the flops done (2 per lane per FMA).
 */
#include <immintrin.h>
#define NACC 12

#define FMA_LOOP(NAME, TARGET, VEC, SET1, FMADD, ADD, STORE, LANES, T)                    \
__attribute__((target(TARGET))) long NAME(long iters, T *sink)                          \
{                                                                                         \
    VEC acc[NACC];                                                                        \
    for (int i = 0; i < NACC; i++) acc[i] = SET1((T)1 + (T)i * (T)1e-3);                \
    const VEC m = SET1((T)0.9999999), a = SET1((T)1e-7);                                  \
    for (long it = 0; it < iters; it++) {                                                 \
        for (int i = 0; i < NACC; i++) acc[i] = FMADD(acc[i], m, a);                     \
    }                                                                                     \
    VEC s = acc[0];                                                                       \
    for (int i = 1; i < NACC; i++) s = ADD(s, acc[i]);                                   \
    STORE(sink, s);                                                                       \
    return iters * NACC * LANES * 2;                                                      \
}

FMA_LOOP(fma_avx512_f32, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16, float)
FMA_LOOP(fma_avx512_f64, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, 8, double)
FMA_LOOP(fma_avx2_f32, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8, float)
FMA_LOOP(fma_avx2_f64, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, 4, double)
