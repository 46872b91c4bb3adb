/* copy_peak.c: the copy loops of the copy-bandwidth ceiling (benchmarks/ceilings.py compiles this
 * file at run time, as it does fma_peak.c). np.copyto writes with ordinary stores, which read
 * each destination line from memory before writing it; our kernels write outputs larger than
 * the caches with streaming (non-temporal) stores instead (csrc/softmax_rows.h), which move a
 * third less. So the ceiling they are held to is a copy with the same stores: these loops, one
 * per SIMD level, stream every whole 64-byte line of the destination and copy the few floats
 * before the first and after the last one plainly, like the kernels.
 */
#include <immintrin.h>
#include <stdint.h>

__attribute__((target("avx512f"))) void copy_stream_avx512(long n, const float *src, float *dst)
{
    long j = 0, head = (long)(((0 - (uintptr_t)dst) & 63) / 4);
    for (; j < head && j < n; ++j) dst[j] = src[j];
    for (; j + 16 <= n; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(src + j));
    for (; j < n; ++j) dst[j] = src[j];
    _mm_sfence();
}

__attribute__((target("avx2"))) void copy_stream_avx2(long n, const float *src, float *dst)
{
    long j = 0, head = (long)(((0 - (uintptr_t)dst) & 31) / 4);
    for (; j < head && j < n; ++j) dst[j] = src[j];
    for (; j + 8 <= n; j += 8) _mm256_stream_ps(dst + j, _mm256_loadu_ps(src + j));
    for (; j < n; ++j) dst[j] = src[j];
    _mm_sfence();
}
