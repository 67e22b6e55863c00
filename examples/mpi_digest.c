/* Data-parallel CSP with MPI: every rank trains the same layer on its own
 * data. The gradients are averaged with MPI_Allreduce (so the weights stay
 * identical, as under DistributedDataParallel), but each rank sees different
 * activations; before each pruning event the ranks sum their activation
 * accumulators with MPI_Allreduce through the pruner's sensing handles, then
 * every rank steps on its own and the mask digests are compared.
 *
 *   mpirun -np 2 build/examples/mpi_digest                (as root: --allow-run-as-root)
 *   mpirun -np 2 build/examples/mpi_digest --no-allreduce (the ranks diverge)
 *
 * The layer W_ih (H x IN) learns a sparse linear teacher y = W* x (10 % of
 * its weights non-zero) by SGD on the squared error, with activation sensing and a blended refit; its gradient
 * buffer is registered with csp_pruner_add_gradient() and masked before the
 * update. A second tensor W_hh (random Gaussian sensing) follows an
 * identical update on every rank. Exit status 0 when every rank ends with
 * the same digest and weights at every event; 1 when they disagree (which
 * --no-allreduce shows they do without the accumulator all-reduce). */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int reduce = !(argc > 1 && strcmp(argv[1], "--no-allreduce") == 0);
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

    /* The teacher and the gradient buffer of W_ih (masked before the update). */
    static float teacher[H * IN], grad[H * IN];
    for (int i = 0; i < H * IN; i++) { /* 10 % of its weights are non-zero */
        double keep = uniform(&data), value = uniform(&data);
        teacher[i] = keep > 0.8 ? (float)value : 0.0f;
    }
    csp_tensor *t_grad = NULL;
    CHECK(csp_tensor_create(&t_grad, ctx, grad, CSP_DTYPE_F32, 2, s_ih, 0, "W_ih.grad"));
    CHECK(csp_pruner_add_gradient(p, i_ih, t_grad));

    uint64_t local = 1000 + (uint64_t)rank; /* each rank's own activations */
    static float x[BATCH * IN], err[BATCH * H];
    int agree = 1;
    for (int64_t step = 0; step < STEPS; step++) {
        /* Forward pass on this rank's batch (inputs scaled per rank, so the
         * ranks' activation statistics differ clearly); observe its inputs
         * when asked to. */
        for (int i = 0; i < BATCH * IN; i++)
            x[i] = (float)((1.0 + rank) * uniform(&local));
        double loss = 0.0;
        for (int b = 0; b < BATCH; b++)
            for (int h = 0; h < H; h++) {
                double e = 0.0;
                for (int k = 0; k < IN; k++)
                    e += (double)(w_ih[h * IN + k] - teacher[h * IN + k]) * x[b * IN + k];
                err[b * H + h] = (float)e;
                loss += 0.5 * e * e / BATCH;
            }
        int32_t want = 0;
        CHECK(csp_pruner_wants_observe(p, step, &want));
        if (want)
            CHECK(csp_pruner_observe(p, i_ih, x, BATCH, IN));
        /* Backward: this rank's gradient, averaged over the ranks, masked. */
        for (int h = 0; h < H; h++)
            for (int k = 0; k < IN; k++) {
                double g = 0.0;
                for (int b = 0; b < BATCH; b++)
                    g += (double)err[b * H + h] * x[b * IN + k];
                grad[h * IN + k] = (float)(g / BATCH);
            }
        MPI_Allreduce(MPI_IN_PLACE, grad, H * IN, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int i = 0; i < H * IN; i++)
            grad[i] /= (float)size;
        CHECK(csp_pruner_mask_gradients(p));
        /* The "optimizer update": identical on every rank. */
        for (int i = 0; i < H * IN; i++)
            w_ih[i] -= 0.05f * grad[i];
        for (int i = 0; i < H * H; i++)
            w_hh[i] += (float)(0.01 * uniform(&data));
        int32_t event = 0;
        CHECK(csp_schedule_is_event(sched, step, &event));
        if (event && reduce)
            allreduce_activations(p, ctx, rank);
        csp_status st = csp_step(p, step);
        CHECK(st);
        uint64_t d = 0, lo = 0, hi = 0;
        CHECK(csp_pruner_digest(p, &d));
        MPI_Allreduce(&d, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(&d, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
        if (lo != hi) {
            if (agree && rank == 0)
                printf("step %2lld: the ranks' mask digests differ\n", (long long)step);
            agree = 0;
        }
        if (rank == 0 && st == CSP_PRUNED) {
            csp_tensor_stats ts;
            csp_tensor_stats_init(&ts, sizeof ts);
            CHECK(csp_pruner_tensor_stats(p, i_ih, &ts));
            printf("step %2lld: loss %.4f, W_ih sparsity %.3f, weight error %.4f, sensing "
                   "error %.5f, digest %016llx\n",
                   (long long)step, loss, ts.achieved_sparsity, ts.weight_error,
                   ts.sensing_error, (unsigned long long)d);
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
    csp_tensor_free(t_grad);
    csp_tensor_free(t_ih);
    csp_tensor_free(t_hh);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    MPI_Finalize();
    return agree && wlo == whi ? 0 : 1;
}
