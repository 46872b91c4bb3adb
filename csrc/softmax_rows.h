/* softmax_rows.h: private to softmax.c and softmax_x86.c (not part of the kernel interface in
 * tinygrad_rep.h). Declares the x86-intrinsic float32 row kernels of softmax_x86.c, which
 * softmax.c's drivers call in place of its portable rows when row_level() says the CPU has them.
 * Each handles rows [r0, r1) of a rows x cols array and computes exactly what the portable row
 * kernel of the same name (without the suffix) computes.
 */
#ifndef TINYGRAD_REP_SOFTMAX_ROWS_H
#define TINYGRAD_REP_SOFTMAX_ROWS_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_AVX512_ROWS 1

/* 2 = AVX-512 rows, 1 = AVX2 + FMA rows, 0 = the portable target_clones rows of softmax.c. */
int row_level(void);

void softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out);
void log_softmax_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out);
void softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out);
void log_softmax_bwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out);
void ce_fwd_rows_avx512(int64_t r0, int64_t r1, int64_t cols, const float *x, const int64_t *targets, float *losses, float *probs);

void softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out);
void log_softmax_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out);
void softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out);
void log_softmax_bwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *y, const float *g, float *out);
void ce_fwd_rows_avx2(int64_t r0, int64_t r1, int64_t cols, const float *x, const int64_t *targets, float *losses, float *probs);
#endif

#endif /* TINYGRAD_REP_SOFTMAX_ROWS_H */
