/* Data-parallel CSP with MPI: every rank holds the same weights (as after an
 * all-reduced gradient step) but sees different activations. Before each
 * pruning event the ranks sum their activation accumulators with
 * MPI_Allreduce through the pruner's sensing handles; then every rank
 * steps on its own and the mask digests (and weights) agree without any
 * other communication.
 *
 *   mpirun -np 2 build/examples/mpi_digest        (as root: --allow-run-as-root)
 *
 * Exit status 0 when every rank ends with the same digest and weights. */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                         \
    do {                                                                                    \
        csp_status st_ = (call);                                                            \
        if (st_ < 0) {                                                                      \
            fprintf(stderr, "rank %d: %s: %s\n", rank, #call, csp_context_last_error(ctx)); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                   \
        }                                                                                   \
    } while (0)

/* A tiny deterministic generator (xorshift64*), uniform in [-1, 1). */
static double uniform(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-52 - 1.0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* Sum every activations accumulator of the pruner over the ranks. */
static void allreduce_activations(csp_pruner *p, csp_context *ctx, int rank) {
    for (int32_t i = 0; i < csp_pruner_num_tensors(p); i++) {
        csp_sensing *s = NULL;
        CHECK(csp_pruner_sensing(p, i, &s));
        if (s == NULL || csp_sensing_kind(s) != CSP_SENSING_ACTIVATIONS)
            continue;
        int64_t len = csp_sensing_accumulator_len(s); /* n * n + 1 doubles */
        double *buf = malloc((size_t)len * sizeof *buf);
        CHECK(csp_sensing_read_accumulator(s, buf, len));
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)len, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        CHECK(csp_sensing_write_accumulator(s, buf, len));
        free(buf);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (CSP_CHECK_VERSION() != CSP_OK) {
        fprintf(stderr, "libcsp version mismatch\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* The same seed on every rank: random sensing agrees without talking. */
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = 20210208;
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, &co) != CSP_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);

    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.begin_step = 0;
    so.end_step = 60;
    so.frequency = 10;
    so.final_sparsity = 0.9;
    csp_schedule *sched = NULL;
    CHECK(csp_schedule_create(&sched, ctx, &so));

    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    csp_pruner *p = NULL;
    CHECK(csp_pruner_create(&p, ctx, sched, &po));
    /* Observe only the last 4 steps before an event. */
    CHECK(csp_pruner_set_experimental(p, -1, CSP_X_OBSERVE_WINDOW, 4));

    /* An input layer (activation sensing, refit) and a recurrent one
     * (random Gaussian sensing). */
    enum { H = 64, IN = 40, BATCH = 16, STEPS = 70 };
    static float w_ih[H * IN], w_hh[H * H];
    uint64_t data = 42; /* the same on every rank */
    for (int i = 0; i < H * IN; i++)
        w_ih[i] = (float)(0.3 * uniform(&data));
    for (int i = 0; i < H * H; i++)
        w_hh[i] = (float)(0.2 * uniform(&data));
    int64_t s_ih[2] = {H, IN}, s_hh[2] = {H, H};
    csp_tensor *t_ih = NULL, *t_hh = NULL;
    CHECK(csp_tensor_create(&t_ih, ctx, w_ih, CSP_DTYPE_F32, 2, s_ih, 0, "W_ih"));
    CHECK(csp_tensor_create(&t_hh, ctx, w_hh, CSP_DTYPE_F32, 2, s_hh, 0, "W_hh"));
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.sensing.kind = CSP_SENSING_ACTIVATIONS;
    to.correction = CSP_CORRECTION_BLEND;
    int32_t i_ih = -1, i_hh = -1;
    CHECK(csp_pruner_add_tensor(p, t_ih, &to, &i_ih));
    CHECK(csp_pruner_set_experimental(p, i_ih, CSP_X_ALPHA, 0.2));
    to.sensing.kind = CSP_SENSING_GAUSSIAN;
    to.correction = CSP_CORRECTION_NONE;
    CHECK(csp_pruner_add_tensor(p, t_hh, &to, &i_hh));

    uint64_t local = 1000 + (uint64_t)rank; /* each rank's own activations */
    static float x[BATCH * IN];
    int agree = 1;
    for (int64_t step = 0; step < STEPS; step++) {
        /* The "optimizer update": identical on every rank. */
        for (int i = 0; i < H * IN; i++)
            w_ih[i] += (float)(0.01 * uniform(&data));
        for (int i = 0; i < H * H; i++)
            w_hh[i] += (float)(0.01 * uniform(&data));
        /* Forward pass: observe this rank's layer inputs when asked to. */
        int32_t want = 0;
        CHECK(csp_pruner_wants_observe(p, step, &want));
        if (want) {
            for (int i = 0; i < BATCH * IN; i++)
                x[i] = (float)uniform(&local);
            CHECK(csp_pruner_observe(p, i_ih, x, BATCH, IN));
        }
        int32_t event = 0;
        CHECK(csp_schedule_is_event(sched, step, &event));
        if (event)
            allreduce_activations(p, ctx, rank);
        csp_status st = csp_step(p, step);
        CHECK(st);
        uint64_t d = 0, lo = 0, hi = 0;
        CHECK(csp_pruner_digest(p, &d));
        MPI_Allreduce(&d, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(&d, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
        if (lo != hi)
            agree = 0;
        if (rank == 0 && st == CSP_PRUNED) {
            csp_tensor_stats ts;
            csp_tensor_stats_init(&ts, sizeof ts);
            CHECK(csp_pruner_tensor_stats(p, i_ih, &ts));
            printf("step %2lld: W_ih sparsity %.3f, weight error %.4f, sensing error %.5f, "
                   "digest %016llx\n",
                   (long long)step, ts.achieved_sparsity, ts.weight_error, ts.sensing_error,
                   (unsigned long long)d);
        }
    }
    uint64_t wd = fnv(fnv(0xcbf29ce484222325ULL, w_ih, sizeof w_ih), w_hh, sizeof w_hh);
    uint64_t wlo = 0, whi = 0, d = 0;
    MPI_Allreduce(&wd, &wlo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&wd, &whi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    CHECK(csp_pruner_digest(p, &d));
    printf("rank %d/%d: mask digest %016llx, weights %016llx: %s\n", rank, size,
           (unsigned long long)d, (unsigned long long)wd,
           agree && wlo == whi ? "all ranks agree" : "RANKS DISAGREE");

    csp_pruner_free(p);
    csp_tensor_free(t_ih);
    csp_tensor_free(t_hh);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    MPI_Finalize();
    return agree && wlo == whi ? 0 : 1;
}
