/* The ABI growth test, old caller (docs/abi.md, "Growing a struct").
 *
 * Compiled against the frozen 0.1.0 layouts (tests/abi/layouts-0.1.h) and
 * linked with a test build of the library whose every growable struct has
 * one more member, `growth_probe` (tests/abi/grown/): the situation of a
 * program built against 0.1.0 running with a later libcsp. Every struct the
 * program hands over is allocated with exactly its 0.1.0 size, followed by
 * canary bytes: the library must work with it, use the default of the
 * member the program does not know (the test build refuses any other value
 * of growth_probe, and would read the canary if it read past the struct),
 * and write nothing past it (the canaries, and ASan in the sanitizer run).
 * Prints one line per failure; exit 0 when everything held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layouts-0.1.h"

#define CANARY 32
static int failures;

#define EXPECT(cond, ...)                         \
    do {                                          \
        if (!(cond)) {                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                  \
            printf("\n");                         \
            failures++;                           \
        }                                         \
    } while (0)

/* @p n bytes for a struct, then CANARY bytes of 0xA5. */
static void *guarded(size_t n) {
    unsigned char *p = malloc(n + CANARY);
    memset(p, 0x5A, n);
    memset(p + n, 0xA5, CANARY);
    return p;
}

static int intact(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < CANARY; i++)
        if (b[n + i] != 0xA5)
            return 0;
    return 1;
}

#define OK(call, ctx) EXPECT((call) >= 0, "%s: %s", #call, csp_context_last_error(ctx))

int main(void) {
    /* Context. */
    csp_v0_1_context_options *co = guarded(sizeof *co);
    EXPECT(csp_context_options_init((csp_context_options *)co, sizeof *co) == CSP_OK, "init");
    EXPECT(intact(co, sizeof *co), "csp_context_options_init wrote past 0.1.0's struct");
    EXPECT(co->struct_size == sizeof *co && co->num_threads == 1, "context defaults");
    co->seed = 77;
    csp_context *ctx = NULL;
    EXPECT(csp_context_create(&ctx, (csp_context_options *)co) == CSP_OK, "csp_context_create");
    if (ctx == NULL)
        return 1;
    EXPECT(csp_context_seed(ctx) == 77, "the seed did not arrive");

    /* Schedule. */
    csp_v0_1_schedule_options *so = guarded(sizeof *so);
    OK(csp_schedule_options_init((csp_schedule_options *)so, sizeof *so), ctx);
    EXPECT(intact(so, sizeof *so), "csp_schedule_options_init wrote past the struct");
    so->final_sparsity = 0.75;
    so->end_step = 10;
    so->frequency = 5;
    csp_schedule *sched = NULL;
    OK(csp_schedule_create(&sched, ctx, (csp_schedule_options *)so), ctx);

    /* Pruner and a tensor. */
    csp_v0_1_pruner_options *po = guarded(sizeof *po);
    OK(csp_pruner_options_init((csp_pruner_options *)po, sizeof *po), ctx);
    EXPECT(intact(po, sizeof *po), "csp_pruner_options_init wrote past the struct");
    EXPECT(po->granularity == CSP_GRANULARITY_TENSOR && po->sensing.kind == CSP_SENSING_IDENTITY &&
               po->solver.max_iter == 1000,
           "pruner defaults");
    po->granularity = CSP_GRANULARITY_ROW;
    csp_pruner *p = NULL;
    OK(csp_pruner_create(&p, ctx, sched, (csp_pruner_options *)po), ctx);
    if (p == NULL)
        return 1;
    csp_v0_1_pruner_tensor_options *to = guarded(sizeof *to);
    OK(csp_pruner_tensor_options_init((csp_pruner_tensor_options *)to, sizeof *to, p), ctx);
    EXPECT(intact(to, sizeof *to), "csp_pruner_tensor_options_init wrote past the struct");
    EXPECT(to->granularity == CSP_GRANULARITY_ROW && to->final_sparsity == 0.75,
           "the tensor options are not the pruner's");
    enum { R = 8, C = 16 };
    static float w[R * C];
    for (int i = 0; i < R * C; i++)
        w[i] = (float)((i * 37) % 29) - 14.0f + 0.001f * (float)i;
    int64_t shape[2] = {R, C};
    csp_tensor *t = NULL;
    OK(csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, "w"), ctx);
    int32_t index = -1;
    OK(csp_pruner_add_tensor(p, t, (csp_pruner_tensor_options *)to, &index), ctx);
    for (int64_t step = 0; step <= 10; step++)
        OK(csp_step(p, step), ctx);

    /* Statistics: written up to 0.1.0's size only. */
    csp_v0_1_tensor_stats *ts = guarded(sizeof *ts);
    OK(csp_tensor_stats_init((csp_tensor_stats *)ts, sizeof *ts), ctx);
    OK(csp_pruner_tensor_stats(p, index, (csp_tensor_stats *)ts), ctx);
    EXPECT(intact(ts, sizeof *ts), "csp_pruner_tensor_stats wrote past the struct");
    EXPECT(ts->struct_size == sizeof *ts && ts->nnz == R * (C - 12) && ts->events == 3,
           "tensor stats: nnz %lld events %lld", (long long)ts->nnz, (long long)ts->events);
    csp_v0_1_step_stats *ss = guarded(sizeof *ss);
    OK(csp_step_stats_init((csp_step_stats *)ss, sizeof *ss), ctx);
    OK(csp_pruner_step_stats(p, (csp_step_stats *)ss), ctx);
    EXPECT(intact(ss, sizeof *ss), "csp_pruner_step_stats wrote past the struct");
    EXPECT(ss->steps == 11 && ss->events == 3, "step stats");

    /* Export, its stats and inspection. */
    csp_v0_1_export_options *eo = guarded(sizeof *eo);
    OK(csp_export_options_init((csp_export_options *)eo, sizeof *eo), ctx);
    EXPECT(intact(eo, sizeof *eo), "csp_export_options_init wrote past the struct");
    static unsigned char buf[4096];
    int64_t size = 0;
    OK(csp_pruner_export(p, index, (csp_export_options *)eo, buf, sizeof buf, &size), ctx);
    csp_v0_1_export_stats *es = guarded(sizeof *es);
    OK(csp_export_stats_init((csp_export_stats *)es, sizeof *es), ctx);
    OK(csp_pruner_export_stats(p, index, (csp_export_options *)eo, (csp_export_stats *)es), ctx);
    EXPECT(intact(es, sizeof *es) && es->bytes == size, "export stats");
    csp_v0_1_export_info *ei = guarded(sizeof *ei);
    OK(csp_export_info_init((csp_export_info *)ei, sizeof *ei), ctx);
    OK(csp_export_inspect(ctx, buf, size, (csp_export_info *)ei), ctx);
    EXPECT(intact(ei, sizeof *ei) && ei->nnz == R * (C - 12) && ei->rows == R, "export info");

    /* The options table. */
    csp_v0_1_option_info *oi = guarded(sizeof *oi);
    OK(csp_option_info_init((csp_option_info *)oi, sizeof *oi), ctx);
    OK(csp_pruner_option_info(0, (csp_option_info *)oi), ctx);
    EXPECT(intact(oi, sizeof *oi) && oi->name != NULL && strcmp(oi->name, "granularity") == 0,
           "option info");

    /* A solver batch with its row statistics at 0.1.0's stride. */
    csp_v0_1_sensing_options *sn = guarded(sizeof *sn);
    OK(csp_sensing_options_init((csp_sensing_options *)sn, sizeof *sn), ctx);
    sn->n = C;
    csp_sensing *sens = NULL;
    OK(csp_sensing_create(&sens, ctx, (csp_sensing_options *)sn), ctx);
    csp_solver *solver = NULL;
    OK(csp_solver_create(&solver, ctx, NULL), ctx);
    csp_v0_1_solver_batch *b = guarded(sizeof *b);
    OK(csp_solver_batch_init((csp_solver_batch *)b, sizeof *b), ctx);
    EXPECT(intact(b, sizeof *b), "csp_solver_batch_init wrote past the struct");
    static float x[R * C];
    csp_v0_1_row_stats *rs = guarded(R * sizeof *rs);
    b->rows = R;
    b->n = C;
    b->w = w;
    b->x = x;
    b->k_all = 3;
    b->stats = rs;
    b->stats_size = sizeof *rs;
    OK(csp_solver_solve(solver, sens, 0, 0, (csp_solver_batch *)b), ctx);
    EXPECT(intact(rs, R * sizeof *rs), "csp_solver_solve wrote past 0.1.0's row stats");
    for (int r = 0; r < R; r++)
        EXPECT(rs[r].nnz == 3, "row %d: nnz %d", r, (int)rs[r].nnz);

    /* A size below the first release is still refused. */
    size_t small = sizeof(csp_v0_1_step_stats) - 8;
    EXPECT(csp_step_stats_init((csp_step_stats *)ss, small) == CSP_E_STRUCT_SIZE,
           "a size below 0.1.0's was accepted");

    csp_solver_free(solver);
    csp_sensing_free(sens);
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    void *all[] = {co, so, po, to, ts, ss, eo, es, ei, oi, sn, b, rs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    if (failures == 0)
        printf("a 0.1.0 caller works with a library whose structs grew\n");
    return failures != 0;
}
