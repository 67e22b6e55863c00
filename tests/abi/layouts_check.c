/* The frozen 0.1.0 layouts (tests/abi/layouts-0.1.h) against the headers
 * and the library's record of first sizes (lib/core/abi_sizes.h): every
 * member of every released struct is still where it was, and every first
 * size is the released size. Fails (exit 1) with a line per difference. */
#include <stdio.h>

#include "core/abi_sizes.h"
#include "layouts-0.1.h"

static int failures;

#define SAME_OFFSET(s, m)                                                                  \
    if (offsetof(csp_v0_1_##s, m) != offsetof(csp_##s, m) ||                              \
        sizeof(((csp_v0_1_##s *)0)->m) != sizeof(((csp_##s *)0)->m)) {                     \
        printf("csp_%s.%s moved or changed size since 0.1.0\n", #s, #m);                  \
        failures++;                                                                        \
    }

#define SAME_FIRST(s, FIRST)                                                               \
    if (sizeof(csp_v0_1_##s) != (FIRST)) {                                                 \
        printf("csp_%s: its first size in lib/core/abi_sizes.h is %zu, 0.1.0's is %zu\n", \
               #s, (size_t)(FIRST), sizeof(csp_v0_1_##s));                                \
        failures++;                                                                        \
    }

int main(void) {
    int members = 0;
#define COUNT(s, m) members++;
    CSP_V0_1_MEMBERS(COUNT)
    CSP_V0_1_MEMBERS(SAME_OFFSET)
    SAME_FIRST(context_options, CSP__FIRST_SIZE_CONTEXT_OPTIONS)
    SAME_FIRST(schedule_options, CSP__FIRST_SIZE_SCHEDULE_OPTIONS)
    SAME_FIRST(sensing_options, CSP__FIRST_SIZE_SENSING_OPTIONS)
    SAME_FIRST(solver_options, CSP__FIRST_SIZE_SOLVER_OPTIONS)
    SAME_FIRST(solver_batch, CSP__FIRST_SIZE_SOLVER_BATCH)
    SAME_FIRST(row_stats, CSP__FIRST_SIZE_ROW_STATS)
    SAME_FIRST(pruner_options, CSP__FIRST_SIZE_PRUNER_OPTIONS)
    SAME_FIRST(pruner_tensor_options, CSP__FIRST_SIZE_PRUNER_TENSOR_OPTIONS)
    SAME_FIRST(option_info, CSP__FIRST_SIZE_OPTION_INFO)
    SAME_FIRST(tensor_stats, CSP__FIRST_SIZE_TENSOR_STATS)
    SAME_FIRST(step_stats, CSP__FIRST_SIZE_STEP_STATS)
    SAME_FIRST(export_options, CSP__FIRST_SIZE_EXPORT_OPTIONS)
    SAME_FIRST(export_stats, CSP__FIRST_SIZE_EXPORT_STATS)
    SAME_FIRST(export_info, CSP__FIRST_SIZE_EXPORT_INFO)
    if (failures == 0)
        printf("%d members of 14 structs where 0.1.0 had them; first sizes agree\n", members);
    return failures != 0;
}
