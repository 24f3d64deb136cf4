// The pthread pool behind pool.h. Units are claimed from one 64-bit counter whose high half is the job's
// generation and low half the next unit, so a worker that wakes late can never run a unit of a job that has
// moved on: its compare-and-swap fails. Idle workers spin for a millisecond, then sleep on a condition variable.
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/**
 * How long an idle worker polls for the next job before it sleeps.
 * NOTE: a decoding step runs a few dozen products with a JavaScript op or three between them (tens to hundreds
 * of microseconds). A worker that had gone to sleep in such a gap woke a futex round trip late, and the caller,
 * claiming units as they come, ran the late worker's unit itself: a 768 x 768 GEMV took twice its time. 4000
 * polls was 80 us on AMD Zen (PAUSE is ~20 ns there); GPT-2's steps gained ~10% from the longer wait.
 */
#define SPIN_NS 1000000
/** Polls between two reads of the clock while spinning. */
#define SPIN_CHECK 256

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static struct {
  int n;                  // threads, the caller included
  pthread_t *tids;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int sleepers;           // workers waiting on `wake` (under mu)
  int stop;               // under mu
  _Atomic uint64_t next;  // (generation << 32) | next unit
  atomic_int done;        // units finished in the current job
  // The current job; written only while no unit of it can be claimed.
  pool_task task;
  void *ctx;
  int units;
} P = { .n = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static inline uint32_t gen_of(uint64_t v) { return (uint32_t)(v >> 32); }

/** Claim and run units of generation `gen` until none are left. */
static void run_units(uint32_t gen, int thread) {
  for (;;) {
    uint64_t v = atomic_load_explicit(&P.next, memory_order_acquire);
    if (gen_of(v) != gen) return;
    // The job's fields, read between seeing generation gen and claiming one of its units: the job cannot
    // change until that unit is done, so they are consistent when the claim succeeds.
    pool_task task = P.task;
    void *ctx = P.ctx;
    int units = P.units;
    uint32_t u = (uint32_t)v;
    if ((int)u >= units) return;
    if (!atomic_compare_exchange_weak_explicit(&P.next, &v, v + 1, memory_order_acq_rel, memory_order_acquire)) continue;
    task(ctx, (int)u, thread);
    atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
  }
}

static void *worker(void *arg) {
  int thread = (int)(intptr_t)arg;
  uint32_t seen = gen_of(atomic_load(&P.next));
  for (;;) {
    uint32_t gen = seen;
    const uint64_t start = now_ns();
    for (int i = 1; gen == seen; i++) {
      CPU_RELAX();
      gen = gen_of(atomic_load_explicit(&P.next, memory_order_acquire));
      if (i % SPIN_CHECK == 0 && now_ns() - start > SPIN_NS) break;
    }
    if (gen == seen) {
      pthread_mutex_lock(&P.mu);
      P.sleepers++;
      while (!P.stop && (gen = gen_of(atomic_load(&P.next))) == seen) pthread_cond_wait(&P.wake, &P.mu);
      P.sleepers--;
      int stop = P.stop;
      pthread_mutex_unlock(&P.mu);
      if (stop) return NULL;
    }
    seen = gen;
    run_units(gen, thread);
  }
}

static void pool_stop(void) {
  if (P.n <= 1) return;
  pthread_mutex_lock(&P.mu);
  P.stop = 1;
  pthread_cond_broadcast(&P.wake);
  pthread_mutex_unlock(&P.mu);
  for (int i = 0; i < P.n - 1; i++) pthread_join(P.tids[i], NULL);
  free(P.tids);
  P.tids = NULL;
  P.stop = 0;
  P.n = 1;
}

int pool_init(int n) {
  if (n < 1) n = 1;
  if (n == P.n) return n;
  pool_stop();
  if (n == 1) return 1;
  P.tids = calloc((size_t)(n - 1), sizeof(pthread_t));
  if (!P.tids) return 1;
  int started = 0;
  for (int i = 0; i < n - 1; i++) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    int rc = pthread_create(&P.tids[i], &attr, worker, (void *)(intptr_t)(i + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0) break;
    started++;
  }
  P.n = started + 1;
  return P.n;
}

int pool_threads(void) { return P.n; }

void pool_run(pool_task task, void *ctx, int units) {
  if (units <= 0) return;
  if (P.n == 1 || units == 1) {
    for (int u = 0; u < units; u++) task(ctx, u, 0);
    return;
  }
  uint32_t gen = gen_of(atomic_load(&P.next)) + 1;
  P.task = task;
  P.ctx = ctx;
  P.units = units;
  atomic_store_explicit(&P.done, 0, memory_order_relaxed);
  atomic_store_explicit(&P.next, (uint64_t)gen << 32, memory_order_release);
  pthread_mutex_lock(&P.mu);
  if (P.sleepers > 0) pthread_cond_broadcast(&P.wake);
  pthread_mutex_unlock(&P.mu);
  run_units(gen, 0);
  while (atomic_load_explicit(&P.done, memory_order_acquire) < units) CPU_RELAX();
}
