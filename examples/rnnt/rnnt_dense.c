/* rnnt_dense.c - model files of rnnt_demo (format in rnnt_dense.h). */
#include "rnnt_dense.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SIZES 7

typedef struct fnv {
    uint64_t h;
} fnv;

static void fnv_add(fnv *f, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) {
        f->h ^= b[i];
        f->h *= 1099511628211ull;
    }
}

static void sizes_of(const rn_model *m, int64_t s[N_SIZES])
{
    const rn_config *c = &m->cfg;
    s[0] = c->in, s[1] = c->enc_layers, s[2] = c->enc_hidden, s[3] = c->embed;
    s[4] = c->pred_hidden, s[5] = c->joint, s[6] = c->vocab;
}

static const char *const size_name[N_SIZES] = {"in (feature dim)", "enc_layers", "enc_hidden",
                                               "embed", "pred_hidden", "joint", "vocab"};

/* fwrite that also feeds the checksum */
static int put(FILE *f, fnv *h, const void *p, size_t n)
{
    fnv_add(h, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int rn_dense_save(const rn_model *m, uint64_t seed, const char *path, char *err, size_t errlen)
{
    const size_t len = strlen(path);
    char *tmp = (char *)malloc(len + 5);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot create %s", tmp);
        free(tmp);
        return -1;
    }
    fnv h = {14695981039346656037ull};
    char magic[8] = RN_DENSE_MAGIC;
    const uint32_t ver = RN_DENSE_VERSION, np = (uint32_t)m->nparams;
    int64_t s[N_SIZES];
    sizes_of(m, s);
    int rc = put(f, &h, magic, 8) || put(f, &h, &ver, 4) || put(f, &h, &np, 4) ||
             put(f, &h, s, sizeof s) || put(f, &h, &seed, 8);
    for (int k = 0; k < m->nparams && !rc; k++) {
        const int64_t rc2[2] = {m->p[k].rows, m->p[k].cols};
        rc = put(f, &h, rc2, sizeof rc2);
    }
    for (int k = 0; k < m->nparams && !rc; k++)
        rc = put(f, &h, m->p[k].data, (size_t)m->p[k].size * sizeof(float));
    const uint64_t sum = h.h;
    if (!rc)
        rc = fwrite(&sum, 1, 8, f) == 8 ? 0 : -1;
    if (fflush(f) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s", tmp, path);
        remove(tmp);
        free(tmp);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "write error on %s", tmp);
        remove(tmp);
    }
    free(tmp);
    return rc;
}

int rn_dense_load(rn_model *m, const char *path, uint64_t *seed, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = (unsigned char *)malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    int rc = -1;
    const size_t head = 8 + 4 + 4 + sizeof(int64_t) * N_SIZES + 8;
    size_t need = head + (size_t)m->nparams * 16 + 4 * (size_t)rn_model_numel(m, 0) + 8;
    uint32_t ver = 0, np = 0;
    int64_t s[N_SIZES], want[N_SIZES];
    sizes_of(m, want);
    if ((size_t)n < head) {
        snprintf(err, errlen, "%s: truncated (%ld bytes, not a model file)", path, n);
        goto out;
    }
    if (memcmp(buf, RN_DENSE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not an rnnt_demo model file (bad magic)", path);
        goto out;
    }
    memcpy(&ver, buf + 8, 4);
    memcpy(&np, buf + 12, 4);
    memcpy(s, buf + 16, sizeof s);
    if (ver != RN_DENSE_VERSION) {
        snprintf(err, errlen, "%s: format version %u, this program reads %u", path,
                 (unsigned)ver, (unsigned)RN_DENSE_VERSION);
        goto out;
    }
    for (int i = 0; i < N_SIZES; i++)
        if (s[i] != want[i]) {
            snprintf(err, errlen,
                     "%s: model size mismatch: %s is %lld in the file, %lld in this run "
                     "(pass the sizes the dense run used)",
                     path, size_name[i], (long long)s[i], (long long)want[i]);
            goto out;
        }
    if (np != (uint32_t)m->nparams) {
        snprintf(err, errlen, "%s: %u parameters in the file, %d in the model", path,
                 (unsigned)np, m->nparams);
        goto out;
    }
    if ((size_t)n != need) {
        snprintf(err, errlen, "%s: %ld bytes, a model of these sizes needs %zu (%s)", path, n,
                 need, (size_t)n < need ? "truncated" : "trailing data");
        goto out;
    }
    fnv h = {14695981039346656037ull};
    fnv_add(&h, buf, need - 8);
    uint64_t sum;
    memcpy(&sum, buf + need - 8, 8);
    if (sum != h.h) {
        snprintf(err, errlen, "%s: checksum mismatch (corrupt file)", path);
        goto out;
    }
    const unsigned char *q = buf + head;
    for (int k = 0; k < m->nparams; k++, q += 16) {
        int64_t rcs[2];
        memcpy(rcs, q, sizeof rcs);
        if (rcs[0] != m->p[k].rows || rcs[1] != m->p[k].cols) {
            snprintf(err, errlen, "%s: parameter %s is %lld x %lld in the file, %lld x %lld here",
                     path, m->p[k].name, (long long)rcs[0], (long long)rcs[1],
                     (long long)m->p[k].rows, (long long)m->p[k].cols);
            goto out;
        }
    }
    for (int k = 0; k < m->nparams; k++) {
        const size_t bytes = (size_t)m->p[k].size * sizeof(float);
        memcpy(m->p[k].data, q, bytes);
        q += bytes;
        memset(m->p[k].grad, 0, bytes);
        memset(m->p[k].exp_avg, 0, bytes);
        memset(m->p[k].exp_avg_sq, 0, bytes);
    }
    m->adam_step = 0;
    if (seed)
        memcpy(seed, buf + 16 + sizeof s, 8);
    rc = 0;
out:
    free(buf);
    return rc;
}

uint64_t rn_dense_params_fnv(const rn_model *m)
{
    fnv h = {14695981039346656037ull};
    for (int k = 0; k < m->nparams; k++)
        fnv_add(&h, m->p[k].data, (size_t)m->p[k].size * sizeof(float));
    return h.h;
}
