#!/usr/bin/env python3
"""Turn the C sketch of README.md ("Use from C", the first ```c block) into
a program the `readme` test builds and runs, so the README cannot drift from
the API: the sketch is pasted unchanged into a main() that defines the
buffers it uses (weight, adam_m, adam_v, rows, cols, steps) and checks the
pruner reached the scheduled sparsity.

    readme_snippet.py README.md OUT.c"""
import re
import sys

readme, out = sys.argv[1], sys.argv[2]
m = re.search(r"```c\n(.*?)```", open(readme, encoding="utf-8").read(), re.S)
if not m:
    sys.exit(f"{readme}: no ```c block")
lines = m.group(1).splitlines()
includes = [ln for ln in lines if ln.startswith("#include")]
body = [ln for ln in lines if not ln.startswith("#include")]
if "#include <csp/csp.h>" not in includes:
    sys.exit(f"{readme}: the C sketch does not include <csp/csp.h>")
ROWS, COLS = 8, 16
prog = "\n".join(
    ["/* Generated from README.md by tests/scripts/readme_snippet.py. */"]
    + includes
    + ["#include <stdio.h>", "", "int main(void) {",
       f"    int64_t rows = {ROWS}, cols = {COLS}, steps = 7000;",
       f"    static float weight[{ROWS * COLS}], adam_m[{ROWS * COLS}], adam_v[{ROWS * COLS}];",
       f"    for (int i = 0; i < {ROWS * COLS}; i++) {{",
       "        weight[i] = (float)((i * 37) % 29) - 14.0f;",
       "        adam_m[i] = adam_v[i] = 1.0f;",
       "    }",
       "    /* ---- README.md ---- */"]
    + ["    " + ln if ln else "" for ln in body]
    + ["    /* ---- end of README.md ---- */",
       "    int64_t nnz = -1;",
       "    csp_pruner_nnz(pruner, idx, &nnz);",
       f"    int64_t want = rows * (cols - 15); /* round(0.95 * {COLS}) zeros per row */",
       f"    uint8_t mask[{ROWS * COLS}];",
       f"    int zero_moments = csp_pruner_mask_bytes(pruner, idx, mask, {ROWS * COLS}) == CSP_OK;",
       f"    for (int i = 0; i < {ROWS * COLS}; i++)",
       "        if (!mask[i] && (weight[i] != 0.0f || adam_m[i] != 0.0f || adam_v[i] != 0.0f))",
       "            zero_moments = 0;",
       "    printf(\"README sketch: nnz %lld (want %lld), pruned weights and moments zero: %s\\n\",",
       "           (long long)nnz, (long long)want, zero_moments ? \"yes\" : \"NO\");",
       "    csp_pruner_free(pruner);",
       "    csp_schedule_free(sched);",
       "    csp_tensor_free(m2);",
       "    csp_tensor_free(m1);",
       "    csp_tensor_free(w);",
       "    csp_context_free(ctx);",
       "    return nnz == want && zero_moments ? 0 : 1;",
       "}", ""])
open(out, "w", encoding="utf-8").write(prog)
