/* runtime.c: the kernels' thread count, the SIMD level they dispatch to, and the flags they
 * were built with (see tinygrad_rep.h).
 *
 * The thread count is one process-wide number per extension module. It starts at 0 ("not
 * decided"): the first call that needs it reads TINYGRAD_REP_NUM_THREADS, so setting the variable
 * any time before the first kernel call works, and a later tr_set_num_threads() wins over it.
 */
#include "tinygrad_rep.h"

#include <errno.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* setup.py passes the real flags as a string literal; a build without it still compiles. */
#ifndef TR_BUILD_FLAGS
#define TR_BUILD_FLAGS "unknown (built without TR_BUILD_FLAGS)"
#endif

/* An upper bound that keeps a typo such as TINYGRAD_REP_NUM_THREADS=1000000 from asking the
 * OpenMP runtime for a million threads. */
#define TR_MAX_THREADS 1024

static int g_num_threads = 0; /* 0: not decided yet; read and written with __atomic builtins */

static int clamp_threads(long n)
{
    if (n < 1) return 1;
    if (n > TR_MAX_THREADS) return TR_MAX_THREADS;
    return (int)n;
}

/* The starting count: TINYGRAD_REP_NUM_THREADS when it is a whole number >= 1, else what OpenMP
 * would use by default (OMP_NUM_THREADS or the core count). Any other value is ignored here; the
 * Python adapters warn about it, since C has no good way to report it. */
static int initial_threads(void)
{
    const char *env = getenv("TINYGRAD_REP_NUM_THREADS");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        errno = 0;
        long v = strtol(env, &end, 10);
        while (end != NULL && (*end == ' ' || *end == '\n' || *end == '\t')) ++end;
        if (errno == 0 && end != env && end != NULL && *end == '\0' && v >= 1)
            return clamp_threads(v);
    }
#ifdef _OPENMP
    return clamp_threads(omp_get_max_threads());
#else
    return 1;
#endif
}

void tr_set_num_threads(int n)
{
    __atomic_store_n(&g_num_threads, clamp_threads(n), __ATOMIC_RELAXED);
}

int tr_get_num_threads(void)
{
    int n = __atomic_load_n(&g_num_threads, __ATOMIC_RELAXED);
    if (n == 0) {
        /* First use: decide once. If another thread (or tr_set_num_threads) got there first,
         * the compare-exchange fails and we keep its value. */
        int expected = 0;
        int init = initial_threads();
        __atomic_compare_exchange_n(&g_num_threads, &expected, init, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
        n = __atomic_load_n(&g_num_threads, __ATOMIC_RELAXED);
    }
    return n;
}

/* Mirrors the choice the target_clones resolvers make (the first listed level the CPU has), so
 * reports name the code path that actually runs. */
const char *tr_simd_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(TR_NO_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "default";
}

const char *tr_build_flags(void)
{
    return TR_BUILD_FLAGS;
}
