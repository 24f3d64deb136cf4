// A persistent pool of pthreads that runs `units` numbered pieces of one job, the calling thread included.
// Jobs run one at a time, from one calling thread (the Node main thread); pool_run returns when all are done.
#ifndef AJAR_POOL_H
#define AJAR_POOL_H

/** One unit of a job: `unit` in [0, units), `thread` in [0, pool_threads()) names the caller's scratch. */
typedef void (*pool_task)(void *ctx, int unit, int thread);

/** Start n - 1 worker threads (n >= 1); a second call resizes the pool. Returns the threads in use. */
int pool_init(int n);

/** Threads a job runs on, the caller included. */
int pool_threads(void);

/** Run task(ctx, u, t) for every u in [0, units) across the pool; returns when every unit has run. */
void pool_run(pool_task task, void *ctx, int units);

#endif
