/* team.h: the persistent worker team that runs the threaded blocked matrix products of
 * matmul.c (see team.c for why it is not an OpenMP parallel region). Internal: not part of
 * tinygrad_rep.h, whose declarations are the bindings' API. */
#ifndef TR_TEAM_H
#define TR_TEAM_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__unix__)
#include <sched.h>
#endif

/* Pauses a thread spins while it waits for another thread of the same call before it starts
 * yielding its CPU (about 0.1-0.2 ms at 10-25 ns per pause). */
#define TR_WAIT_SPINS 8192

/* One step of waiting for another thread of the same call (matmul.c's barriers and panel
 * flags, the end of a team call): a pause, and after TR_WAIT_SPINS of them a yield (the thread
 * waited for may be queued behind this one, with more threads than CPUs). */
static inline void tr_wait_step(int *spins)
{
    if (*spins < TR_WAIT_SPINS) {
        ++*spins;
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
    } else {
#if defined(__unix__)
        sched_yield();
#endif
    }
}

typedef void (*tr_team_fn)(void *arg, int tid, int nthr);

/* Runs fn(arg, tid, nthr) for every tid in 0..nthr-1, tid 0 in the calling thread and the
 * others in the team's workers, and returns 1 once every one has returned. Returns 0 without
 * calling fn when the team cannot take this call (nthr < 2, another thread is using the team,
 * TINYGRAD_REP_TEAM=0, or a worker could not be started): the caller then runs fn another way. */
int tr_team_run(tr_team_fn fn, void *arg, int nthr);

/* 1 when the workers a call of nthr threads needs are all spinning for the next call (each on
 * a CPU of its own, for 20 us more at least): no sleeping worker would have to be woken. */
int tr_team_spinning(int nthr);

/* 0 when the environment variable `name` is "0", else 1: read at the first call with this
 * `cached` (a static int of the caller's, 0 until then) and remembered. */
int tr_env_switch(const char *name, int *cached);

#endif
