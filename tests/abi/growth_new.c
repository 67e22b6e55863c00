/* The ABI growth test, new caller: compiled against the grown headers of
 * the test build (tests/abi/grown/), so it has the appended member
 * `growth_probe` the old caller (growth_old.c) lacks. The library must read
 * it (it refuses a value other than its default in this build), write it
 * in `_init` and in the statistics it returns. Exit 0 when it does. */
#include <csp/csp.h>

#include <stdio.h>
#include <string.h>

#define DEFAULT 0x600d5eedULL

static int failures;
#define EXPECT(cond, what)                                  \
    do {                                                    \
        if (!(cond)) {                                      \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
            failures++;                                     \
        }                                                   \
    } while (0)

int main(void) {
    csp_context_options co;
    EXPECT(csp_context_options_init(&co, sizeof co) == CSP_OK, "init");
    EXPECT(co.growth_probe == DEFAULT, "_init did not write the new member's default");
    csp_context *ctx = NULL;
    co.growth_probe = 1;
    EXPECT(csp_context_create(&ctx, &co) == CSP_E_INVALID, "the new member was not read");
    co.growth_probe = DEFAULT;
    EXPECT(csp_context_create(&ctx, &co) == CSP_OK, "create");
    if (ctx == NULL)
        return 1;
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.end_step = 4;
    so.frequency = 2;
    csp_schedule *sched = NULL;
    EXPECT(csp_schedule_create(&sched, ctx, &so) == CSP_OK, "schedule");
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    EXPECT(po.growth_probe == DEFAULT, "pruner options default");
    csp_pruner *p = NULL;
    EXPECT(csp_pruner_create(&p, ctx, sched, &po) == CSP_OK, "pruner");
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    EXPECT(to.growth_probe == DEFAULT, "tensor options default");
    float w[4 * 8];
    for (int i = 0; i < 32; i++)
        w[i] = (float)(i % 7) - 3.5f;
    int64_t shape[2] = {4, 8};
    csp_tensor *t = NULL;
    csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, NULL);
    to.growth_probe = 2;
    EXPECT(csp_pruner_add_tensor(p, t, &to, NULL) == CSP_E_INVALID, "tensor probe not read");
    to.growth_probe = DEFAULT;
    EXPECT(csp_pruner_add_tensor(p, t, &to, NULL) == CSP_OK, "add");
    EXPECT(csp_step(p, 4) == CSP_PRUNED, "step");
    csp_step_stats ss;
    memset(&ss, 0, sizeof ss);
    csp_step_stats_init(&ss, sizeof ss);
    ss.growth_probe = 0;
    EXPECT(csp_pruner_step_stats(p, &ss) == CSP_OK && ss.growth_probe == DEFAULT,
           "the statistics did not carry the new member");
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    if (failures == 0)
        printf("a caller that knows the appended member gets and gives it\n");
    return failures != 0;
}
