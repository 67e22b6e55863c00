/* A fork-join parallel loop over pthreads, spawned per call: libcsp keeps no
 * threads alive between calls and no global state. Callers use it for work
 * large enough (pruning events) that a thread start is noise. */
#include "internal.h"

#include <pthread.h>

typedef struct {
    csp__range_fn fn;
    void *arg;
    int64_t begin, end;
    int32_t worker;
} chunk;

static void *run_chunk(void *p) {
    chunk *c = p;
    c->fn(c->arg, c->begin, c->end, c->worker);
    return NULL;
}

csp_status csp__parallel_for(csp_context *ctx, int64_t n, int64_t grain, csp__range_fn fn,
                             void *arg) {
    if (n <= 0)
        return CSP_OK;
    if (grain < 1)
        grain = 1;
    int64_t workers = ctx->num_threads;
    if (workers > (n + grain - 1) / grain)
        workers = (n + grain - 1) / grain;
    if (workers <= 1) {
        fn(arg, 0, n, 0);
        return CSP_OK;
    }
    chunk chunks[CSP_MAX_THREADS];
    pthread_t tids[CSP_MAX_THREADS];
    int started[CSP_MAX_THREADS] = {0};
    for (int64_t w = 0; w < workers; w++) {
        chunks[w].fn = fn;
        chunks[w].arg = arg;
        chunks[w].begin = n * w / workers;
        chunks[w].end = n * (w + 1) / workers;
        chunks[w].worker = (int32_t)w;
    }
    for (int64_t w = 1; w < workers; w++)
        started[w] = pthread_create(&tids[w], NULL, run_chunk, &chunks[w]) == 0;
    run_chunk(&chunks[0]);
    for (int64_t w = 1; w < workers; w++) {
        if (started[w])
            pthread_join(tids[w], NULL);
        else
            run_chunk(&chunks[w]); /* could not start: do it here */
    }
    return CSP_OK;
}
