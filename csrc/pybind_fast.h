// pybind_fast.h: the pybind11 adapter's fast path, included by bind_pybind.cpp only.
//
// Why it is a file of its own: it reads ndarrays through pybind11's *internal* numpy API
// (py::detail::npy_api, array_proxy, array_descriptor_proxy: the raw PyArrayObject fields),
// which is not part of pybind11's public, stable interface and may change with a pybind11
// release. The public way (py::array / py::isinstance<py::array_t<...>>, .flags(), .shape())
// costs about a microsecond per call in reference counting and type checks, as much as a small
// kernel itself, and the engine calls kernels on tiny arrays on every step. Kept here, a pybind11
// upgrade that breaks these internals breaks one file, and deleting it (and the `fast::bind` line
// of bind_pybind.cpp) leaves a correct, slower library: the adapters then take their checked
// path, and the checked functions of bind_pybind.cpp do not depend on this file.
//
// _C._fast_<kernel>(...) takes the Python values of a kernel's C arguments that come from
// Python (its table row's arrays, flags, scalars, in C order; the adapter passes them), with
// None for an output not given. It runs the kernel and returns numpy_ref's result only when
// every argument is exactly what the kernel needs: ndarrays of the row's dtype (both float
// arrays of one native float dtype), C-contiguous and aligned, shapes that fit the row's
// patterns, written arrays writeable and sharing no byte with any other array, index entries in
// range, flags True/False, numbers plain Python floats/ints in range. Otherwise it returns None
// having written nothing, and the adapter takes its checked Python path (_checks), which copies
// what may be copied and raises the error numpy_ref raises. Outputs not given are allocated
// here, the large ones through the buffer pool (backend/pool.py), like the checked path's.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace {
namespace fast {

using py::detail::npy_api;

// What the kernels need to know about an ndarray that passed view_of().
struct view {
    char *data;
    int64_t size;   // elements
    int64_t nbytes;
    int nd;
    const ssize_t *dims;
    int type;       // npy_api::NPY_FLOAT_, NPY_DOUBLE_ or kInt64
    bool writeable;
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kForeignOrder = '<';
#else
constexpr char kForeignOrder = '>';
#endif
constexpr int kInt64 = npy_api::NPY_INT64_;

// True (and v filled in) when h is a C-contiguous, aligned ndarray of native float32, float64
// or int64.
bool view_of(py::handle h, view &v)
{
    const npy_api &api = npy_api::get();
    PyObject *o = h.ptr();
    if (!api.PyArray_Check_(o)) return false;
    const auto *a = py::detail::array_proxy(o);
    const int need = npy_api::NPY_ARRAY_C_CONTIGUOUS_ | npy_api::NPY_ARRAY_ALIGNED_;
    if ((a->flags & need) != need) return false;
    const auto *d = py::detail::array_descriptor_proxy(a->descr);
    int size;
    if (d->type_num == npy_api::NPY_FLOAT_) size = 4;
    else if (d->type_num == npy_api::NPY_DOUBLE_) size = 8;
    else if (d->type_num == kInt64) size = 8;
    else return false;
    if (d->byteorder == kForeignOrder) return false;
    int64_t n = 1;
    for (int i = 0; i < a->nd; ++i) n *= a->dimensions[i];  // numpy keeps this within intp
    v.data = a->data;
    v.size = n;
    v.nbytes = n * size;
    v.nd = a->nd;
    v.dims = a->dimensions;
    v.type = d->type_num;
    v.writeable = (a->flags & npy_api::NPY_ARRAY_WRITEABLE_) != 0;
    return true;
}

// The shape symbols of one call: unbound, bound to a value, or (a "?" axis) absent.
struct symbols {
    int64_t value[kMaxSyms];
    signed char state[kMaxSyms] = {};  // 0 unbound, 1 bound, 2 absent
    const ssize_t *star_dims[kMaxSyms];
    int star_nd[kMaxSyms];

    bool bind(int k, int64_t v)
    {
        if (state[k] == 0) {
            state[k] = 1;
            value[k] = v;
            return true;
        }
        return state[k] == 1 && value[k] == v;
    }
};

// Does v's shape fit a's pattern (last two axes swapped when `swapped`)? Binds new symbols.
bool match(const ArgSpec &a, const view &v, bool swapped, symbols &s)
{
    const int ntok = static_cast<int>(a.tokens.size());
    int first = 0, nd = v.nd;
    if (ntok > 0 && a.tokens[0].second == STAR) {
        const int k = a.tokens[0].first, lead = nd - (ntok - 1);
        if (lead < 0) return false;
        if (s.state[k] == 0) {
            int64_t n = 1;
            for (int i = 0; i < lead; ++i) n *= v.dims[i];
            s.state[k] = 1;
            s.value[k] = n;
            s.star_dims[k] = v.dims;
            s.star_nd[k] = lead;
        } else if (s.state[k] != 1 || s.star_nd[k] != lead ||
                   (lead > 0 && std::memcmp(s.star_dims[k], v.dims, sizeof(ssize_t) * lead) != 0)) {
            return false;
        }
        first = 1;
    } else if (ntok > 0 && a.tokens[0].second == OPTIONAL) {
        const int k = a.tokens[0].first;
        if (nd == ntok) {
            if (!s.bind(k, v.dims[0])) return false;
        } else if (nd == ntok - 1) {
            if (s.state[k] == 1) return false;
            s.state[k] = 2;
        } else {
            return false;
        }
        first = 1;
    } else if (nd != ntok) {
        return false;
    }
    for (int t = first; t < ntok; ++t) {
        int src = t;
        if (swapped && t >= ntok - 2) src = t == ntok - 1 ? ntok - 2 : ntok - 1;
        if (!s.bind(a.tokens[src].first, v.dims[nd - (ntok - t)])) return false;
    }
    return true;
}

// out's bytes and in's bytes do not intersect.
bool disjoint(const view &a, const view &b)
{
    if (a.nbytes == 0 || b.nbytes == 0) return true;
    return a.data + a.nbytes <= b.data || b.data + b.nbytes <= a.data;
}

// Kernels on fewer elements than this finish within a couple of microseconds: keeping the GIL
// is cheaper than releasing and retaking it.
constexpr int64_t kReleaseGil = 1 << 14;

struct kernel {
    const Row *row;
    Invoker variant[2] = {nullptr, nullptr};  // float32, float64 (a fixed kernel: [0])
    py::object pool_empty;                    // backend.pool.empty(shape, dtype)
    int64_t pool_min_bytes;
    // C positions by what run() does with them, so that a call loops over no more than it needs
    std::vector<int> python, numbers, py_arrays, sizes, arrays, scans;
};

// A new uninitialized C-contiguous array: from the pool when it is large, else from numpy.
py::object allocate(const kernel &k, int type, int nd, const ssize_t *dims)
{
    const npy_api &api = npy_api::get();
    int64_t nbytes = type == npy_api::NPY_FLOAT_ ? 4 : 8;
    for (int i = 0; i < nd; ++i) nbytes *= dims[i];
    if (nbytes >= k.pool_min_bytes) {
        py::tuple shape(nd);
        for (int i = 0; i < nd; ++i) shape[i] = py::int_(dims[i]);
        return k.pool_empty(shape, py::reinterpret_steal<py::object>(api.PyArray_DescrFromType_(type)));
    }
    PyObject *descr = api.PyArray_DescrFromType_(type);
    PyObject *a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, nullptr, 0, nullptr);
    if (!a) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(a);
}

// The fast path of one call; h holds the Python values of the row's Python-fed arguments.
py::object run(const kernel &k, const py::handle *h)
{
    const Row &row = *k.row;
    const int nargs = static_cast<int>(row.args.size());
    Slot slot[kMaxArgs];
    view v[kMaxArgs];
    py::handle obj[kMaxArgs];
    py::object made[2];  // outputs allocated here (more go to `extra`)
    std::vector<py::object> extra;
    int nmade = 0;
    bool have[kMaxArgs] = {};
    symbols s;
    int ftype = -1;
    for (size_t p = 0; p < k.python.size(); ++p) obj[k.python[p]] = h[p];
    // numbers first: a flag may transpose an array's pattern
    for (int i : k.numbers) {
        const ArgSpec &a = row.args[i];
        PyObject *o = obj[i].ptr();
        if (a.role == FLAG) {
            if (o == Py_True) slot[i].i = 1;
            else if (o == Py_False) slot[i].i = 0;
            else return py::none();
        } else if (a.role == SCALAR) {
            if (!PyFloat_CheckExact(o)) return py::none();
            slot[i].d = PyFloat_AS_DOUBLE(o);
            if (a.finite && !std::isfinite(slot[i].d)) return py::none();
        } else if (a.role == SEED) {
            if (!PyLong_CheckExact(o)) return py::none();
            slot[i].u = PyLong_AsUnsignedLongLong(o);
            if (PyErr_Occurred()) {
                PyErr_Clear();
                return py::none();
            }
        } else if (a.role == SIZE && a.from_python) {
            int overflow = 0;
            if (!PyLong_CheckExact(o)) return py::none();
            long long n = PyLong_AsLongLongAndOverflow(o, &overflow);
            if (overflow || n < 0 || !s.bind(a.sym, n)) return py::none();
        }
    }
    for (int i : k.py_arrays) {
        const ArgSpec &a = row.args[i];
        if (obj[i].is_none()) {
            if (a.role != OUT || (a.required_if >= 0 && slot[a.required_if].i)) return py::none();
            continue;
        }
        view &w = v[i];
        if (!view_of(obj[i], w)) return py::none();
        if (a.dtype == 'T') {
            if (w.type == kInt64 || (ftype >= 0 && w.type != ftype)) return py::none();
            ftype = w.type;
        } else if (w.type != (a.dtype == 'd' ? static_cast<int>(npy_api::NPY_DOUBLE_) : kInt64)) {
            return py::none();
        }
        if (a.written() && !w.writeable) return py::none();
        if (!match(a, w, a.swap >= 0 && slot[a.swap].i, s)) return py::none();
        have[i] = true;
    }
    if (!row.c_names.empty() && k.variant[1] && ftype < 0) return py::none();
    int64_t biggest = 0;
    for (int i : k.sizes) {
        const ArgSpec &a = row.args[i];
        if (s.state[a.sym] == 0) return py::none();
        slot[i].i = s.state[a.sym] == 2 ? 1 : s.value[a.sym];
        if (slot[i].i < a.minimum) return py::none();
    }
    // outputs not given, and scratch arrays
    for (int i : k.arrays) {
        const ArgSpec &a = row.args[i];
        if (have[i]) continue;
        ssize_t dims[2 * kMaxSyms];
        int nd = 0;
        if (a.role == SCRATCH) {
            int64_t n = 0;
            for (int c : a.count) {
                if (s.state[c] != 1) return py::none();
                n += s.value[c];
            }
            dims[nd++] = n;
        } else {
            for (auto [sym, kind] : a.tokens) {
                if (kind == STAR && s.state[sym] == 1) {
                    for (int j = 0; j < s.star_nd[sym]; ++j) dims[nd++] = s.star_dims[sym][j];
                } else if (s.state[sym] == 1) {
                    dims[nd++] = s.value[sym];
                } else if (!(kind == OPTIONAL && s.state[sym] == 2)) {
                    return py::none();
                }
            }
        }
        const int type = a.dtype == 'T' ? (ftype >= 0 ? ftype : npy_api::NPY_DOUBLE_)
                         : a.dtype == 'd' ? static_cast<int>(npy_api::NPY_DOUBLE_) : kInt64;
        py::object fresh = allocate(k, type, nd, dims);
        obj[i] = fresh;
        if (nmade < 2) made[nmade++] = std::move(fresh);
        else extra.push_back(std::move(fresh));
        view_of(obj[i], v[i]);
        have[i] = true;
    }
    for (int i : k.sizes) {
        const ArgSpec &a = row.args[i];
        if (a.nonempty_if >= 0 && v[a.nonempty_if].size > 0 && slot[i].i < 1) return py::none();
    }
    for (int i : k.arrays) {
        slot[i].p = v[i].data;
        if (v[i].size > biggest) biggest = v[i].size;
        if (!row.args[i].written()) continue;
        for (int j : k.arrays)
            if (j != i && !disjoint(v[i], v[j])) return py::none();
    }
    for (int i : k.scans) {
        const ArgSpec &a = row.args[i];
        if (a.role == INDEX) {
            const int64_t *idx = reinterpret_cast<const int64_t *>(v[i].data);
            const int64_t upper = s.state[a.below] == 1 ? s.value[a.below] : -1;
            if (upper < 0) return py::none();
            for (int64_t j = 0; j < v[i].size; ++j)
                if (idx[j] < 0 || idx[j] >= upper) return py::none();
        } else if (a.has_within) {
            if (v[i].type != npy_api::NPY_DOUBLE_) return py::none();
            const double *x = reinterpret_cast<const double *>(v[i].data);
            for (int64_t j = 0; j < v[i].size; ++j)
                if (!(x[j] >= a.lo && x[j] <= a.hi)) return py::none();
        }
    }
    Invoker f = k.variant[ftype == npy_api::NPY_DOUBLE_ && k.variant[1] ? 1 : 0];
    if (biggest >= kReleaseGil) {
        py::gil_scoped_release nogil;
        f(slot);
    } else {
        f(slot);
    }
    if (row.results.size() == 1) return py::reinterpret_borrow<py::object>(obj[row.results[0]]);
    py::tuple result(row.results.size());
    for (size_t r = 0; r < row.results.size(); ++r)
        result[r] = py::reinterpret_borrow<py::object>(obj[row.results[r]]);
    return result;
}

template <size_t... I>
void def_fast(py::module_ &m, const std::string &name, const kernel *k, std::index_sequence<I...>)
{
    m.def(name.c_str(), [k](decltype((void)I, py::handle())... h) {
        const py::handle hs[sizeof...(I) + 1] = {h...};
        return run(*k, hs);
    });
}

template <size_t N>
void def_fast_n(py::module_ &m, const std::string &name, const kernel *k, size_t n)
{
    if constexpr (N <= kMaxArgs) {
        if (n == N) return def_fast(m, name, k, std::make_index_sequence<N>{});
        def_fast_n<N + 1>(m, name, k, n);
    } else {
        throw py::value_error("kernel table: " + name + " has too many arguments");
    }
}

// Bind _fast_<row.name>, unless the row has numbers its check function computes (derived).
void bind(py::module_ &m, const Row &row, const std::map<std::string, Invoker> &invokers, py::module_ &table)
{
    size_t from_python = 0;
    for (const ArgSpec &a : row.args) {
        if (a.role == DERIVED) return;
        from_python += a.from_python;
    }
    auto pool = py::module_::import("tinygrad_rep.backend.pool");
    auto *k = new kernel{&row, {nullptr, nullptr}, pool.attr("empty"), pool.attr("MIN_BYTES").cast<int64_t>(), {}, {}, {}, {}, {}, {}};
    for (int i = 0; i < static_cast<int>(row.args.size()); ++i) {
        const ArgSpec &a = row.args[i];
        if (a.from_python) k->python.push_back(i);
        if (a.role == FLAG || a.role == SCALAR || a.role == SEED || (a.role == SIZE && a.from_python))
            k->numbers.push_back(i);
        if (a.is_array() && a.from_python) k->py_arrays.push_back(i);
        if (a.role == SIZE) k->sizes.push_back(i);
        if (a.is_array()) k->arrays.push_back(i);
        if (a.role == INDEX || a.has_within) k->scans.push_back(i);
    }
    for (size_t v = 0; v < row.c_names.size() && v < 2; ++v) k->variant[v] = invokers.at(row.c_names[v]);
    (void)table;
    def_fast_n<1>(m, "_fast_" + row.name, k, from_python);
}

}  // namespace fast
}  // namespace
