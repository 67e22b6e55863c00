/* Status codes: names and descriptions. */
#include "internal.h"

typedef struct {
    csp_status code;
    const char *name;
    const char *text;
} status_entry;

static const status_entry status_table[] = {
    {CSP_OK, "CSP_OK", "success"},
    {CSP_MASKED, "CSP_MASKED", "masks re-applied, no pruning event"},
    {CSP_PRUNED, "CSP_PRUNED", "pruning event: masks updated"},
    {CSP_DAMPED, "CSP_DAMPED", "solved with damping added to an ill-conditioned system"},
    {CSP_NOT_CONVERGED, "CSP_NOT_CONVERGED", "stopped at the iteration limit before converging"},
    {CSP_NO_TENSORS, "CSP_NO_TENSORS", "the pruner has no tensors: nothing was done"},
    {CSP_E_INVALID, "CSP_E_INVALID", "invalid argument"},
    {CSP_E_NULL, "CSP_E_NULL", "required pointer is NULL"},
    {CSP_E_NOMEM, "CSP_E_NOMEM", "out of memory"},
    {CSP_E_OVERFLOW, "CSP_E_OVERFLOW", "size computation overflows"},
    {CSP_E_STRUCT_SIZE, "CSP_E_STRUCT_SIZE", "options struct has an unknown struct_size"},
    {CSP_E_RESERVED, "CSP_E_RESERVED", "reserved or unknown trailing bytes are not zero"},
    {CSP_E_ENUM, "CSP_E_ENUM", "unknown enum value"},
    {CSP_E_DTYPE, "CSP_E_DTYPE", "unsupported or mismatched element type"},
    {CSP_E_SHAPE, "CSP_E_SHAPE", "bad or mismatched shape, rank or stride"},
    {CSP_E_RANGE, "CSP_E_RANGE", "numeric argument out of range"},
    {CSP_E_NONFINITE, "CSP_E_NONFINITE", "data contains NaN or infinity"},
    {CSP_E_STATE, "CSP_E_STATE", "call not valid in the current state"},
    {CSP_E_VERSION, "CSP_E_VERSION", "version mismatch"},
    {CSP_E_IO, "CSP_E_IO", "input/output error"},
    {CSP_E_CORRUPT, "CSP_E_CORRUPT", "serialised data is corrupt or truncated"},
    {CSP_E_UNSUPPORTED, "CSP_E_UNSUPPORTED", "not supported by this build"},
    {CSP_E_CALLBACK, "CSP_E_CALLBACK", "host callback reported failure"},
    {CSP_E_THREAD, "CSP_E_THREAD", "could not start a worker thread"},
    {CSP_E_BUFFER, "CSP_E_BUFFER", "buffer too small"},
};

static const status_entry *find_status(csp_status status) {
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].code == status)
            return &status_table[i];
    return NULL;
}

CSP_API const char *csp_status_str(csp_status status) {
    const status_entry *e = find_status(status);
    if (e != NULL)
        return e->text;
    return status > 0 ? "unknown informational status" : "unknown error";
}

CSP_API const char *csp_status_name(csp_status status) {
    const status_entry *e = find_status(status);
    return e != NULL ? e->name : "CSP_UNKNOWN_STATUS";
}
