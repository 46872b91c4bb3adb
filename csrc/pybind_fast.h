// pybind_fast.h: the pybind11 adapter's fast path, included by bind_pybind.cpp only.
//
// Why it is a file of its own: it reads ndarrays through pybind11's *internal* numpy API
// (py::detail::npy_api, array_proxy, array_descriptor_proxy: the raw PyArrayObject fields),
// which is not part of pybind11's public, stable interface and may change with a pybind11
// release. The public way (py::array / py::isinstance<py::array_t<...>>, .flags(), .shape())
// costs about a microsecond per call in reference counting and type checks, as much as a small
// kernel itself, and the engine calls relu and the softmax family on tiny arrays on every step.
// Kept here, a pybind11 upgrade that breaks these internals breaks one file, and deleting it (and
// the six m.def lines that bind it, and the fast-path calls in backend/pybind.py) leaves a
// correct, slower library: the checked functions of bind_pybind.cpp do not depend on it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "tinygrad_rep.h"

namespace py = pybind11;

namespace {
namespace fast {

// ---- the adapter's fast path: _relu_forward, _softmax_forward, ... ----
// pybind.py calls these first, with arrays straight from the caller. Each runs its kernel and
// returns True only when every argument is exactly what the kernel needs: ndarrays of one
// native float dtype (float32 or float64), C-contiguous and aligned, with equal shapes (at
// least 1-D for the row kernels), `out` writeable and sharing no memory with any input.
// Otherwise it returns False having touched nothing, and the adapter takes its checked Python
// path (_checks.prepare_*), which copies what may be copied and raises the error numpy_ref
// raises. These are the same checks the Python path makes; done here they cost a fraction of a
// microsecond instead of one and a half. The names start with "_" because they are not C
// kernels of their own (tests check that _C's public names are exactly the header's kernels).
using py::detail::npy_api;

// What the kernels need to know about an ndarray that passed view_of().
struct view {
    char *data;
    int64_t size;   // elements
    int64_t nbytes;
    int nd;
    const ssize_t *dims;
    int type;       // npy_api::NPY_FLOAT_ or NPY_DOUBLE_
    bool writeable;
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kForeignOrder = '<';
#else
constexpr char kForeignOrder = '>';
#endif

// True (and v filled in) when h is a C-contiguous, aligned ndarray of native float32/float64.
bool view_of(py::handle h, view &v)
{
    const npy_api &api = npy_api::get();
    PyObject *o = h.ptr();
    if (!api.PyArray_Check_(o)) return false;
    const auto *a = py::detail::array_proxy(o);
    const int need = npy_api::NPY_ARRAY_C_CONTIGUOUS_ | npy_api::NPY_ARRAY_ALIGNED_;
    if ((a->flags & need) != need) return false;
    const auto *d = py::detail::array_descriptor_proxy(a->descr);
    if ((d->type_num != npy_api::NPY_FLOAT_ && d->type_num != npy_api::NPY_DOUBLE_) ||
        d->byteorder == kForeignOrder)
        return false;
    int64_t n = 1;
    for (int i = 0; i < a->nd; ++i) n *= a->dimensions[i];  // numpy keeps this within intp
    v.data = a->data;
    v.size = n;
    v.nbytes = n * (d->type_num == npy_api::NPY_FLOAT_ ? 4 : 8);
    v.nd = a->nd;
    v.dims = a->dimensions;
    v.type = d->type_num;
    v.writeable = (a->flags & npy_api::NPY_ARRAY_WRITEABLE_) != 0;
    return true;
}

bool same_layout(const view &a, const view &b)
{
    if (a.type != b.type || a.nd != b.nd) return false;
    for (int i = 0; i < a.nd; ++i)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

// out's bytes and in's bytes do not intersect (the kernels may write out before reading in).
bool disjoint(const view &out, const view &in)
{
    if (out.nbytes == 0 || in.nbytes == 0) return true;
    return out.data + out.nbytes <= in.data || in.data + in.nbytes <= out.data;
}

// Kernels on fewer elements than this finish within a couple of microseconds: keeping the GIL
// is cheaper than releasing and retaking it.
constexpr int64_t kReleaseGil = 1 << 14;

template <typename Fn>
void run(int64_t n, Fn &&fn)
{
    if (n >= kReleaseGil) {
        py::gil_scoped_release nogil;
        fn();
    } else {
        fn();
    }
}

// out = f(x), element-wise (relu_forward) or by rows (softmax/log_softmax forward)
template <void (*F32)(int64_t, const float *, float *), void (*F64)(int64_t, const double *, double *)>
bool unary(py::handle x, py::handle out)
{
    view vx, vo;
    if (!view_of(x, vx) || !view_of(out, vo) || !vo.writeable || !same_layout(vx, vo) ||
        !disjoint(vo, vx))
        return false;
    if (vx.type == npy_api::NPY_FLOAT_)
        run(vx.size, [&] { F32(vx.size, reinterpret_cast<const float *>(vx.data), reinterpret_cast<float *>(vo.data)); });
    else
        run(vx.size, [&] { F64(vx.size, reinterpret_cast<const double *>(vx.data), reinterpret_cast<double *>(vo.data)); });
    return true;
}

template <void (*F32)(int64_t, const float *, const float *, float *),
          void (*F64)(int64_t, const double *, const double *, double *)>
bool binary(py::handle x, py::handle g, py::handle out)
{
    view vx, vg, vo;
    if (!view_of(x, vx) || !view_of(g, vg) || !view_of(out, vo) || !vo.writeable ||
        !same_layout(vx, vg) || !same_layout(vx, vo) || !disjoint(vo, vx) || !disjoint(vo, vg))
        return false;
    if (vx.type == npy_api::NPY_FLOAT_)
        run(vx.size, [&] {
            F32(vx.size, reinterpret_cast<const float *>(vx.data), reinterpret_cast<const float *>(vg.data),
                reinterpret_cast<float *>(vo.data));
        });
    else
        run(vx.size, [&] {
            F64(vx.size, reinterpret_cast<const double *>(vx.data), reinterpret_cast<const double *>(vg.data),
                reinterpret_cast<double *>(vo.data));
        });
    return true;
}

template <void (*F32)(int64_t, int64_t, const float *, float *),
          void (*F64)(int64_t, int64_t, const double *, double *)>
bool rows_unary(py::handle x, py::handle out)
{
    view vx, vo;
    if (!view_of(x, vx) || vx.nd < 1 || !view_of(out, vo) || !vo.writeable ||
        !same_layout(vx, vo) || !disjoint(vo, vx))
        return false;
    int64_t cols = vx.dims[vx.nd - 1], rows = cols ? vx.size / cols : 0;
    if (vx.type == npy_api::NPY_FLOAT_)
        run(vx.size, [&] { F32(rows, cols, reinterpret_cast<const float *>(vx.data), reinterpret_cast<float *>(vo.data)); });
    else
        run(vx.size, [&] { F64(rows, cols, reinterpret_cast<const double *>(vx.data), reinterpret_cast<double *>(vo.data)); });
    return true;
}

template <void (*F32)(int64_t, int64_t, const float *, const float *, float *),
          void (*F64)(int64_t, int64_t, const double *, const double *, double *)>
bool rows_binary(py::handle y, py::handle g, py::handle out)
{
    view vy, vg, vo;
    if (!view_of(y, vy) || vy.nd < 1 || !view_of(g, vg) || !view_of(out, vo) || !vo.writeable ||
        !same_layout(vy, vg) || !same_layout(vy, vo) || !disjoint(vo, vy) || !disjoint(vo, vg))
        return false;
    int64_t cols = vy.dims[vy.nd - 1], rows = cols ? vy.size / cols : 0;
    if (vy.type == npy_api::NPY_FLOAT_)
        run(vy.size, [&] {
            F32(rows, cols, reinterpret_cast<const float *>(vy.data), reinterpret_cast<const float *>(vg.data),
                reinterpret_cast<float *>(vo.data));
        });
    else
        run(vy.size, [&] {
            F64(rows, cols, reinterpret_cast<const double *>(vy.data), reinterpret_cast<const double *>(vg.data),
                reinterpret_cast<double *>(vo.data));
        });
    return true;
}

}  // namespace fast
}  // namespace
