// bind_pybind.cpp: the pybind11 module tinygrad_rep._C, one Python function per C kernel.
//
// Each function has the C kernel's name without "tr_" and the C argument order, with numpy
// arrays in place of pointers: e.g. softmax_forward_f32(rows, cols, x, out). The Python adapter
// (tinygrad_rep/backend/pybind.py) validates and allocates first; the checks here are a cheap
// second line so that calling _C directly can raise ValueError/TypeError but never corrupt
// memory:
//  - arrays are taken with noconvert(): a wrong dtype or a non-C-contiguous array is a TypeError,
//    never a silent temporary copy (a copied output would drop the result on the floor);
//  - sizes must be >= 0, their products must not overflow, and every array's element count
//    must be exactly what the C kernel will touch; outputs must be writeable;
//  - every array's data must be aligned for its element type (vectorized C code may assume it);
//  - index arrays are scanned for out-of-range entries (O(n), small next to the copy they guard);
//  - no array the kernel writes shares a byte with any other array of the call (need_apart): a
//    kernel may write an output before it has read all of its inputs, indices included.
// The GIL is released around each C call so other Python threads run meanwhile.
// Besides these, _relu_forward, _softmax_forward, ... (pybind_fast.h) are the adapter's
// fast path: the same checks in C++ on the caller's arrays, returning False instead of raising.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "tinygrad_rep.h"
#include "pybind_fast.h"

namespace py = pybind11;

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;
using index_array = py::array_t<int64_t, py::array::c_style>;

[[noreturn]] void fail(const char *fn, const std::string &msg)
{
    throw py::value_error(std::string(fn) + ": " + msg);
}

// A size argument, which must be >= 0.
int64_t count(const char *fn, int64_t n)
{
    if (n < 0) fail(fn, "sizes must be >= 0, got " + std::to_string(n));
    return n;
}

// a * b for sizes, rejecting negatives and overflow.
int64_t mul(const char *fn, int64_t a, int64_t b)
{
    count(fn, a);
    count(fn, b);
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail(fn, "size product overflows int64");
    return r;
}

void need_size(const char *fn, const char *what, const py::array &a, int64_t expected)
{
    if (static_cast<int64_t>(a.size()) != expected)
        fail(fn, std::string(what) + " has " + std::to_string(a.size()) + " elements, expected " +
                     std::to_string(expected));
}

void need_indices(const char *fn, const char *what, const int64_t *idx, int64_t n, int64_t upper)
{
    for (int64_t i = 0; i < n; ++i)
        if (idx[i] < 0 || idx[i] >= upper)
            throw py::index_error(std::string(fn) + ": " + what + " " + std::to_string(idx[i]) +
                                  " is out of range for size " + std::to_string(upper));
}

// The data pointer of an input array, after checking its alignment.
template <typename T>
const T *in(const char *fn, const char *what, const py::array_t<T, py::array::c_style> &a)
{
    const T *p = a.data();
    if (a.size() > 0 && reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
        fail(fn, std::string(what) + " is not aligned for its dtype");
    return p;
}

// The data pointer of an output array, after checking that it is writeable and aligned.
template <typename T>
T *writable(const char *fn, const char *what, py::array_t<T, py::array::c_style> &a)
{
    if (!a.writeable()) fail(fn, std::string(what) + " is read-only");
    in(fn, what, a);
    return a.mutable_data();
}

// Raise unless the bytes of a and b are disjoint. Every array here is C-contiguous (taken as
// array_t<..., c_style> with noconvert), so its bytes are exactly [data, data + nbytes). A kernel
// may write an output before it is done reading its inputs (and reads indices as it writes), so
// any array it writes must share no byte with any other array of the call.
void need_apart(const char *fn, const char *what_a, const py::array &a, const char *what_b,
                const py::array &b)
{
    if (a.nbytes() == 0 || b.nbytes() == 0) return;
    auto pa = reinterpret_cast<std::uintptr_t>(a.data()), pb = reinterpret_cast<std::uintptr_t>(b.data());
    if (pa < pb + static_cast<std::uintptr_t>(b.nbytes()) && pb < pa + static_cast<std::uintptr_t>(a.nbytes()))
        fail(fn, std::string(what_a) + " and " + what_b + " must not overlap");
}

// ---- one wrapper per kernel shape; F is the C kernel ----

template <typename T, void (*F)(int64_t, int64_t, int64_t, int64_t, const T *, int, const T *, int,
                                T *, int)>
void matmul(const char *fn, int64_t batch, int64_t M, int64_t N, int64_t K, carray<T> A,
            int trans_a, carray<T> B, int trans_b, carray<T> C, int accumulate)
{
    need_size(fn, "A", A, mul(fn, mul(fn, batch, M), K));
    need_size(fn, "B", B, mul(fn, mul(fn, batch, K), N));
    need_size(fn, "C", C, mul(fn, mul(fn, batch, M), N));
    need_apart(fn, "C", C, "A", A);
    need_apart(fn, "C", C, "B", B);
    const T *a = in(fn, "A", A), *b = in(fn, "B", B);
    T *c = writable(fn, "C", C);
    py::gil_scoped_release nogil;
    F(batch, M, N, K, a, trans_a, b, trans_b, c, accumulate);
}

template <typename T, void (*F)(int64_t, const T *, T *)>
void unary(const char *fn, int64_t n, carray<T> x, carray<T> out)
{
    need_size(fn, "x", x, count(fn, n));
    need_size(fn, "out", out, n);
    need_apart(fn, "out", out, "x", x);
    const T *px = in(fn, "x", x);
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(n, px, po);
}

template <typename T, void (*F)(int64_t, const T *, const T *, T *)>
void binary(const char *fn, int64_t n, carray<T> x, carray<T> g, carray<T> out)
{
    need_size(fn, "x", x, count(fn, n));
    need_size(fn, "grad", g, n);
    need_size(fn, "out", out, n);
    need_apart(fn, "out", out, "x", x);
    need_apart(fn, "out", out, "grad", g);
    const T *px = in(fn, "x", x), *pg = in(fn, "grad", g);
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(n, px, pg, po);
}

template <typename T, void (*F)(int64_t, int64_t, const T *, T *)>
void rows_unary(const char *fn, int64_t rows, int64_t cols, carray<T> x, carray<T> out)
{
    int64_t n = mul(fn, rows, cols);
    need_size(fn, "x", x, n);
    need_size(fn, "out", out, n);
    need_apart(fn, "out", out, "x", x);
    const T *px = in(fn, "x", x);
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(rows, cols, px, po);
}

template <typename T, void (*F)(int64_t, int64_t, const T *, const T *, T *)>
void rows_binary(const char *fn, int64_t rows, int64_t cols, carray<T> y, carray<T> g,
                 carray<T> out)
{
    int64_t n = mul(fn, rows, cols);
    need_size(fn, "y", y, n);
    need_size(fn, "grad", g, n);
    need_size(fn, "out", out, n);
    need_apart(fn, "out", out, "y", y);
    need_apart(fn, "out", out, "grad", g);
    const T *py_ = in(fn, "y", y), *pg = in(fn, "grad", g);
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(rows, cols, py_, pg, po);
}

template <typename T, void (*F)(int64_t, int64_t, const T *, const int64_t *, T *, T *)>
void ce_forward(const char *fn, int64_t rows, int64_t cols, carray<T> logits, index_array targets,
                carray<T> losses, carray<T> probs)
{
    int64_t n = mul(fn, rows, cols);
    need_size(fn, "logits", logits, n);
    need_size(fn, "targets", targets, rows);
    need_size(fn, "losses", losses, rows);
    need_size(fn, "probs", probs, n);
    need_apart(fn, "losses", losses, "logits", logits);
    need_apart(fn, "losses", losses, "targets", targets);
    need_apart(fn, "losses", losses, "probs", probs);
    need_apart(fn, "probs", probs, "logits", logits);
    need_apart(fn, "probs", probs, "targets", targets);
    need_indices(fn, "target", in(fn, "targets", targets), rows, cols);
    const T *pl = in(fn, "logits", logits);
    const int64_t *pt = targets.data();
    T *plo = writable(fn, "losses", losses), *pp = writable(fn, "probs", probs);
    py::gil_scoped_release nogil;
    F(rows, cols, pl, pt, plo, pp);
}

template <typename T, void (*F)(int64_t, int64_t, const T *, const int64_t *, const T *, T *)>
void ce_backward(const char *fn, int64_t rows, int64_t cols, carray<T> probs, index_array targets,
                 carray<T> grad, carray<T> out)
{
    int64_t n = mul(fn, rows, cols);
    need_size(fn, "probs", probs, n);
    need_size(fn, "targets", targets, rows);
    need_size(fn, "grad", grad, rows);
    need_size(fn, "out", out, n);
    need_apart(fn, "out", out, "probs", probs);
    need_apart(fn, "out", out, "targets", targets);
    need_apart(fn, "out", out, "grad", grad);
    need_indices(fn, "target", in(fn, "targets", targets), rows, cols);
    const T *pp = in(fn, "probs", probs), *pg = in(fn, "grad", grad);
    const int64_t *pt = targets.data();
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(rows, cols, pp, pt, pg, po);
}

// Number of rows of a (rows x d) table given its element count; d == 0 means the kernel touches
// no memory, so any table (and any index) is accepted.
int64_t table_rows(const char *fn, const char *what, const py::array &table, int64_t d)
{
    if (d == 0) return INT64_MAX;
    int64_t size = static_cast<int64_t>(table.size());
    if (size % d != 0)
        fail(fn, std::string(what) + " has " + std::to_string(size) +
                     " elements, not a multiple of d=" + std::to_string(d));
    return size / d;
}

template <typename T, void (*F)(int64_t, int64_t, const T *, const int64_t *, T *)>
void gather(const char *fn, int64_t n, int64_t d, carray<T> weight, index_array indices,
            carray<T> out)
{
    need_size(fn, "out", out, mul(fn, n, d));
    need_size(fn, "indices", indices, n);
    need_apart(fn, "out", out, "weight", weight);
    need_apart(fn, "out", out, "indices", indices);
    need_indices(fn, "index", in(fn, "indices", indices), n, table_rows(fn, "weight", weight, d));
    const T *pw = in(fn, "weight", weight);
    const int64_t *pi = indices.data();
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(n, d, pw, pi, po);
}

template <typename T, void (*F)(int64_t, int64_t, const T *, const int64_t *, T *)>
void scatter_add(const char *fn, int64_t n, int64_t d, carray<T> grad, index_array indices,
                 carray<T> out)
{
    need_size(fn, "grad", grad, mul(fn, n, d));
    need_size(fn, "indices", indices, n);
    need_apart(fn, "out", out, "grad", grad);
    need_apart(fn, "out", out, "indices", indices);
    need_indices(fn, "index", in(fn, "indices", indices), n, table_rows(fn, "out", out, d));
    const T *pg = in(fn, "grad", grad);
    const int64_t *pi = indices.data();
    T *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    F(n, d, pg, pi, po);
}

// ---- word2vec (sgns.c) ----

template <typename T, void (*F)(int64_t, int64_t, int64_t, const T *, const T *, T *, T *, T *)>
void sgns_fb(const char *fn, int64_t B, int64_t nt, int64_t d, carray<T> center, carray<T> targets,
             carray<T> losses, carray<T> grad_center, carray<T> grad_targets)
{
    int64_t bd = mul(fn, B, d), btd = mul(fn, mul(fn, B, nt), d);
    need_size(fn, "center", center, bd);
    need_size(fn, "targets", targets, btd);
    need_size(fn, "losses", losses, B);
    need_size(fn, "grad_center", grad_center, bd);
    need_size(fn, "grad_targets", grad_targets, btd);
    const py::array *arrs[5] = {&losses, &grad_center, &grad_targets, &center, &targets};
    const char *names[5] = {"losses", "grad_center", "grad_targets", "center", "targets"};
    for (int i = 0; i < 3; ++i)  // the first three are written
        for (int j = i + 1; j < 5; ++j) need_apart(fn, names[i], *arrs[i], names[j], *arrs[j]);
    const T *pc = in(fn, "center", center), *pt = in(fn, "targets", targets);
    T *pl = writable(fn, "losses", losses), *pgc = writable(fn, "grad_center", grad_center);
    T *pgt = writable(fn, "grad_targets", grad_targets);
    py::gil_scoped_release nogil;
    F(B, nt, d, pc, pt, pl, pgc, pgt);
}

template <typename T, void (*F)(int64_t, int64_t, int64_t, T *, T *, const int64_t *, const int64_t *, T, T *, T *)>
void sgns_sgd(const char *fn, int64_t n, int64_t nt, int64_t d, carray<T> W_in, carray<T> W_out,
              index_array inputs, index_array targets, T lr, carray<T> losses, carray<T> work)
{
    int64_t nnt = mul(fn, n, count(fn, nt));
    need_size(fn, "inputs", inputs, n);
    need_size(fn, "targets", targets, nnt);
    need_size(fn, "losses", losses, n);
    need_size(fn, "work", work, nt + count(fn, d));
    const py::array *arrs[6] = {&W_in, &W_out, &losses, &work, &inputs, &targets};
    const char *names[6] = {"W_in", "W_out", "losses", "work", "inputs", "targets"};
    for (int i = 0; i < 4; ++i)  // the first four are written
        for (int j = i + 1; j < 6; ++j) need_apart(fn, names[i], *arrs[i], names[j], *arrs[j]);
    in(fn, "inputs", inputs);
    in(fn, "targets", targets);
    need_indices(fn, "input", inputs.data(), n, table_rows(fn, "W_in", W_in, d));
    need_indices(fn, "target", targets.data(), nnt, table_rows(fn, "W_out", W_out, d));
    T *pin = writable(fn, "W_in", W_in), *pout = writable(fn, "W_out", W_out);
    T *pl = writable(fn, "losses", losses), *pw = writable(fn, "work", work);
    const int64_t *pi = inputs.data(), *pt = targets.data();
    py::gil_scoped_release nogil;
    F(n, nt, d, pin, pout, pi, pt, lr, pl, pw);
}

void sample_negatives(int64_t rows, int64_t k, int64_t V, py::array_t<double, py::array::c_style> prob,
                      index_array alias, index_array avoid, uint64_t seed, index_array out)
{
    const char *fn = "sample_negatives";
    int64_t n = mul(fn, rows, k);
    need_size(fn, "prob", prob, count(fn, V));
    need_size(fn, "alias", alias, V);
    need_size(fn, "avoid", avoid, rows);
    need_size(fn, "out", out, n);
    if (n > 0 && V < 1) fail(fn, "the alias table is empty (V = 0)");
    need_apart(fn, "out", out, "prob", prob);
    need_apart(fn, "out", out, "alias", alias);
    need_apart(fn, "out", out, "avoid", avoid);
    need_indices(fn, "alias entry", in(fn, "alias", alias), V, V);
    const double *pp = in(fn, "prob", prob);
    const int64_t *pa = alias.data(), *pv = in(fn, "avoid", avoid);
    int64_t *po = writable(fn, "out", out);
    py::gil_scoped_release nogil;
    tr_sample_negatives(rows, k, V, pp, pa, pv, seed, po);
}

// The adapter's fast path (_relu_forward, _softmax_forward, ...) is in pybind_fast.h, on its
// own because it reads ndarrays through pybind11's internal numpy API (see the reason there).

}  // namespace

// Array arguments are noconvert (see the file comment).
#define ARR(name) py::arg(name).noconvert()

// Each m.def below binds one C kernel under its name without "tr_"; the lambda forwards to the
// checking wrapper above, passing the name for error messages.

PYBIND11_MODULE(_C, m)
{
    m.doc() = "tinygrad_rep C kernels (pybind11 binding); see csrc/tinygrad_rep.h";

    m.def("set_num_threads", &tr_set_num_threads, py::arg("n"),
          "Set the number of OpenMP threads the kernels may use (n < 1 means 1).");
    m.def("get_num_threads", &tr_get_num_threads, "The number of threads the kernels may use.");
    m.def("simd_level", &tr_simd_level, "The SIMD level the kernels run at.");
    m.def("build_flags", &tr_build_flags, "The C flags the kernels were built with.");

#define MATMUL(SUF, T)                                                                          \
    m.def("matmul_" #SUF,                                                                       \
          [](int64_t batch, int64_t M, int64_t N, int64_t K, carray<T> A, int ta, carray<T> B,   \
             int tb, carray<T> C, int acc) {                                                    \
              matmul<T, tr_matmul_##SUF>("matmul_" #SUF, batch, M, N, K, A, ta, B, tb, C, acc); \
          },                                                                                    \
          py::arg("batch"), py::arg("M"), py::arg("N"), py::arg("K"), ARR("A"),                 \
          py::arg("trans_a"), ARR("B"), py::arg("trans_b"), ARR("C"), py::arg("accumulate"))
    MATMUL(f32, float);
    MATMUL(f64, double);

#define UNARY(NAME, T)                                                                          \
    m.def(#NAME, [](int64_t n, carray<T> x, carray<T> out) { unary<T, tr_##NAME>(#NAME, n, x, out); }, \
          py::arg("n"), ARR("x"), ARR("out"))
    UNARY(relu_forward_f32, float);
    UNARY(relu_forward_f64, double);

#define BINARY(NAME, T)                                                                         \
    m.def(#NAME,                                                                                \
          [](int64_t n, carray<T> x, carray<T> g, carray<T> out) {                              \
              binary<T, tr_##NAME>(#NAME, n, x, g, out);                                        \
          },                                                                                    \
          py::arg("n"), ARR("x"), ARR("grad"), ARR("out"))
    BINARY(relu_backward_f32, float);
    BINARY(relu_backward_f64, double);

#define ROWS_UNARY(NAME, T)                                                                     \
    m.def(#NAME,                                                                                \
          [](int64_t rows, int64_t cols, carray<T> x, carray<T> out) {                          \
              rows_unary<T, tr_##NAME>(#NAME, rows, cols, x, out);                              \
          },                                                                                    \
          py::arg("rows"), py::arg("cols"), ARR("x"), ARR("out"))
    ROWS_UNARY(softmax_forward_f32, float);
    ROWS_UNARY(softmax_forward_f64, double);
    ROWS_UNARY(log_softmax_forward_f32, float);
    ROWS_UNARY(log_softmax_forward_f64, double);

#define ROWS_BINARY(NAME, T)                                                                    \
    m.def(#NAME,                                                                                \
          [](int64_t rows, int64_t cols, carray<T> y, carray<T> g, carray<T> out) {             \
              rows_binary<T, tr_##NAME>(#NAME, rows, cols, y, g, out);                          \
          },                                                                                    \
          py::arg("rows"), py::arg("cols"), ARR("y"), ARR("grad"), ARR("out"))
    ROWS_BINARY(softmax_backward_f32, float);
    ROWS_BINARY(softmax_backward_f64, double);
    ROWS_BINARY(log_softmax_backward_f32, float);
    ROWS_BINARY(log_softmax_backward_f64, double);

    // The adapter's fast path (see pybind_fast.h): True when the kernel ran.
    m.def("_relu_forward", &fast::unary<tr_relu_forward_f32, tr_relu_forward_f64>, py::arg("x"), py::arg("out"));
    m.def("_relu_backward", &fast::binary<tr_relu_backward_f32, tr_relu_backward_f64>, py::arg("x"),
          py::arg("grad"), py::arg("out"));
    m.def("_softmax_forward", &fast::rows_unary<tr_softmax_forward_f32, tr_softmax_forward_f64>,
          py::arg("x"), py::arg("out"));
    m.def("_log_softmax_forward", &fast::rows_unary<tr_log_softmax_forward_f32, tr_log_softmax_forward_f64>,
          py::arg("x"), py::arg("out"));
    m.def("_softmax_backward", &fast::rows_binary<tr_softmax_backward_f32, tr_softmax_backward_f64>,
          py::arg("y"), py::arg("grad"), py::arg("out"));
    m.def("_log_softmax_backward",
          &fast::rows_binary<tr_log_softmax_backward_f32, tr_log_softmax_backward_f64>, py::arg("y"),
          py::arg("grad"), py::arg("out"));

#define CE(SUF, T)                                                                              \
    m.def("cross_entropy_forward_" #SUF,                                                        \
          [](int64_t rows, int64_t cols, carray<T> logits, index_array targets, carray<T> losses, \
             carray<T> probs) {                                                                 \
              ce_forward<T, tr_cross_entropy_forward_##SUF>("cross_entropy_forward_" #SUF, rows, \
                                                           cols, logits, targets, losses, probs); \
          },                                                                                    \
          py::arg("rows"), py::arg("cols"), ARR("logits"), ARR("targets"), ARR("losses"),       \
          ARR("probs"));                                                                        \
    m.def("cross_entropy_backward_" #SUF,                                                       \
          [](int64_t rows, int64_t cols, carray<T> probs, index_array targets, carray<T> grad,  \
             carray<T> out) {                                                                   \
              ce_backward<T, tr_cross_entropy_backward_##SUF>("cross_entropy_backward_" #SUF,   \
                                                             rows, cols, probs, targets, grad, out); \
          },                                                                                    \
          py::arg("rows"), py::arg("cols"), ARR("probs"), ARR("targets"), ARR("grad"),          \
          ARR("out"))
    CE(f32, float);
    CE(f64, double);

#define EMBEDDING(SUF, T)                                                                       \
    m.def("embedding_gather_" #SUF,                                                             \
          [](int64_t n, int64_t d, carray<T> weight, index_array indices, carray<T> out) {      \
              gather<T, tr_embedding_gather_##SUF>("embedding_gather_" #SUF, n, d, weight,      \
                                                   indices, out);                               \
          },                                                                                    \
          py::arg("n"), py::arg("d"), ARR("weight"), ARR("indices"), ARR("out"));               \
    m.def("embedding_scatter_add_" #SUF,                                                        \
          [](int64_t n, int64_t d, carray<T> grad, index_array indices, carray<T> out) {        \
              scatter_add<T, tr_embedding_scatter_add_##SUF>("embedding_scatter_add_" #SUF, n,  \
                                                             d, grad, indices, out);            \
          },                                                                                    \
          py::arg("n"), py::arg("d"), ARR("grad"), ARR("indices"), ARR("out"))
    EMBEDDING(f32, float);
    EMBEDDING(f64, double);

#define SGNS(SUF, T)                                                                            \
    m.def("sgns_forward_backward_" #SUF,                                                        \
          [](int64_t B, int64_t nt, int64_t d, carray<T> center, carray<T> targets,             \
             carray<T> losses, carray<T> gc, carray<T> gt) {                                    \
              sgns_fb<T, tr_sgns_forward_backward_##SUF>("sgns_forward_backward_" #SUF, B, nt,  \
                                                         d, center, targets, losses, gc, gt);   \
          },                                                                                    \
          py::arg("B"), py::arg("T"), py::arg("d"), ARR("center"), ARR("targets"),              \
          ARR("losses"), ARR("grad_center"), ARR("grad_targets"));                              \
    m.def("sgns_sgd_" #SUF,                                                                     \
          [](int64_t n, int64_t nt, int64_t d, carray<T> W_in, carray<T> W_out,                 \
             index_array inputs, index_array targets, T lr, carray<T> losses, carray<T> work) { \
              sgns_sgd<T, tr_sgns_sgd_##SUF>("sgns_sgd_" #SUF, n, nt, d, W_in, W_out, inputs,   \
                                             targets, lr, losses, work);                        \
          },                                                                                    \
          py::arg("n"), py::arg("T"), py::arg("d"), ARR("W_in"), ARR("W_out"), ARR("inputs"),   \
          ARR("targets"), py::arg("lr"), ARR("losses"), ARR("work"))
    SGNS(f32, float);
    SGNS(f64, double);
    m.def("sample_negatives", &sample_negatives, py::arg("rows"), py::arg("k"), py::arg("V"),
          ARR("prob"), ARR("alias"), ARR("avoid"), py::arg("seed"), ARR("out"));

    // ---- optimizers (optim.c) ----
    // adam_step_f32/_f64(n, param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay,
    // decoupled, lr, step_size, bias2_sqrt): param, exp_avg and exp_avg_sq are updated in place,
    // so besides the usual size/writeable/alignment checks the four buffers must not overlap
    // (the kernel reads and writes them through restrict pointers).
#define ADAM(SUF, T)                                                                            \
    m.def("adam_step_" #SUF,                                                                    \
          [](int64_t n, carray<T> param, carray<T> grad, carray<T> exp_avg, carray<T> exp_avg_sq, \
             double beta1, double beta2, double eps, double weight_decay, int decoupled,        \
             double lr, double step_size, double bias2_sqrt) {                                  \
              const char *fn = "adam_step_" #SUF;                                               \
              need_size(fn, "param", param, count(fn, n));                                      \
              need_size(fn, "grad", grad, n);                                                   \
              need_size(fn, "exp_avg", exp_avg, n);                                             \
              need_size(fn, "exp_avg_sq", exp_avg_sq, n);                                       \
              T *pp = writable(fn, "param", param), *pm = writable(fn, "exp_avg", exp_avg);     \
              T *pv = writable(fn, "exp_avg_sq", exp_avg_sq);                                   \
              const T *pg = in(fn, "grad", grad);                                               \
              const T *lo[4] = {pp, pg, pm, pv};                                                \
              for (int i = 0; n > 0 && i < 4; ++i)                                              \
                  for (int j = i + 1; j < 4; ++j)                                               \
                      if (lo[i] < lo[j] + n && lo[j] < lo[i] + n)                               \
                          fail(fn, "param, grad, exp_avg and exp_avg_sq must not overlap");     \
              py::gil_scoped_release nogil;                                                     \
              tr_adam_step_##SUF(n, pp, pg, pm, pv, beta1, beta2, eps, weight_decay, decoupled, \
                                 lr, step_size, bias2_sqrt);                                    \
          },                                                                                    \
          py::arg("n"), ARR("param"), ARR("grad"), ARR("exp_avg"), ARR("exp_avg_sq"),           \
          py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),          \
          py::arg("decoupled"), py::arg("lr"), py::arg("step_size"), py::arg("bias2_sqrt"))
    ADAM(f32, float);
    ADAM(f64, double);
}
