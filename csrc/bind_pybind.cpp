// bind_pybind.cpp: the pybind11 module tinygrad_rep._C, one Python function per C kernel.
//
// Nothing here is written per kernel. The header's TR_KERNELS list names every kernel; for each,
// one variadic template (bind_checked) deduces the C signature from the function pointer and
// binds a checked function under the kernel's name without "tr_", with the C argument order and
// numpy arrays in place of pointers: e.g. softmax_forward_f32(rows, cols, x, out). What each
// argument means (a size, an array of so many elements, an index array with its range, ...)
// comes from the kernel table, tinygrad_rep/backend/kernels.py, read once at import. The checks
// make calling _C directly safe (ValueError/TypeError/IndexError, never corrupt memory):
//  - arrays are taken with noconvert(): a wrong dtype or a non-C-contiguous array is a TypeError,
//    never a silent temporary copy (a copied output would drop the result on the floor);
//  - sizes must be >= 0, their products must not overflow, and every array's element count
//    must be exactly what the C kernel will touch; outputs must be writeable;
//  - every array's data must be aligned for its element type (vectorized C code may assume it);
//  - index arrays are scanned for out-of-range entries (O(n), small next to the copy they guard);
//  - no array the kernel writes shares a byte with any other array of the call: a kernel may
//    write an output before it has read all of its inputs, indices included.
// The GIL is released around each C call so other Python threads run meanwhile.
// Besides these, _fast_<kernel> (pybind_fast.h) is the adapter's fast path: the same checks on
// numpy_ref-style arguments, returning None instead of raising.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tinygrad_rep.h"

namespace py = pybind11;

namespace {

// ---- one kernel row of the table (kernels.Kernel.spec()), by position ----

constexpr int kMaxArgs = 16, kMaxSyms = 16;

enum Role { SIZE, IN, OUT, INOUT, INDEX, INTS, FLAG, SCALAR, SEED, SCRATCH, DERIVED };
enum Tok { AXIS = 0, STAR = 1, OPTIONAL = 2 };

struct ArgSpec {
    std::string name;
    Role role;
    char dtype;                              // 'T' the kernel's float type, 'd' double, 'q' int64
    std::vector<std::pair<int, int>> tokens; // shape pattern: (symbol, Tok)
    int swap = -1, required_if = -1;         // C positions of flags
    bool has_within = false, finite = false, from_python = false;
    double lo = 0, hi = 0;
    int below = -1;                          // index arrays: the symbol bounding the entries
    std::string noun;
    std::vector<int> count;                  // scratch: element count = sum of these symbols
    int sym = -1;                            // sizes: their symbol
    int64_t minimum = 0;
    int nonempty_if = -1;                    // sizes: must be >= 1 unless this array is empty
    std::string message;
    bool written() const { return role == OUT || role == INOUT || role == SCRATCH; }
    bool is_array() const { return role == IN || role == OUT || role == INOUT || role == INDEX || role == INTS || role == SCRATCH; }
};

struct Row {
    std::string name;
    std::vector<std::string> symbols;
    std::vector<int> symbol_size;            // C position of the size argument, or -1 (a table height)
    std::vector<ArgSpec> args;
    std::vector<int> results;                // C positions of the arrays numpy_ref returns
    std::vector<std::string> c_names;
};

Role role_of(const std::string &r)
{
    static const std::map<std::string, Role> roles = {
        {"size", SIZE}, {"in", IN}, {"out", OUT}, {"inout", INOUT}, {"index", INDEX}, {"ints", INTS},
        {"flag", FLAG}, {"scalar", SCALAR}, {"seed", SEED}, {"scratch", SCRATCH}, {"derived", DERIVED}};
    auto it = roles.find(r);
    if (it == roles.end()) throw py::value_error("kernel table: unknown role " + r);
    return it->second;
}

Row row_from(py::handle spec)
{
    auto t = spec.cast<py::tuple>();
    Row row;
    row.name = t[0].cast<std::string>();
    for (auto c : t[1].cast<py::tuple>()) row.c_names.push_back(c.cast<std::string>());
    for (auto r : t[4].cast<py::tuple>()) row.results.push_back(r.cast<int>());
    if (t[2].cast<py::tuple>().size() > kMaxSyms) throw py::value_error("kernel table: raise kMaxSyms");
    for (auto s : t[2].cast<py::tuple>()) {
        auto st = s.cast<py::tuple>();
        row.symbols.push_back(st[0].cast<std::string>());
        row.symbol_size.push_back(st[1].cast<int>());
    }
    for (auto a : t[3].cast<py::tuple>()) {
        auto at = a.cast<py::tuple>();
        ArgSpec s;
        s.name = at[0].cast<std::string>();
        s.role = role_of(at[1].cast<std::string>());
        auto dt = at[2].cast<std::string>();
        s.dtype = dt == "T" ? 'T' : dt == "f64" ? 'd' : 'q';
        for (auto tok : at[3].cast<py::tuple>()) {
            auto tt = tok.cast<py::tuple>();
            s.tokens.emplace_back(tt[0].cast<int>(), tt[1].cast<int>());
        }
        s.swap = at[4].cast<int>();
        s.required_if = at[5].cast<int>();
        s.has_within = at[6].cast<bool>();
        s.lo = at[7].cast<double>();
        s.hi = at[8].cast<double>();
        s.finite = at[9].cast<bool>();
        s.below = at[10].cast<int>();
        s.noun = at[11].cast<std::string>();
        s.from_python = at[12].cast<bool>();
        for (auto c : at[13].cast<py::tuple>()) s.count.push_back(c.cast<int>());
        s.sym = at[14].cast<int>();
        s.minimum = at[15].cast<int64_t>();
        s.nonempty_if = at[16].cast<int>();
        s.message = at[17].cast<std::string>();
        row.args.push_back(std::move(s));
    }
    return row;
}

// One C argument's value, whatever its C type.
union Slot {
    int64_t i;
    uint64_t u;
    double d;
    void *p;
};

template <typename A>
A from_slot(const Slot &s)
{
    if constexpr (std::is_pointer_v<A>) return static_cast<A>(s.p);
    else if constexpr (std::is_same_v<A, uint64_t>) return s.u;
    else if constexpr (std::is_floating_point_v<A>) return static_cast<A>(s.d);
    else return static_cast<A>(s.i);
}

// Call F with the C arguments held in s.
template <typename F> struct Invoke;
template <typename... A>
struct Invoke<void (*)(A...)> {
    template <void (*F)(A...), size_t... I>
    static void call_with(const Slot *s, std::index_sequence<I...>) { F(from_slot<A>(s[I])...); }
    template <void (*F)(A...)>
    static void call(const Slot *s) { call_with<F>(s, std::index_sequence_for<A...>{}); }
};
using Invoker = void (*)(const Slot *);



// ---- the checked functions: _C.<kernel>(C arguments) ----

[[noreturn]] void fail(const std::string &fn, const std::string &msg)
{
    throw py::value_error(fn + ": " + msg);
}

int64_t mul(const std::string &fn, int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail(fn, "size product overflows int64");
    return r;
}

// The checks of one call; arrays[i] is the i-th C argument's array (null for numbers).
void check_call(const Row &row, const std::string &fn, Slot *s, py::array *const *arrays)
{
    const int nargs = static_cast<int>(row.args.size());
    int64_t sym[kMaxSyms];
    for (size_t k = 0; k < row.symbols.size(); ++k) sym[k] = -1;
    for (int i = 0; i < nargs; ++i) {
        const ArgSpec &a = row.args[i];
        if (a.role != SIZE) continue;
        if (s[i].i < 0) fail(fn, "sizes must be >= 0, got " + std::to_string(s[i].i));
        sym[a.sym] = s[i].i;
    }
    // element counts: the product of the pattern's symbols; a symbol that is no size argument
    // is a table height, defined by the first array that has it (count a multiple of the rest)
    for (int i = 0; i < nargs; ++i) {
        const ArgSpec &a = row.args[i];
        if (!a.is_array()) continue;
        const int64_t size = static_cast<int64_t>(arrays[i]->size());
        if (a.role == SCRATCH) {
            int64_t want = 0;
            for (int c : a.count)
                if (__builtin_add_overflow(want, sym[c], &want)) fail(fn, "size sum overflows int64");
            if (size != want)
                fail(fn, a.name + " has " + std::to_string(size) + " elements, expected " + std::to_string(want));
            continue;
        }
        int64_t known = 1;
        int height = -1;
        std::string per_row;
        for (auto [k, kind] : a.tokens) {
            (void)kind;
            if (sym[k] < 0 && row.symbol_size[k] < 0 && height < 0) {
                height = k;
                continue;
            }
            known = mul(fn, known, sym[k]);
            per_row += (per_row.empty() ? "" : "*") + row.symbols[k];
        }
        if (height < 0) {
            if (size != known)
                fail(fn, a.name + " has " + std::to_string(size) + " elements, expected " + std::to_string(known));
        } else if (known == 0) {
            sym[height] = INT64_MAX;  // the kernel touches none of it: any table, any index
        } else {
            if (size % known != 0)
                fail(fn, a.name + " has " + std::to_string(size) + " elements, not a multiple of " +
                             per_row + "=" + std::to_string(known));
            sym[height] = size / known;
        }
    }
    for (int i = 0; i < nargs; ++i) {
        const ArgSpec &a = row.args[i];
        if (a.role == SIZE && a.nonempty_if >= 0 && arrays[a.nonempty_if]->size() > 0 && s[i].i < 1)
            fail(fn, a.message);
    }
    for (int i = 0; i < nargs; ++i) {
        const ArgSpec &a = row.args[i];
        if (!a.is_array()) continue;
        py::array &arr = *arrays[i];
        if (a.written() && !arr.writeable()) fail(fn, a.name + " is read-only");
        if (arr.size() > 0 && reinterpret_cast<std::uintptr_t>(arr.data()) % arr.itemsize() != 0)
            fail(fn, a.name + " is not aligned for its dtype");
        s[i].p = const_cast<void *>(arr.data());
    }
    // every C-contiguous array is exactly the bytes [data, data + nbytes)
    for (int i = 0; i < nargs; ++i) {
        if (!row.args[i].is_array() || !row.args[i].written()) continue;
        for (int j = 0; j < nargs; ++j) {
            if (j == i || !row.args[j].is_array() || (row.args[j].written() && j < i)) continue;
            const py::array &a = *arrays[i], &b = *arrays[j];
            if (a.nbytes() == 0 || b.nbytes() == 0) continue;
            auto pa = reinterpret_cast<std::uintptr_t>(a.data()), pb = reinterpret_cast<std::uintptr_t>(b.data());
            if (pa < pb + static_cast<std::uintptr_t>(b.nbytes()) && pb < pa + static_cast<std::uintptr_t>(a.nbytes()))
                fail(fn, row.args[i].name + " and " + row.args[j].name + " must not overlap");
        }
    }
    for (int i = 0; i < nargs; ++i) {
        const ArgSpec &a = row.args[i];
        if (a.role != INDEX) continue;
        const int64_t *idx = static_cast<const int64_t *>(s[i].p), n = arrays[i]->size(), upper = sym[a.below];
        for (int64_t k = 0; k < n; ++k)
            if (idx[k] < 0 || idx[k] >= upper)
                throw py::index_error(fn + ": " + a.noun + " " + std::to_string(idx[k]) +
                                      " is out of range for size " + std::to_string(upper));
    }
}

// The pybind11 parameter type for a C argument type.
template <typename A> struct param { using type = A; };
template <typename T> struct param<const T *> { using type = py::array_t<T, py::array::c_style>; };
template <typename T> struct param<T *> { using type = py::array_t<T, py::array::c_style>; };

template <typename A>
void to_slot(Slot &s, py::array *&arr, A &v)
{
    if constexpr (std::is_base_of_v<py::array, A>) arr = &v;
    else if constexpr (std::is_same_v<A, uint64_t>) s.u = v;
    else if constexpr (std::is_floating_point_v<A>) s.d = v;
    else s.i = v;
}

// Bind the checked function of kernel F (C name tr_<name>) from its table row.
template <auto F, typename... A, size_t... I>
void bind_checked(py::module_ &m, const Row *row, const char *name, void (*)(A...), std::index_sequence<I...>)
{
    static_assert(sizeof...(A) <= kMaxArgs, "raise kMaxArgs");
    if (row->args.size() != sizeof...(A))
        throw py::value_error(std::string("kernel table: ") + name + " has " + std::to_string(row->args.size()) +
                              " arguments, the header " + std::to_string(sizeof...(A)));
    std::string fn = name;
    m.def(
        name,
        [row, fn](typename param<A>::type... a) {
            Slot s[sizeof...(A) + 1];
            py::array *arrays[sizeof...(A) + 1] = {};
            (to_slot(s[I], arrays[I], a), ...);
            check_call(*row, fn, s, arrays);
            py::gil_scoped_release nogil;
            Invoke<void (*)(A...)>::template call<F>(s);
        },
        py::arg(row->args[I].name.c_str()).noconvert(std::is_pointer_v<A>)...);
}

template <typename R, typename... A>
constexpr size_t arity(R (*)(A...)) { return sizeof...(A); }

}  // namespace

#include "pybind_fast.h"

PYBIND11_MODULE(_C, m)
{
    m.doc() = "tinygrad_rep C kernels (pybind11 binding); see csrc/tinygrad_rep.h";

    m.def("set_num_threads", &tr_set_num_threads, py::arg("n"),
          "Set the number of OpenMP threads the kernels may use (n < 1 means 1).");
    m.def("get_num_threads", &tr_get_num_threads, "The number of threads the kernels may use.");
    m.def("simd_level", &tr_simd_level, "The SIMD level the kernels run at.");
    m.def("build_flags", &tr_build_flags, "The C flags the kernels were built with.");

    // The table, read once: rows live as long as the module (the bound functions keep pointers).
    auto table = py::module_::import("tinygrad_rep.backend.kernels");
    static std::vector<Row> rows;
    std::map<std::string, const Row *> by_c_name;
    std::map<std::string, Invoker> invokers;
    auto kernels = table.attr("KERNELS").cast<py::tuple>();
    rows.reserve(kernels.size());
    for (auto k : kernels) {
        auto spec = k.attr("spec")();
        rows.push_back(row_from(spec));
        for (auto c : spec.cast<py::tuple>()[1].cast<py::tuple>()) by_c_name[c.cast<std::string>()] = &rows.back();
    }
    auto row_for = [&](const char *name) -> const Row * {
        auto it = by_c_name.find(name);
        if (it == by_c_name.end())
            throw py::value_error(std::string("the kernel table (tinygrad_rep/backend/kernels.py) has no row for tr_") + name);
        return it->second;
    };

#define TR_BIND(NAME)                                                                              \
    bind_checked<tr_##NAME>(m, row_for(#NAME), #NAME, tr_##NAME,                                   \
                            std::make_index_sequence<arity(tr_##NAME)>{});                         \
    invokers[#NAME] = &Invoke<decltype(&tr_##NAME)>::call<tr_##NAME>;
    TR_KERNELS(TR_BIND)
#undef TR_BIND

    for (const Row &row : rows) fast::bind(m, row, invokers, table);
}
