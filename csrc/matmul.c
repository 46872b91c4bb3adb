/* matmul.c: C = op(A) @ op(B) for float32 and float64 (see tinygrad_rep.h).
 * First version: a plain loop order the compiler vectorizes (i-k-j), correct for every
 * transpose/accumulate combination; the packed, register-tiled version replaces it. */
#include "tinygrad_rep.h"

#define DEFINE_MATMUL(NAME, T)                                                              \
void NAME(int64_t batch, int64_t M, int64_t N, int64_t K, const T *A, int trans_a,          \
          const T *B, int trans_b, T *C, int accumulate)                                    \
{                                                                                           \
    for (int64_t b = 0; b < batch; ++b) {                                                   \
        const T *a = A + b * M * K, *bb = B + b * K * N;                                    \
        T *c = C + b * M * N;                                                               \
        for (int64_t i = 0; i < M; ++i) {                                                   \
            T *crow = c + i * N;                                                            \
            if (!accumulate) for (int64_t j = 0; j < N; ++j) crow[j] = 0;                   \
            for (int64_t k = 0; k < K; ++k) {                                               \
                T aik = trans_a ? a[k * M + i] : a[i * K + k];                              \
                if (trans_b) for (int64_t j = 0; j < N; ++j) crow[j] += aik * bb[j * K + k];\
                else         for (int64_t j = 0; j < N; ++j) crow[j] += aik * bb[k * N + j];\
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

DEFINE_MATMUL(tr_matmul_f32, float)
DEFINE_MATMUL(tr_matmul_f64, double)
