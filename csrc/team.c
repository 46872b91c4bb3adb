/* team.c: a persistent team of worker threads for the threaded blocked matrix products
 * (matmul.c), whose workers keep spinning after a call only while calls arrive back to back.
 *
 * Why not an OpenMP parallel region, as before: the package sets OMP_WAIT_POLICY=PASSIVE so
 * that our idle threads never spin on cores numpy's or torch's threads need, and a passive
 * worker sleeps the moment a call ends. Waking it took 50-70 us on a 2-vCPU VM, and the caller
 * then waited as long again at the end for the worker's late share: about 2.5% of sgemm 1024^3
 * at 2 threads, paid by every call, where OpenBLAS's workers spin between calls and pay it only
 * after an idle spell. A fixed spin (GOMP_SPINCOUNT) is no answer: it costs whatever runs next
 * its cores (a loop alternating our 256^3 product with numpy's ran 45% slower per pair with a
 * spin count of 2000, see the README).
 *
 * So a worker that has finished its share of a call spins for the next one for 1/16 of the
 * call's length (at most 1 ms) when this call itself came back to back: within that window of
 * the last one's end. After any other call it spins only for 1/64 of the call (at most 20 us:
 * enough for the next call of a loop, too short to matter to whatever else runs next) and then
 * sleeps (a futex wait), as a passive OpenMP worker does. Products run back to back thus find
 * their workers awake from the second call on; a product that alternates with other threaded
 * work (numpy's, say) has them spin 1/64 of its length at most.
 *
 * One caller at a time: a thread that calls while another uses the team gets 0 back and runs
 * its product in an OpenMP region as before (the same work split, so the same bits). The team
 * grows to the largest thread count asked for and never shrinks; a worker not needed by a call
 * is not woken. After fork() the child has none of the parent's workers: a handler forgets them,
 * and the child's first threaded call starts its own.
 * TINYGRAD_REP_TEAM=0 (read once) turns the team off: every threaded product uses OpenMP.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* syscall */
#endif

#include "team.h"

#include <stdlib.h>
#include <string.h>

int tr_env_switch(const char *name, int *cached)
{
    int v = __atomic_load_n(cached, __ATOMIC_RELAXED);   /* 0: not read yet, 1: on, 2: off */
    if (!v) {                                             /* racing first reads agree */
        const char *env = getenv(name);
        v = env != NULL && strcmp(env, "0") == 0 ? 2 : 1;
        __atomic_store_n(cached, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)   /* immintrin.h: included by team.h */
#define team_pause() _mm_pause()
#else
#define team_pause() ((void)0)
#endif

#define TEAM_MAX 1023                      /* workers: tr_set_num_threads caps threads at 1024 */
#define LINGER_SHARE 16                    /* back to back: spin for 1/16 of the call's length ... */
#define LINGER_MAX_NS 1000000              /* ... and at most 1 ms */
#define CATCH_SHARE 64                     /* else for 1/64 of it ... */
#define CATCH_MAX_NS 20000                 /* ... and at most 20 us */
#define SPIN_MARGIN_NS 20000              /* tr_team_spinning: still spinning 20 us from now */

typedef struct {                           /* one cache line per worker (aligned_alloc below) */
    _Alignas(64) uint32_t go;              /* bumped by the caller for each call this worker joins */
    uint32_t sleeping;                     /* 1 while the worker is in (or about to enter) futex wait */
    int64_t spin_until;                    /* it spins for the next call until then (ns) */
    int tid;                               /* 1.. : its thread number in every call */
} worker;

/* One call's job, written by the caller before it bumps the workers' `go` (release), read by
 * each worker after it sees the bump (acquire). */
typedef struct {
    tr_team_fn fn;
    void *arg;
    int nthr;
    int linger;                            /* this call came back to back: spin longer after it */
    int64_t t0;                            /* when the call started, ns */
} team_job;

static struct {
    int busy;                              /* 1 while a caller uses the team */
    int started;                           /* workers running */
    worker *workers[TEAM_MAX];
    team_job job;
    int pending;                           /* workers still inside this call */
    int64_t last_end, last_window;         /* when the last call ended; a call within last_window
                                            * of that counts as back to back */
} g;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void futex_wait(uint32_t *word, uint32_t expected)
{
    (void)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(uint32_t *word)
{
    (void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* How long the workers of a call that started at t0 and ended at `end` spin after it. */
static int64_t linger_ns(int64_t t0, int64_t end, int back_to_back)
{
    const int64_t share = back_to_back ? LINGER_SHARE : CATCH_SHARE;
    const int64_t most = back_to_back ? LINGER_MAX_NS : CATCH_MAX_NS;
    const int64_t w = (end - t0) / share;
    return w < 0 ? 0 : (w > most ? most : w);
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    uint32_t seen = 0;
    int64_t linger_until = 0;              /* spin (not sleep) for the next call until then */
    for (;;) {
        uint32_t go;
        for (unsigned spins = 0; (go = __atomic_load_n(&me->go, __ATOMIC_ACQUIRE)) == seen; ++spins) {
            if (linger_until) {
                if ((spins & 63) == 0 && now_ns() >= linger_until) linger_until = 0;
                team_pause();
                continue;
            }
            /* Dekker with the caller: it bumps `go` then reads `sleeping`; this sets `sleeping`
             * then the kernel compares `go`. One of the two sees the other's write. */
            __atomic_store_n(&me->sleeping, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&me->go, __ATOMIC_SEQ_CST) == seen) futex_wait(&me->go, seen);
            __atomic_store_n(&me->sleeping, 0, __ATOMIC_RELAXED);
        }
        seen = go;
        const team_job job = g.job;       /* the caller does not touch it until pending is 0 */
        job.fn(job.arg, me->tid, job.nthr);
        const int64_t done = now_ns();
        linger_until = done + linger_ns(job.t0, done, job.linger);
        __atomic_store_n(&me->spin_until, linger_until, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&g.pending, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* In a child after fork(): the parent's workers do not exist here. Their memory is left as it is
 * (another thread of the parent may have been using it at the fork). */
static void forget_workers(void)
{
    memset(&g, 0, sizeof g);
}

static void register_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, forget_workers);
}

/* Workers 1..n-1 running; 0 when one could not be started (the call then uses OpenMP). Started
 * with every signal blocked, so signals go to the process's own threads. */
static int ensure_workers(int n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (g.started >= n - 1) return 1;
    pthread_once(&once, register_fork_handler);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int ok = 1;
    while (ok && g.started < n - 1) {
        worker *w = aligned_alloc(64, sizeof *w);
        pthread_attr_t attr;
        pthread_t th;
        ok = w != NULL && pthread_attr_init(&attr) == 0;
        if (ok) {
            memset(w, 0, sizeof *w);
            w->tid = g.started + 1;
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            ok = pthread_create(&th, &attr, worker_main, w) == 0;
            pthread_attr_destroy(&attr);
        }
        if (ok) {
            __atomic_store_n(&g.workers[g.started], w, __ATOMIC_RELEASE);
            __atomic_store_n(&g.started, g.started + 1, __ATOMIC_RELEASE);
        }
        else
            free(w);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ok;
}

static int team_enabled(void)
{
    static int cached;
    return tr_env_switch("TINYGRAD_REP_TEAM", &cached);
}

/* A call starting at t0 comes back to back: within the window of the last call's end. */
static int back_to_back(int64_t t0)
{
    return g.last_end != 0 && t0 - g.last_end <= g.last_window;
}

int tr_team_spinning(int nthr)
{
    if (nthr < 2 || nthr - 1 > TEAM_MAX || !team_enabled()) return 0;
    /* Read without holding the team (a hint: relaxed loads); `started` only grows, but a
     * worker's pointer may be written just after it, hence the check. */
    const int n = __atomic_load_n(&g.started, __ATOMIC_ACQUIRE);
    if (n < nthr - 1) return 0;
    const int64_t soon = now_ns() + SPIN_MARGIN_NS;
    for (int i = 0; i < nthr - 1; ++i) {
        worker *w = __atomic_load_n(&g.workers[i], __ATOMIC_ACQUIRE);
        if (w == NULL || __atomic_load_n(&w->spin_until, __ATOMIC_RELAXED) < soon) return 0;
    }
    return 1;
}

int tr_team_run(tr_team_fn fn, void *arg, int nthr)
{
    if (nthr < 2 || nthr - 1 > TEAM_MAX || !team_enabled()) return 0;
    int idle = 0;
    if (!__atomic_compare_exchange_n(&g.busy, &idle, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
    if (!ensure_workers(nthr)) {
        __atomic_store_n(&g.busy, 0, __ATOMIC_RELEASE);
        return 0;
    }
    const int64_t t0 = now_ns();
    g.job = (team_job){fn, arg, nthr, back_to_back(t0), t0};
    g.pending = nthr - 1;
    for (int i = 0; i < nthr - 1; ++i) {
        worker *w = g.workers[i];
        __atomic_add_fetch(&w->go, 1, __ATOMIC_SEQ_CST);   /* publishes the job (and is a release) */
        if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST)) futex_wake(&w->go);
    }
    fn(arg, 0, nthr);
    /* The workers' shares end about when this one does (work is shared out item by item), so the
     * wait is short: spin, then yield to a worker that may be queued on this CPU. */
    for (int spins = 0; __atomic_load_n(&g.pending, __ATOMIC_ACQUIRE) != 0;) tr_wait_step(&spins);
    g.last_end = now_ns();
    g.last_window = linger_ns(t0, g.last_end, 1);
    __atomic_store_n(&g.busy, 0, __ATOMIC_RELEASE);
    return 1;
}

#else   /* no futex: every threaded product uses OpenMP */

int tr_team_spinning(int nthr)
{
    (void)nthr;
    return 0;
}

int tr_team_run(tr_team_fn fn, void *arg, int nthr)
{
    (void)fn;
    (void)arg;
    (void)nthr;
    return 0;
}

#endif
