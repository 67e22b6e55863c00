/* Tensors: views of host memory (no copy). */
#include "internal.h"

#include <string.h>

static csp_status check_alignment(csp_context *ctx, const void *data, int32_t dtype,
                                  const char *fn) {
    if ((uintptr_t)data % csp__dtype_size(dtype) != 0)
        return csp__error(ctx, CSP_E_INVALID, "%s: data %p is not aligned to %zu bytes", fn,
                          data, csp__dtype_size(dtype));
    return CSP_OK;
}

CSP_API csp_status csp_tensor_create(csp_tensor **out, csp_context *ctx, void *data,
                                     int32_t dtype, int32_t rank, const int64_t *shape,
                                     int64_t row_stride, const char *name) {
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "csp_tensor_create: out is NULL");
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(ctx, data, "data");
    CSP_CHECK_NULL(ctx, shape, "shape");
    if (dtype != CSP_DTYPE_F32 && dtype != CSP_DTYPE_F64)
        return csp__error(ctx, CSP_E_ENUM, "csp_tensor_create: unknown dtype %d", (int)dtype);
    if (rank < 1 || rank > CSP_MAX_RANK)
        return csp__error(ctx, CSP_E_SHAPE, "csp_tensor_create: rank %d is outside 1..%d",
                          (int)rank, CSP_MAX_RANK);
    int64_t numel = 1;
    for (int32_t i = 0; i < rank; i++) {
        if (shape[i] < 1)
            return csp__error(ctx, CSP_E_SHAPE, "csp_tensor_create: shape[%d] = %lld is not >= 1",
                              (int)i, (long long)shape[i]);
        if (!csp__mul_i64(numel, shape[i], &numel))
            return csp__error(ctx, CSP_E_OVERFLOW, "csp_tensor_create: element count overflows");
    }
    int64_t rows = rank == 1 ? 1 : shape[0];
    int64_t cols = numel / rows;
    if (row_stride < 0)
        return csp__error(ctx, CSP_E_SHAPE, "csp_tensor_create: row_stride %lld is negative",
                          (long long)row_stride);
    if (row_stride == 0)
        row_stride = cols;
    if (row_stride < cols)
        return csp__error(ctx, CSP_E_SHAPE,
                          "csp_tensor_create: row_stride %lld is smaller than a row (%lld)",
                          (long long)row_stride, (long long)cols);
    /* The last element's offset, and the bytes spanned, must be addressable. */
    int64_t span, bytes;
    if (!csp__mul_i64(rows - 1, row_stride, &span) || !csp__add_i64(span, cols, &span) ||
        !csp__mul_i64(span, (int64_t)csp__dtype_size(dtype), &bytes) ||
        (uint64_t)bytes > (uint64_t)SIZE_MAX ||
        (uint64_t)bytes > (uint64_t)(UINTPTR_MAX - (uintptr_t)data))
        return csp__error(ctx, CSP_E_OVERFLOW, "csp_tensor_create: the strided span overflows");
    csp_status st = check_alignment(ctx, data, dtype, "csp_tensor_create");
    if (st != CSP_OK)
        return st;
    if (name != NULL && strlen(name) > CSP_MAX_NAME)
        return csp__error(ctx, CSP_E_INVALID, "csp_tensor_create: name longer than %d bytes",
                          CSP_MAX_NAME);

    csp_tensor *t = csp__calloc(ctx, 1, sizeof *t);
    if (t == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "csp_tensor_create: out of memory");
    if (name != NULL) {
        t->name = csp__strdup(ctx, name);
        if (t->name == NULL) {
            csp__free(ctx, t);
            return csp__error(ctx, CSP_E_NOMEM, "csp_tensor_create: out of memory for the name");
        }
    }
    t->ctx = ctx;
    t->data = data;
    t->dtype = dtype;
    t->rank = rank;
    for (int32_t i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    t->rows = rows;
    t->cols = cols;
    t->row_stride = row_stride;
    t->numel = numel;
    *out = t;
    return CSP_OK;
}

CSP_API void csp_tensor_free(csp_tensor *t) {
    if (t == NULL)
        return;
    csp__free(t->ctx, t->name);
    csp__free(t->ctx, t);
}

CSP_API csp_status csp_tensor_set_data(csp_tensor *t, void *data) {
    if (t == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(t->ctx, data, "data");
    csp_status st = check_alignment(t->ctx, data, t->dtype, "csp_tensor_set_data");
    if (st != CSP_OK)
        return st;
    if (t->data != data) {
        t->data = data;
        t->ctx->data_epoch++;
    }
    return CSP_OK;
}

CSP_API void *csp_tensor_data(const csp_tensor *t) { return t == NULL ? NULL : t->data; }
CSP_API int32_t csp_tensor_dtype(const csp_tensor *t) { return t == NULL ? 0 : t->dtype; }
CSP_API int32_t csp_tensor_rank(const csp_tensor *t) { return t == NULL ? 0 : t->rank; }

CSP_API int64_t csp_tensor_dim(const csp_tensor *t, int32_t axis) {
    if (t == NULL || axis < 0 || axis >= t->rank)
        return 0;
    return t->shape[axis];
}

CSP_API int64_t csp_tensor_numel(const csp_tensor *t) { return t == NULL ? 0 : t->numel; }
CSP_API int64_t csp_tensor_rows(const csp_tensor *t) { return t == NULL ? 0 : t->rows; }
CSP_API int64_t csp_tensor_cols(const csp_tensor *t) { return t == NULL ? 0 : t->cols; }
CSP_API int64_t csp_tensor_row_stride(const csp_tensor *t) {
    return t == NULL ? 0 : t->row_stride;
}
CSP_API const char *csp_tensor_name(const csp_tensor *t) {
    return (t == NULL || t->name == NULL) ? "" : t->name;
}
