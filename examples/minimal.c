/* Minimal libcsp program: check the header/library handshake, create a
 * context and view a host buffer as a tensor. Built out of tree with
 *   cc minimal.c $(pkg-config --cflags --libs csp)
 */
#include <csp/csp.h>

#include <stdio.h>

int main(void) {
    if (CSP_CHECK_VERSION() != CSP_OK) {
        fprintf(stderr, "libcsp %s does not match header %s\n", csp_version_string(),
                CSP_VERSION_STRING);
        return 1;
    }
    csp_context_options opts;
    csp_context_options_init(&opts, sizeof opts);
    opts.seed = 42;
    csp_context *ctx = NULL;
    csp_status st = csp_context_create(&ctx, &opts);
    if (st != CSP_OK) {
        fprintf(stderr, "csp_context_create: %s\n", csp_status_str(st));
        return 1;
    }

    float weights[4][8];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 8; c++)
            weights[r][c] = (float)((r * 8 + c) % 5) - 2.0f;
    int64_t shape[2] = {4, 8};
    csp_tensor *w = NULL;
    st = csp_tensor_create(&w, ctx, weights, CSP_DTYPE_F32, 2, shape, 0, "fc.weight");
    if (st != CSP_OK) {
        fprintf(stderr, "csp_tensor_create: %s\n", csp_context_last_error(ctx));
        csp_context_free(ctx);
        return 1;
    }
    printf("libcsp %s: tensor '%s' %lld x %lld viewed in place\n", csp_version_string(),
           csp_tensor_name(w), (long long)csp_tensor_rows(w), (long long)csp_tensor_cols(w));

    /* Bad input gives a status and a message, never a crash. */
    csp_tensor *bad = NULL;
    st = csp_tensor_create(&bad, ctx, NULL, CSP_DTYPE_F32, 2, shape, 0, NULL);
    printf("bad input -> %s: %s\n", csp_status_name(st), csp_context_last_error(ctx));

    csp_tensor_free(w);
    csp_context_free(ctx);
    return 0;
}
