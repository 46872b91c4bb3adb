/* softmax.c: softmax, log-softmax and fused cross-entropy along rows, float32 and float64
 * (see tinygrad_rep.h for what each kernel computes).
 *
 * How it is made fast without -ffast-math:
 *  - libm's expf() is a call per element and stops the vectorizer, so float32 uses tr_expf()
 *    below: range reduction plus a polynomial, written branch-free so that every loop calling it
 *    vectorizes. float64 keeps libm's exp() (accuracy first; float64 is the checking dtype).
 *  - A floating-point sum over a row does not vectorize without -ffast-math (the compiler may
 *    not reorder additions). The sums below keep LANES independent partial sums and fold them
 *    in a fixed order at the end: vectorizable, and the order of operations is written out in
 *    the source, not chosen by the compiler. The row max is exact whatever the order, so it
 *    uses an OpenMP simd reduction.
 *  - target_clones builds AVX-512, AVX2 and baseline copies of the row loops; the AVX-512 copy
 *    also fuses multiply-adds (see TR_CLONES), so its last bits may differ from the others'.
 *  - On CPUs with AVX-512F (or AVX2 + FMA) the float32 kernels run hand-written intrinsics
 *    instead (softmax_x86.c): about 1.5x faster than the compiler's clone.
 *  - Rows are split over OpenMP threads only for large inputs; each row is computed by one
 *    thread with the same code, so results do not depend on the thread count.
 *
 * Special values follow the math: the row max is subtracted first (huge logits are safe); -inf
 * entries give probability 0 and log-probability -inf; a NaN anywhere in a row, a +inf, or a row
 * that is all -inf makes that row NaN, as the numpy reference does.
 */
#include "tinygrad_rep.h"
#include "softmax_rows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fp-contract=fast lets the AVX-512 clone fuse a*b+c into one FMA (the exp polynomial is a chain
 * of them): about 25% faster here. -std=c11 turns contraction off by default, and the AVX2 and
 * baseline clones have no FMA instruction, so those compute without it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TR_NO_CLONES)
#define TR_CLONES \
    __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=fast")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
#define TR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TR_CLONES
#endif

/* Below this many elements a thread team costs more than it saves. */
#define TR_PAR_MIN ((int64_t)1 << 16)

/* Partial results kept by the reductions: 16 floats fill one AVX-512 register, two AVX2 ones. */
#define LANES 16

/* ---- a vectorizable expf ----------------------------------------------------------------
 * exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n*ln2 in [-ln2/2, ln2/2] (Cody-Waite: ln2
 * split into a part exact in few bits and a correction, so n*ln2_hi is exact). exp(r) is
 * 1 + r + r^2 * P(r), P a degree-4 fit of relative error 3e-9 on that interval (well below
 * float32's 6e-8 half-ulp). 2^n is built from its bits, in two halves so that 2^n may be
 * subnormal (n down to -151) while each half stays a normal float; the last multiply is then
 * the only rounding of a subnormal result. Measured against float64 exp on 550 million floats
 * spread over [-110, 90]: at most 1.01 ulp (subnormal results counted in units of 2^-149);
 * tests/test_kernels.py keeps checking <= 2 ulp.
 *
 * Special values are patched at the end by two selects on the input, rather than by clamping x
 * first: a clamp to a constant lets GCC split the loop body into constant cases and costs a
 * quarter more instructions. Outside [-105, 89] (inf included) the arithmetic above computes
 * garbage that is then replaced by 0 or +inf; a NaN fails both comparisons and flows through
 * as NaN. n is read from the bits of the rounded value, never by converting a float to int
 * (undefined behaviour for NaN and huge values), and the integer steps cannot overflow.
 */
static inline float tr_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: x + magic rounds x to an integer */
    const uint32_t magic_bits = 0x4B400000u;
    float t = x * 1.44269504088896341f + magic; /* x * log2(e), rounded */
    float n = t - magic;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t ni = (int32_t)(tb - magic_bits); /* n as an integer; in [-152, 129] for x in range */
    float r = x - n * 0.693359375f;          /* ln2_hi */
    r = r - n * -2.12194440e-4f;             /* ln2_lo */
    float p = 1.3814630e-3f;
    p = p * r + 8.3687101e-3f;
    p = p * r + 4.1668385e-2f;
    p = p * r + 1.6666521e-1f;
    p = p * r + 4.9999994e-1f;
    p = p * (r * r) + r + 1.0f;
    /* n1 = floor(n / 2) (GCC's >> on negative ints is arithmetic), n2 = n - n1: for n in
     * [-152, 129] both lie in [-76, 65], so 2^n1 and 2^n2 are normal floats. */
    int32_t n1 = ni >> 1, n2 = ni - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    float e = p * s1 * s2;
    e = x < -105.0f ? 0.0f : e;     /* exp(x) < 2^-151 rounds to 0; also x = -inf */
    e = x > 89.0f ? INFINITY : e;   /* exp(x) > FLT_MAX; also x = +inf */
    return e;
}

/* ---- row reductions in a fixed order (vectorizable, see the file comment) ---- */

#define DEFINE_REDUCTIONS(T, SUF)                                                            \
    /* Max over the row. Max is exact, so the order in which an OpenMP simd reduction visits  \
     * the entries cannot change it (only which of -0/+0 or which NaN wins, and a NaN reaches \
     * the output through exp anyway); the compiler would not vectorize it otherwise. */     \
    static inline T row_max_##SUF(int64_t n, const T *restrict x)                            \
    {                                                                                        \
        T m = -INFINITY;                                                                     \
        _Pragma("omp simd reduction(max:m)")                                                 \
        for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;                             \
        return m;                                                                            \
    }                                                                                        \
    static inline T row_sum_##SUF(int64_t n, const T *restrict x)                            \
    {                                                                                        \
        T acc[LANES] = {0};                                                                  \
        int64_t j = 0;                                                                       \
        for (; j + LANES <= n; j += LANES)                                                   \
            for (int k = 0; k < LANES; ++k) acc[k] += x[j + k];                              \
        for (int k = 0; j + k < n; ++k) acc[k] += x[j + k];                                  \
        for (int w = LANES / 2; w > 0; w /= 2)                                               \
            for (int k = 0; k < w; ++k) acc[k] += acc[k + w];                                \
        return acc[0];                                                                       \
    }                                                                                        \
    static inline T row_dot_##SUF(int64_t n, const T *restrict x, const T *restrict y)       \
    {                                                                                        \
        T acc[LANES] = {0};                                                                  \
        int64_t j = 0;                                                                       \
        for (; j + LANES <= n; j += LANES)                                                   \
            for (int k = 0; k < LANES; ++k) acc[k] += x[j + k] * y[j + k];                   \
        for (int k = 0; j + k < n; ++k) acc[k] += x[j + k] * y[j + k];                       \
        for (int w = LANES / 2; w > 0; w /= 2)                                               \
            for (int k = 0; k < w; ++k) acc[k] += acc[k + w];                                \
        return acc[0];                                                                       \
    }

DEFINE_REDUCTIONS(float, f32)
DEFINE_REDUCTIONS(double, f64)

/* ---- row kernels: each handles rows [r0, r1) of a rows x cols array ----
 * EXP is tr_expf for float32 and libm exp for float64; LOG is only called once per row. */

#define DEFINE_ROW_KERNELS(T, SUF, EXP, LOG)                                                 \
    /* y = exp(x - max) / sum; returns the sum and stores the max (cross-entropy needs both) */ \
    static inline T softmax_row_##SUF(int64_t n, const T *restrict x, T *restrict y,         \
                                      T *max_out)                                            \
    {                                                                                        \
        T m = row_max_##SUF(n, x);                                                           \
        for (int64_t j = 0; j < n; ++j) y[j] = EXP(x[j] - m);                                \
        T s = row_sum_##SUF(n, y);                                                           \
        T inv = (T)1 / s;                                                                    \
        for (int64_t j = 0; j < n; ++j) y[j] *= inv;                                         \
        *max_out = m;                                                                        \
        return s;                                                                            \
    }                                                                                        \
    TR_CLONES static void softmax_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,       \
                                                 const T *x, T *out)                         \
    {                                                                                        \
        T m;                                                                                 \
        for (int64_t r = r0; r < r1; ++r) softmax_row_##SUF(cols, x + r * cols, out + r * cols, &m); \
    }                                                                                        \
    TR_CLONES static void log_softmax_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,   \
                                                     const T *x, T *out)                     \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict xr = x + r * cols;                                             \
            T *restrict yr = out + r * cols;                                                 \
            T m = row_max_##SUF(cols, xr);                                                   \
            /* the row of exp(x - max) is a scratch value in out, overwritten below */       \
            for (int64_t j = 0; j < cols; ++j) yr[j] = EXP(xr[j] - m);                       \
            T lse = LOG(row_sum_##SUF(cols, yr));                                            \
            for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - lse;                    \
        }                                                                                    \
    }                                                                                        \
    TR_CLONES static void softmax_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,       \
                                                 const T *y, const T *g, T *out)             \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict yr = y + r * cols, *restrict gr = g + r * cols;                \
            T *restrict o = out + r * cols;                                                  \
            T d = row_dot_##SUF(cols, gr, yr);                                               \
            for (int64_t j = 0; j < cols; ++j) o[j] = yr[j] * (gr[j] - d);                   \
        }                                                                                    \
    }                                                                                        \
    TR_CLONES static void log_softmax_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols,   \
                                                     const T *y, const T *g, T *out)         \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict yr = y + r * cols, *restrict gr = g + r * cols;                \
            T *restrict o = out + r * cols;                                                  \
            T s = row_sum_##SUF(cols, gr);                                                   \
            for (int64_t j = 0; j < cols; ++j) o[j] = gr[j] - EXP(yr[j]) * s;                \
        }                                                                                    \
    }                                                                                        \
    /* loss = logsumexp(x) - x[t], computed as -((x[t] - max) - log(sum)) like the reference */ \
    TR_CLONES static void ce_fwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols, const T *x, \
                                            const int64_t *targets, T *losses, T *probs)     \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *xr = x + r * cols;                                                      \
            T m;                                                                             \
            T s = softmax_row_##SUF(cols, xr, probs + r * cols, &m);                         \
            losses[r] = -((xr[targets[r]] - m) - LOG(s));                                    \
        }                                                                                    \
    }                                                                                        \
    /* out = (probs - onehot(target)) * grad[r], rounding exactly as the reference does */    \
    TR_CLONES static void ce_bwd_rows_##SUF(int64_t r0, int64_t r1, int64_t cols, const T *p, \
                                            const int64_t *targets, const T *g, T *out)      \
    {                                                                                        \
        for (int64_t r = r0; r < r1; ++r) {                                                  \
            const T *restrict pr = p + r * cols;                                             \
            T *restrict o = out + r * cols;                                                  \
            T gr = g[r];                                                                     \
            for (int64_t j = 0; j < cols; ++j) o[j] = pr[j] * gr;                            \
            o[targets[r]] = (pr[targets[r]] - (T)1) * gr;                                    \
        }                                                                                    \
    }

DEFINE_ROW_KERNELS(float, f32, tr_expf, logf)
DEFINE_ROW_KERNELS(double, f64, exp, log)


/* The row kernels the drivers call: for float32 the intrinsics ones of row_level(), else the
 * target_clones ones; float64 always the latter. `stream` (stream_stores(), softmax_rows.h):
 * write the output with streaming stores; only the intrinsics rows have them, and it never
 * changes a value. */
#ifdef TR_AVX512_ROWS
#define PICK_F32(AVX512_CALL, AVX2_CALL, GENERIC_CALL)                                       \
    switch (row_level()) {                                                                   \
    case 2: AVX512_CALL; break;                                                              \
    case 1: AVX2_CALL; break;                                                                \
    default: GENERIC_CALL; break;                                                            \
    }
#define STREAM_STORES(bytes) stream_stores(bytes)
#else
#define PICK_F32(AVX512_CALL, AVX2_CALL, GENERIC_CALL) GENERIC_CALL
#define STREAM_STORES(bytes) 0
#endif
static void softmax_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out,
                                 int stream)
{
    (void)stream;
    PICK_F32(softmax_fwd_rows_avx512(r0, r1, cols, x, out, stream),
             softmax_fwd_rows_avx2(r0, r1, cols, x, out, stream),
             softmax_fwd_rows_f32(r0, r1, cols, x, out));
}
static void log_softmax_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x, float *out,
                                     int stream)
{
    (void)stream;
    PICK_F32(log_softmax_fwd_rows_avx512(r0, r1, cols, x, out, stream),
             log_softmax_fwd_rows_avx2(r0, r1, cols, x, out, stream),
             log_softmax_fwd_rows_f32(r0, r1, cols, x, out));
}
static void softmax_bwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *y,
                                 const float *g, float *out, int stream)
{
    (void)stream;
    PICK_F32(softmax_bwd_rows_avx512(r0, r1, cols, y, g, out, stream),
             softmax_bwd_rows_avx2(r0, r1, cols, y, g, out, stream),
             softmax_bwd_rows_f32(r0, r1, cols, y, g, out));
}
static void log_softmax_bwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *y,
                                     const float *g, float *out, int stream)
{
    (void)stream;
    PICK_F32(log_softmax_bwd_rows_avx512(r0, r1, cols, y, g, out, stream),
             log_softmax_bwd_rows_avx2(r0, r1, cols, y, g, out, stream),
             log_softmax_bwd_rows_f32(r0, r1, cols, y, g, out));
}
static void ce_fwd_pick_f32(int64_t r0, int64_t r1, int64_t cols, const float *x,
                            const int64_t *targets, float *losses, float *probs)
{
    PICK_F32(ce_fwd_rows_avx512(r0, r1, cols, x, targets, losses, probs),
             ce_fwd_rows_avx2(r0, r1, cols, x, targets, losses, probs),
             ce_fwd_rows_f32(r0, r1, cols, x, targets, losses, probs));
}
#define softmax_fwd_pick_f64(r0, r1, cols, x, out, stream) ((void)(stream), softmax_fwd_rows_f64(r0, r1, cols, x, out))
#define log_softmax_fwd_pick_f64(r0, r1, cols, x, out, stream) ((void)(stream), log_softmax_fwd_rows_f64(r0, r1, cols, x, out))
#define log_softmax_bwd_pick_f64(r0, r1, cols, y, g, out, stream) ((void)(stream), log_softmax_bwd_rows_f64(r0, r1, cols, y, g, out))
#define softmax_bwd_pick_f64(r0, r1, cols, y, g, out, stream) ((void)(stream), softmax_bwd_rows_f64(r0, r1, cols, y, g, out))
#define ce_fwd_pick_f64 ce_fwd_rows_f64

/* ---- drivers: split rows over threads when the problem is large ---- */

/* Threads for a rows x cols problem: 1 when small, never more than there are rows. */
static int threads_for(int64_t rows, int64_t cols)
{
    if (rows <= 1 || rows * cols <= TR_PAR_MIN) return 1;
    int nt = tr_get_num_threads();
    return rows < nt ? (int)rows : nt;
}

/* Runs CALL(lo, hi) over [0, rows) in nt contiguous blocks, one per thread. Each row is computed
 * whole by one thread, so the block boundaries cannot change any result. */
#define FOR_ROW_BLOCKS(rows, cols, CALL)                                                     \
    do {                                                                                     \
        if ((rows) <= 0 || (cols) <= 0) break;                                               \
        int nt_ = threads_for((rows), (cols));                                               \
        if (nt_ <= 1) {                                                                      \
            int64_t lo = 0, hi = (rows);                                                     \
            CALL;                                                                            \
            break;                                                                           \
        }                                                                                    \
        int64_t per_ = ((rows) + nt_ - 1) / nt_;                                             \
        _Pragma("omp parallel for num_threads(nt_) schedule(static)")                        \
        for (int t_ = 0; t_ < nt_; ++t_) {                                                   \
            int64_t lo = (int64_t)t_ * per_;                                                 \
            int64_t hi = lo + per_ < (rows) ? lo + per_ : (rows);                            \
            if (lo < hi) CALL;                                                               \
        }                                                                                    \
    } while (0)

/* Streaming stores for an output of rows x cols T (0 when the sizes are not positive). */
#define STREAM_OUT(rows, cols, T) \
    ((rows) > 0 && (cols) > 0 && STREAM_STORES((rows) * (cols) * (int64_t)sizeof(T)))

/* The sum of a[0..n) in exactly the order numpy's add.reduce uses for a contiguous float array
 * (blocks of up to 128 split in halves at multiples of 8; 8 running sums inside a block; fewer
 * than 8 added in turn from -0.0; the reduction then adds that to +0.0), so the fused cross-entropy's mean loss is the one
 * ndarray.mean gives, bit for bit (the tests compare them). No -ffast-math: the compiler keeps
 * this order. */
#define DEFINE_PAIRWISE_SUM(T, SUF)                                                          \
    static T pairwise_sum_##SUF(const T *a, int64_t n)                                       \
    {                                                                                        \
        if (n < 8) {                                                                         \
            T res = (T)-0.0;                                                                 \
            for (int64_t i = 0; i < n; ++i) res += a[i];                                     \
            return res;                                                                      \
        }                                                                                    \
        if (n <= 128) {                                                                      \
            T r[8];                                                                          \
            for (int j = 0; j < 8; ++j) r[j] = a[j];                                         \
            int64_t i = 8;                                                                   \
            for (; i < n - (n % 8); i += 8)                                                  \
                for (int j = 0; j < 8; ++j) r[j] += a[i + j];                                \
            T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));       \
            for (; i < n; ++i) res += a[i];                                                  \
            return res;                                                                      \
        }                                                                                    \
        int64_t n2 = n / 2;                                                                  \
        n2 -= n2 % 8;                                                                        \
        return pairwise_sum_##SUF(a, n2) + pairwise_sum_##SUF(a + n2, n - n2);               \
    }

DEFINE_PAIRWISE_SUM(float, f32)
DEFINE_PAIRWISE_SUM(double, f64)

#define DEFINE_DRIVERS(T, SUF)                                                               \
    void tr_softmax_forward_##SUF(int64_t rows, int64_t cols, const T *x, T *out)            \
    {                                                                                        \
        const int st = STREAM_OUT(rows, cols, T);                                            \
        FOR_ROW_BLOCKS(rows, cols, softmax_fwd_pick_##SUF(lo, hi, cols, x, out, st));        \
    }                                                                                        \
    void tr_log_softmax_forward_##SUF(int64_t rows, int64_t cols, const T *x, T *out)        \
    {                                                                                        \
        const int st = STREAM_OUT(rows, cols, T);                                            \
        FOR_ROW_BLOCKS(rows, cols, log_softmax_fwd_pick_##SUF(lo, hi, cols, x, out, st));    \
    }                                                                                        \
    void tr_softmax_backward_##SUF(int64_t rows, int64_t cols, const T *y, const T *grad,    \
                                   T *out)                                                   \
    {                                                                                        \
        const int st = STREAM_OUT(rows, cols, T);                                            \
        FOR_ROW_BLOCKS(rows, cols, softmax_bwd_pick_##SUF(lo, hi, cols, y, grad, out, st));  \
    }                                                                                        \
    void tr_log_softmax_backward_##SUF(int64_t rows, int64_t cols, const T *y, const T *grad, \
                                       T *out)                                               \
    {                                                                                        \
        const int st = STREAM_OUT(rows, cols, T);                                            \
        FOR_ROW_BLOCKS(rows, cols, log_softmax_bwd_pick_##SUF(lo, hi, cols, y, grad, out, st)); \
    }                                                                                        \
    void tr_cross_entropy_forward_##SUF(int64_t rows, int64_t cols, const T *logits,         \
                                        const int64_t *targets, T *losses, T *probs, T *loss) \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols,                                                           \
                       ce_fwd_pick_##SUF(lo, hi, cols, logits, targets, losses, probs));     \
        /* numpy adds the pairwise sum to its identity +0.0 (so a sum of -0.0s is +0.0) */   \
        *loss = rows > 0 ? ((T)0 + pairwise_sum_##SUF(losses, rows)) / (T)rows : (T)NAN;     \
    }                                                                                        \
    void tr_cross_entropy_backward_##SUF(int64_t rows, int64_t cols, const T *probs,         \
                                         const int64_t *targets, const T *grad, T *out)      \
    {                                                                                        \
        FOR_ROW_BLOCKS(rows, cols, ce_bwd_rows_##SUF(lo, hi, cols, probs, targets, grad, out)); \
    }

DEFINE_DRIVERS(float, f32)
DEFINE_DRIVERS(double, f64)
