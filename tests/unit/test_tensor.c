/* Tensors: views over host memory, shapes, strides, bad input. */
#include "testutil.h"

#include <string.h>

START_TEST(test_views_without_copy) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    for (int32_t rank = 1; rank <= CSP_MAX_RANK; rank++) {
        int64_t shape[CSP_MAX_RANK];
        int64_t numel = 1;
        for (int32_t i = 0; i < rank; i++) {
            shape[i] = 1 + (int64_t)(test_rng_u64(&r) % 7);
            numel *= shape[i];
        }
        float *buf = malloc((size_t)numel * sizeof *buf);
        csp_tensor *t = NULL;
        ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, rank, shape, 0, "w"),
                         CSP_OK);
        ck_assert_ptr_eq(csp_tensor_data(t), buf);
        ck_assert_int_eq(csp_tensor_rank(t), rank);
        ck_assert_int_eq(csp_tensor_dtype(t), CSP_DTYPE_F32);
        ck_assert_int_eq(csp_tensor_numel(t), numel);
        int64_t rows = rank == 1 ? 1 : shape[0];
        ck_assert_int_eq(csp_tensor_rows(t), rows);
        ck_assert_int_eq(csp_tensor_cols(t), numel / rows);
        ck_assert_int_eq(csp_tensor_row_stride(t), numel / rows);
        for (int32_t i = 0; i < rank; i++)
            ck_assert_int_eq(csp_tensor_dim(t, i), shape[i]);
        ck_assert_int_eq(csp_tensor_dim(t, rank), 0);
        ck_assert_int_eq(csp_tensor_dim(t, -1), 0);
        ck_assert_str_eq(csp_tensor_name(t), "w");
        csp_tensor_free(t);
        free(buf);
    }
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_row_strided_f64) {
    csp_context *ctx = test_context(1, 0);
    double buf[5 * 8];
    int64_t shape[2] = {5, 6};
    csp_tensor *t = NULL;
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F64, 2, shape, 8, NULL),
                     CSP_OK);
    ck_assert_int_eq(csp_tensor_row_stride(t), 8);
    ck_assert_int_eq(csp_tensor_cols(t), 6);
    ck_assert_str_eq(csp_tensor_name(t), "");
    double other[5 * 8];
    ck_assert_int_eq(csp_tensor_set_data(t, other), CSP_OK);
    ck_assert_ptr_eq(csp_tensor_data(t), other);
    ck_assert_status(ctx, csp_tensor_set_data(t, (char *)other + 4), CSP_E_INVALID);
    ck_assert_status(ctx, csp_tensor_set_data(t, NULL), CSP_E_NULL);
    ck_assert_ptr_eq(csp_tensor_data(t), other);
    csp_tensor_free(t);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(1, 0);
    float buf[64];
    int64_t shape[4] = {4, 4, 2, 2};
    csp_tensor *t = (csp_tensor *)buf;

    ck_assert_int_eq(csp_tensor_create(NULL, ctx, buf, CSP_DTYPE_F32, 2, shape, 0, NULL),
                     CSP_E_NULL);
    ck_assert_int_eq(csp_tensor_create(&t, NULL, buf, CSP_DTYPE_F32, 2, shape, 0, NULL),
                     CSP_E_NULL);
    ck_assert_ptr_null(t);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, NULL, CSP_DTYPE_F32, 2, shape, 0, NULL),
                     CSP_E_NULL);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, NULL, 0, NULL),
                     CSP_E_NULL);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, 0, 2, shape, 0, NULL), CSP_E_ENUM);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, 3, 2, shape, 0, NULL), CSP_E_ENUM);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, -1, 2, shape, 0, NULL), CSP_E_ENUM);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 0, shape, 0, NULL),
                     CSP_E_SHAPE);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 5, shape, 0, NULL),
                     CSP_E_SHAPE);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, -2, shape, 0, NULL),
                     CSP_E_SHAPE);
    int64_t zero[2] = {4, 0}, neg[2] = {-4, 4};
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, zero, 0, NULL),
                     CSP_E_SHAPE);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, neg, 0, NULL),
                     CSP_E_SHAPE);
    /* Strides: negative, shorter than a row, overflowing. */
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, -1, NULL),
                     CSP_E_SHAPE);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, 3, NULL),
                     CSP_E_SHAPE);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, INT64_MAX / 2,
                                            NULL),
                     CSP_E_OVERFLOW);
    int64_t huge[4] = {INT64_MAX / 2, 4, 1, 1};
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, huge, 0, NULL),
                     CSP_E_OVERFLOW);
    int64_t big[4] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 4, big, 0, NULL),
                     CSP_E_OVERFLOW);
    ck_assert_str_ne(csp_context_last_error(ctx), "");
    /* Misaligned data. */
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, (char *)buf + 1, CSP_DTYPE_F32, 2, shape, 0,
                                            NULL),
                     CSP_E_INVALID);
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, (char *)buf + 4, CSP_DTYPE_F64, 1, shape, 0,
                                            NULL),
                     CSP_E_INVALID);
    /* Name too long. */
    char name[CSP_MAX_NAME + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, 0, name),
                     CSP_E_INVALID);
    name[CSP_MAX_NAME] = '\0';
    ck_assert_status(ctx, csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, 0, name),
                     CSP_OK);
    ck_assert_str_eq(csp_tensor_name(t), name);
    csp_tensor_free(t);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_null_accessors) {
    ck_assert_ptr_null(csp_tensor_data(NULL));
    ck_assert_int_eq(csp_tensor_dtype(NULL), 0);
    ck_assert_int_eq(csp_tensor_rank(NULL), 0);
    ck_assert_int_eq(csp_tensor_dim(NULL, 0), 0);
    ck_assert_int_eq(csp_tensor_numel(NULL), 0);
    ck_assert_int_eq(csp_tensor_rows(NULL), 0);
    ck_assert_int_eq(csp_tensor_cols(NULL), 0);
    ck_assert_int_eq(csp_tensor_row_stride(NULL), 0);
    ck_assert_str_eq(csp_tensor_name(NULL), "");
    ck_assert_int_eq(csp_tensor_set_data(NULL, NULL), CSP_E_NULL);
    csp_tensor_free(NULL);
}
END_TEST

static Suite *tensor_suite(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_views_without_copy);
    tcase_add_test(tc, test_row_strided_f64);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_null_accessors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(tensor_suite()); }
