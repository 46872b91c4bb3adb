/* tinygrad_rep.h: the one declaration of every C kernel (the truth both bindings follow).
 *
 * Conventions for every kernel:
 *  - Arrays are dense, C-contiguous, row-major; sizes are int64_t element counts >= 0.
 *  - The caller allocates every output; kernels never allocate what they return.
 *  - "overwrites" means the output's old contents are ignored; "accumulates" means += .
 *  - Pointers and sizes are validated by the binding layer before a call: kernels trust that
 *    sizes match the buffers and indices are in range. What each argument is (a size, an array
 *    of so many elements, an index array and its range, ...) is said once, in the kernel's row
 *    of tinygrad_rep/backend/kernels.py, which both bindings and the checks read.
 *  - No kernel reads or writes outside [ptr, ptr + size); a zero size touches no memory.
 *  - Results do not depend on the thread count (each output element is computed by one
 *    thread, in one fixed order).
 * The cffi cdef is generated from this file with preprocessor lines dropped, so keep
 * declarations on plain lines (no macros inside prototypes).
 * Adding a kernel: its prototype here, its name in TR_KERNELS at the end, its row in kernels.py
 * (docs/architecture.md, "Adding a kernel", lists every file it touches).
 */
#ifndef TINYGRAD_REP_H
#define TINYGRAD_REP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime: threads and SIMD level ---- */

/* Set the number of OpenMP threads kernels may use (n < 1 means 1). */
void tr_set_num_threads(int n);
/* The number of threads kernels may use. */
int tr_get_num_threads(void);
/* The SIMD level the dispatched kernels run at: "avx512f", "avx2" or "default". */
const char *tr_simd_level(void);
/* The compiler flags the kernels were built with (a static string). */
const char *tr_build_flags(void);

/* ---- matmul (matmul.c) ----
 * C[b] = op(A[b]) @ op(B[b])   (overwrites C), or
 * C[b] += op(A[b]) @ op(B[b])  when accumulate != 0,   for b in [0, batch).
 * op(A) is M x K: A is stored M x K, or K x M when trans_a != 0.
 * op(B) is K x N: B is stored K x N, or N x K when trans_b != 0.
 * Batches are stored one after another: A has batch*M*K elements, B batch*K*N, C batch*M*N.
 * The kernel set (AVX-512, AVX2 + FMA, portable) is chosen at run time; for tests,
 * TINYGRAD_REP_MM_SIMD=avx2|default caps it and TINYGRAD_REP_MM_SLAB_BYTES shrinks the packed
 * A slab (both read at the first call). The bits do not depend on the thread count.
 */
void tr_matmul_f32(int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, int trans_a, const float *B, int trans_b, float *C, int accumulate);
void tr_matmul_f64(int64_t batch, int64_t M, int64_t N, int64_t K, const double *A, int trans_a, const double *B, int trans_b, double *C, int accumulate);

/* ---- ReLU (relu.c), n elements ----
 * forward:  out[i] = x[i] > 0 ? x[i] : 0, NaN stays NaN            (overwrites out)
 * backward: out[i] = x[i] > 0 ? grad[i] : 0                         (overwrites out)
 */
void tr_relu_forward_f32(int64_t n, const float *x, float *out);
void tr_relu_forward_f64(int64_t n, const double *x, double *out);
void tr_relu_backward_f32(int64_t n, const float *x, const float *grad, float *out);
void tr_relu_backward_f64(int64_t n, const double *x, const double *grad, double *out);

/* ---- softmax and log-softmax along rows of a rows x cols array (softmax.c) ----
 * softmax_forward:      out = exp(x - max) / sum(exp(x - max))             (overwrites out)
 * softmax_backward:     out = y * (grad - sum(grad * y)), y = softmax(x)   (overwrites out)
 * log_softmax_forward:  out = x - max - log(sum(exp(x - max)))             (overwrites out)
 * log_softmax_backward: out = grad - exp(y) * sum(grad), y = log_softmax(x) (overwrites out)
 * -inf entries give probability 0 / log-probability -inf; a row of all -inf gives NaN.
 * float32 runs intrinsics row loops chosen at run time (AVX-512F, else AVX2 + FMA, else the
 * target_clones loops; TINYGRAD_REP_ROW_SIMD=avx2|default caps the choice, for tests): the last
 * bits may differ between CPUs, never between thread counts.
 */
void tr_softmax_forward_f32(int64_t rows, int64_t cols, const float *x, float *out);
void tr_softmax_forward_f64(int64_t rows, int64_t cols, const double *x, double *out);
void tr_softmax_backward_f32(int64_t rows, int64_t cols, const float *y, const float *grad, float *out);
void tr_softmax_backward_f64(int64_t rows, int64_t cols, const double *y, const double *grad, double *out);
void tr_log_softmax_forward_f32(int64_t rows, int64_t cols, const float *x, float *out);
void tr_log_softmax_forward_f64(int64_t rows, int64_t cols, const double *x, double *out);
void tr_log_softmax_backward_f32(int64_t rows, int64_t cols, const float *y, const float *grad, float *out);
void tr_log_softmax_backward_f64(int64_t rows, int64_t cols, const double *y, const double *grad, double *out);

/* ---- fused log-softmax + cross-entropy over rows x cols logits (softmax.c) ----
 * forward:  losses[r] = logsumexp(logits[r]) - logits[r, targets[r]]  (overwrites losses)
 *           probs = softmax(logits)                                   (overwrites probs)
 *           *loss = the mean of losses, summed in numpy's pairwise order (NaN when rows == 0),
 *           so it equals losses.mean() bit for bit
 * backward: out[r, c] = (probs[r, c] - (c == targets[r])) * grad[r]    (overwrites out)
 * targets[r] must be in [0, cols) (checked by the binding layer).
 */
void tr_cross_entropy_forward_f32(int64_t rows, int64_t cols, const float *logits, const int64_t *targets, float *losses, float *probs, float *loss);
void tr_cross_entropy_forward_f64(int64_t rows, int64_t cols, const double *logits, const int64_t *targets, double *losses, double *probs, double *loss);
void tr_cross_entropy_backward_f32(int64_t rows, int64_t cols, const float *probs, const int64_t *targets, const float *grad, float *out);
void tr_cross_entropy_backward_f64(int64_t rows, int64_t cols, const double *probs, const int64_t *targets, const double *grad, double *out);

/* ---- embedding rows (embedding.c), weight is V x d ----
 * gather:      out[i, :] = weight[indices[i], :] for i < n             (overwrites out, n x d)
 * scatter_add: out[indices[i], :] += grad[i, :] for i < n, in order i  (accumulates into V x d)
 * indices[i] must be in [0, V) (checked by the binding layer).
 */
void tr_embedding_gather_f32(int64_t n, int64_t d, const float *weight, const int64_t *indices, float *out);
void tr_embedding_gather_f64(int64_t n, int64_t d, const double *weight, const int64_t *indices, double *out);
void tr_embedding_scatter_add_f32(int64_t n, int64_t d, const float *grad, const int64_t *indices, float *out);
void tr_embedding_scatter_add_f64(int64_t n, int64_t d, const double *grad, const int64_t *indices, double *out);

/* ==== word2vec: skip-gram with negative sampling (sgns.c) ====
 * sgns_forward_backward, B rows with T = 1 + K target rows each (T >= 1), center B x d,
 * targets B x T x d (targets[b, 0] the true context, the rest negatives):
 *   s[b, t] = center[b] . targets[b, t],   e[b, t] = sigmoid(s[b, t]) - (t == 0)
 *   losses[b]          = -log sigmoid(s[b, 0]) - sum_{t >= 1} log sigmoid(-s[b, t])   (overwrites, B)
 *   grad_center[b]     = sum_t e[b, t] * targets[b, t]                  (overwrites, B x d)
 *   grad_targets[b, t] = e[b, t] * center[b]                            (overwrites, B x T x d)
 * sgns_sgd: the same loss over n index pairs, trained in place, pair after pair: with
 *   c = W_in[inputs[i]] and o_t = W_out[targets[i * T + t]] as they are when pair i starts,
 *   losses[i] = its loss (overwrites), then o_t -= lr * e_t * c for every t (a row listed twice
 *   gets both), then c -= lr * sum_t e_t * o_t. work: T + d scratch values. W_in and W_out must
 *   not overlap; indices are in range of their matrix (checked by the binding layer). One thread.
 * sample_negatives: out[r * k + j] (rows x k) = a word id drawn from the Walker alias table
 *   (prob[V] in [0, 1], alias[V] in [0, V)): for attempt a = 0, 1, ..., 15
 *     x = splitmix64(seed + ((r * k + j) * 16 + a + 1) * 0x9E3779B97F4A7C15)   (mod 2^64)
 *     i = ((x mod 2^32) * V) >> 32,  word = (x >> 32) / 2^32 < prob[i] ? i : alias[i]
 *   keeping the first word != avoid[r] (the 16th attempt in any case; avoid[r] = -1 avoids
 *   nothing). A draw depends only on (seed, r, j): not on threads or earlier calls.
 */
void tr_sgns_forward_backward_f32(int64_t B, int64_t T, int64_t d, const float *center, const float *targets, float *losses, float *grad_center, float *grad_targets);
void tr_sgns_forward_backward_f64(int64_t B, int64_t T, int64_t d, const double *center, const double *targets, double *losses, double *grad_center, double *grad_targets);
void tr_sgns_sgd_f32(int64_t n, int64_t T, int64_t d, float *W_in, float *W_out, const int64_t *inputs, const int64_t *targets, float lr, float *losses, float *work);
void tr_sgns_sgd_f64(int64_t n, int64_t T, int64_t d, double *W_in, double *W_out, const int64_t *inputs, const int64_t *targets, double lr, double *losses, double *work);
void tr_sample_negatives(int64_t rows, int64_t k, int64_t V, const double *prob, const int64_t *alias, const int64_t *avoid, uint64_t seed, int64_t *out);

/* ==== optimizers (optim.c) ====
 * adam_step: one Adam / AdamW update of n parameters, in place on param, exp_avg (m) and
 * exp_avg_sq (v); grad is read only. The four arrays must not overlap (checked by the binding
 * layer). PyTorch's rule, each coefficient rounded to the array's dtype as numpy does:
 *   decoupled == 0 (Adam, L2 decay):  g = grad + weight_decay * param
 *   decoupled != 0 (AdamW):           param *= 1 - lr * weight_decay (when weight_decay != 0), g = grad
 *   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
 *   param -= m / (sqrt(v) / bias2_sqrt + eps) * step_size
 * with the bias corrections computed by the caller for step t >= 1:
 *   step_size = lr / (1 - beta1^t),   bias2_sqrt = sqrt(1 - beta2^t).
 */
void tr_adam_step_f32(int64_t n, float *param, const float *grad, float *exp_avg, float *exp_avg_sq, double beta1, double beta2, double eps, double weight_decay, int decoupled, double lr, double step_size, double bias2_sqrt);
void tr_adam_step_f64(int64_t n, double *param, const double *grad, double *exp_avg, double *exp_avg_sq, double beta1, double beta2, double eps, double weight_decay, int decoupled, double lr, double step_size, double bias2_sqrt);

/* ==== the list of kernels ====
 * Every kernel above, by its name without "tr_": bind_pybind.cpp binds each one through its row
 * of the kernel table (tinygrad_rep/backend/kernels.py), and a test checks that this list, the
 * prototypes, the table and numpy_ref agree. A new kernel is added here too.
 */
#define TR_KERNELS(X) \
    X(matmul_f32) X(matmul_f64) \
    X(relu_forward_f32) X(relu_forward_f64) X(relu_backward_f32) X(relu_backward_f64) \
    X(softmax_forward_f32) X(softmax_forward_f64) X(softmax_backward_f32) X(softmax_backward_f64) \
    X(log_softmax_forward_f32) X(log_softmax_forward_f64) \
    X(log_softmax_backward_f32) X(log_softmax_backward_f64) \
    X(cross_entropy_forward_f32) X(cross_entropy_forward_f64) \
    X(cross_entropy_backward_f32) X(cross_entropy_backward_f64) \
    X(embedding_gather_f32) X(embedding_gather_f64) \
    X(embedding_scatter_add_f32) X(embedding_scatter_add_f64) \
    X(sgns_forward_backward_f32) X(sgns_forward_backward_f64) X(sgns_sgd_f32) X(sgns_sgd_f64) \
    X(sample_negatives) \
    X(adam_step_f32) X(adam_step_f64)

#ifdef __cplusplus
}
#endif

#endif /* TINYGRAD_REP_H */
