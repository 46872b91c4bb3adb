/* team_stress.c: drives csrc/team.c directly, for tests/test_matmul_team.py (built there with
 * ThreadSanitizer when the compiler has it, else plainly). It includes team.c itself, so the
 * checks can read the team's state.
 *
 * First the spin policy, from that state (no check depends on when this thread gets a CPU
 * back): how long workers spin after a call (1/16 of it, at most 1 ms, when it came back to
 * back; else 1/64, at most 20 us); a call after a 5 ms pause is not back to back and leaves
 * no worker spinning for tr_team_spinning; the next call is, and its worker spins 1 ms past
 * its end. Then the stress: every call sums a strided share of an array per thread and the
 * caller checks the total. Calls come back to back (workers spin between them), after pauses
 * of 0-3 ms (they sleep, or are caught while spinning), with the thread count changing (the
 * team grows; unused workers stay asleep), and from two threads at once (one of them is
 * refused and sums alone, as matmul.c then runs OpenMP), each caller asking tr_team_spinning
 * before its calls. Prints "ok <calls the team ran> <calls refused>" or exits 1. */
#include "team.c"   /* the file itself, so that the checks can read its state (g, linger_ns) */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LEN 4096
#define MAXT 5

typedef struct {
    const int64_t *data;
    int64_t part[MAXT];
} sum_job;

static int64_t data[LEN];
static int64_t want;

static void sum_share(void *arg, int tid, int nthr)
{
    sum_job *j = arg;
    int64_t s = 0;
    for (int i = tid; i < LEN; i += nthr) s += j->data[i];
    j->part[tid] = s;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void busy_16ms(void *arg, int tid, int nthr)
{
    (void)tid;
    (void)nthr;
    const double end = *(const double *)arg;
    while (seconds() < end) {
    }
}

/* 1 when the team ran a 16 ms call (of 2 threads, busy until *end) */
static int long_call(double *end)
{
    *end = seconds() + 0.016;
    return tr_team_run(busy_16ms, end, 2);
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

typedef struct {
    int calls, ran, refused, wrong, spinning;
} tally;

static void one_call(tally *t, int nthr)
{
    sum_job j = {data, {0}};
    if (tr_team_run(sum_share, &j, nthr))
        ++t->ran;
    else {
        ++t->refused;
        for (int tid = 0; tid < nthr; ++tid) sum_share(&j, tid, nthr);
    }
    int64_t total = 0;
    for (int tid = 0; tid < nthr; ++tid) total += j.part[tid];
    t->wrong += total != want;
    ++t->calls;
}

static void *caller(void *arg)
{
    tally *t = arg;
    for (int i = 0; i < 3000; ++i) {
        t->spinning += tr_team_spinning(2 + i % (MAXT - 1));
        one_call(t, 2 + i % (MAXT - 1));
        if (i % 97 == 0) pause_us(i % 3 * 1000);
    }
    return NULL;
}

int main(void)
{
    for (int i = 0; i < LEN; ++i) data[i] = (int64_t)i * 7919 % 1000003;
    for (int i = 0; i < LEN; ++i) want += data[i];

    /* The spin policy, read from the team's own state (before the stress: nothing else runs),
     * so that no check depends on when this thread gets a CPU back. */
    if (linger_ns(0, 16000000, 1) != 1000000 || linger_ns(0, 640000, 1) != 40000
        || linger_ns(0, 16000000, 0) != 20000 || linger_ns(0, 640000, 0) != 10000) {
        fprintf(stderr, "spin policy: linger_ns\n");
        return 1;
    }
    double end1, end2;
    pause_us(5000);
    const int rested = tr_team_spinning(2);
    const int first = long_call(&end1), first_linger = g.job.linger, first_spins = tr_team_spinning(2);
    const int second = long_call(&end2), second_linger = g.job.linger;
    /* the worker spins from the end of its share (after end2) for 1/16 of the call, capped at 1 ms */
    const int64_t spin_until = __atomic_load_n(&g.workers[0]->spin_until, __ATOMIC_RELAXED);
    if (!first || !second || rested || first_linger || first_spins || !second_linger
        || spin_until < (int64_t)(end2 * 1e9) + LINGER_MAX_NS - 1000) {
        fprintf(stderr, "spin policy: ran %d %d; after 5 ms spinning %d; first call back to back %d, then"
                " spinning %d; second call back to back %d, spinning %.0f us past its end\n", first, second,
                rested, first_linger, first_spins, second_linger, (spin_until - end2 * 1e9) / 1e3);
        return 1;
    }

    tally alone = {0, 0, 0, 0, 0};
    caller(&alone);                              /* one caller: every call runs on the team */
    if (alone.refused || alone.wrong) {
        fprintf(stderr, "one caller: %d refused, %d wrong\n", alone.refused, alone.wrong);
        return 1;
    }

    tally two[2] = {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}};
    pthread_t th[2];
    for (int k = 0; k < 2; ++k) pthread_create(&th[k], NULL, caller, &two[k]);
    for (int k = 0; k < 2; ++k) pthread_join(th[k], NULL);
    const int ran = two[0].ran + two[1].ran, refused = two[0].refused + two[1].refused;
    if (two[0].wrong || two[1].wrong || ran + refused != 6000) {
        fprintf(stderr, "two callers: %d wrong, %d calls\n", two[0].wrong + two[1].wrong, ran + refused);
        return 1;
    }
    printf("ok %d %d\n", alone.ran + ran, refused);
    return 0;
}
