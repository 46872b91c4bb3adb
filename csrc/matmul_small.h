/* matmul_small.h: private to matmul.c and matmul_small.c (not part of the kernel interface in
 * tinygrad_rep.h). Declares the small-problem path that tr_matmul_f32/_f64 try first: register-
 * blocked kernels that read A and B where they are, without the packing that pays off only for
 * larger problems. Each takes tr_matmul_*'s arguments and returns 1 when it computed the product,
 * 0 when the problem is not one it takes (too large, a matrix-vector product, K == 0: the caller's
 * general path then runs).
 */
#ifndef TINYGRAD_REP_MATMUL_SMALL_H
#define TINYGRAD_REP_MATMUL_SMALL_H

#include <stdint.h>

int tr_matmul_small_f32(int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, int trans_a,
                        const float *B, int trans_b, float *C, int accumulate);
int tr_matmul_small_f64(int64_t batch, int64_t M, int64_t N, int64_t K, const double *A, int trans_a,
                        const double *B, int trans_b, double *C, int accumulate);

#endif /* TINYGRAD_REP_MATMUL_SMALL_H */
