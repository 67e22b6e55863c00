/* Checkpoint sections of the CSP state (lib/prune/cs.c): the CSP
 * configuration ("CSPC", compared on load), the activation accumulators of
 * pruner-owned operators ("SENS"), the ISTA/FISTA warm-start lambdas
 * ("WARM") and the statistics ("STAT"). Random operators need no section:
 * Phi is a pure function of (seed, tensor, event key). Layouts in
 * docs/formats.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "sensing/sensing_internal.h"

static csp_status corrupt(csp__ckpt_load *l, const char *section, const char *what) {
    return csp__error(l->pruner->ctx, CSP_E_CORRUPT, "csp_pruner_load: section %s: %s", section,
                      what);
}

static const char *tname(const csp__ptensor *pt) {
    return pt->weight->name != NULL ? pt->weight->name : "";
}

/* ---- CSPC: the configuration, table-driven ------------------------------------ *
 * Every option of the pruner's table (lib/prune/options.c) that a tensor
 * has, as (name, type, 64 value bits) records in the table's order, so that
 * adding an option changes nothing here. An option that does not apply to
 * its tensor is recorded at its default. On load every record is compared;
 * an option the file lacks (an older writer) counts as its default; one
 * this library does not know is refused (CSP_E_VERSION). So an accepted
 * file saves back to its own bytes. docs/formats.md has the layout. */

#define CSPC_VERSION 2

/* Does row @p o belong to every tensor's record list (written and read)? */
static bool per_tensor(const csp__option *o) {
    if (o->flags & (CSP_OPTION_FIXED | CSP__OPTION_PRUNER_WIDE))
        return false;
    return o->off[CSP__SLOT_TENSOR] >= 0 || o->off[CSP__SLOT_X] >= 0;
}

/* Does tensor @p pt's value of @p o change how it is pruned? */
static bool relevant(const csp__option *o, const csp__ptensor *pt) {
    const csp_pruner_tensor_options *c = &pt->conf;
    if ((o->flags & CSP_OPTION_CSP_ONLY) && pt->cs == NULL)
        return false;
    if ((o->flags & CSP__OPTION_RANK1_ONLY) && pt->weight->rank != 1)
        return false;
    if ((o->flags & CSP__OPTION_NM_ONLY) && c->granularity != CSP_GRANULARITY_NM)
        return false;
    if ((o->flags & CSP__OPTION_GLOBAL_ONLY) && c->granularity != CSP_GRANULARITY_GLOBAL)
        return false;
    return !csp__excluded(pt) || strcmp(o->name, "exclude") == 0;
}

static uint64_t default_bits(const csp__option *o) {
    double v = o->def;
    if (o->type == CSP_OPTION_DOUBLE)
        return csp__f64_bits(v);
    return o->type == CSP_OPTION_UINT64 ? (uint64_t)v : (uint64_t)(int64_t)v;
}

/* What a checkpoint records of option @p o for tensor @p pt: its value
 * where it matters, else the option's default, so that the bytes are a
 * function of what matters (an accepted file saves back to itself). */
static uint64_t tensor_bits(const csp__option *o, const csp__ptensor *pt) {
    if (!relevant(o, pt))
        return default_bits(o);
    return o->off[CSP__SLOT_TENSOR] >= 0 ? csp__option_bits(o, CSP__SLOT_TENSOR, &pt->conf)
                                         : csp__option_bits(o, CSP__SLOT_X, &pt->x);
}

/* Does some tensor use a random operator (keyed by the context seed)? */
static bool uses_seed(const csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (pt->cs != NULL && pt->cs->owned != NULL &&
            (csp_sensing_kind(pt->cs->owned) == CSP_SENSING_GAUSSIAN ||
             csp_sensing_kind(pt->cs->owned) == CSP_SENSING_RADEMACHER))
            return true;
    }
    return false;
}

static uint64_t record_size(const csp__option *o) { return 1 + strlen(o->name) + 1 + 8; }

static void write_record(csp__wbuf *w, const csp__option *o, uint64_t bits) {
    size_t len = strlen(o->name);
    csp__w_u8(w, (uint8_t)len);
    csp__w_bytes(w, o->name, len);
    csp__w_u8(w, (uint8_t)o->type);
    csp__w_u64(w, bits);
}

static uint64_t cspc_size(const csp_pruner *p) {
    uint64_t tensor = 8, wide = 0;
    for (size_t k = 0; k < csp__num_pruner_options; k++) {
        const csp__option *o = &csp__pruner_options[k];
        if (per_tensor(o))
            tensor += record_size(o);
        else if (o->flags & CSP__OPTION_PRUNER_WIDE)
            wide += record_size(o);
    }
    return 24 + wide + (uint64_t)p->num_tensors * tensor;
}

static void cspc_write(const csp_pruner *p, csp__wbuf *w) {
    uint32_t nt = 0, nw = 0;
    for (size_t k = 0; k < csp__num_pruner_options; k++) {
        nt += per_tensor(&csp__pruner_options[k]);
        nw += (csp__pruner_options[k].flags & CSP__OPTION_PRUNER_WIDE) != 0;
    }
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, nt);
    csp__w_u32(w, nw);
    csp__w_u32(w, 0);
    csp__w_u64(w, uses_seed(p) ? p->ctx->seed : 0); /* 0 when no operator is keyed by it */
    for (size_t k = 0; k < csp__num_pruner_options; k++) {
        const csp__option *o = &csp__pruner_options[k];
        if (o->flags & CSP__OPTION_PRUNER_WIDE)
            write_record(w, o, csp__option_bits(o, CSP__SLOT_X, &p->x));
    }
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        csp__w_u8(w, pt->cs != NULL);
        csp__w_u8(w, pt->cs != NULL && pt->cs->attached != NULL);
        csp__w_u16(w, 0);
        csp__w_u32(w, 0);
        for (size_t k = 0; k < csp__num_pruner_options; k++)
            if (per_tensor(&csp__pruner_options[k]))
                write_record(w, &csp__pruner_options[k],
                             tensor_bits(&csp__pruner_options[k], pt));
    }
}

/* One record: its name (NUL-terminated into @p name), type and bits. */
static bool read_record(csp__rbuf *r, char name[256], uint8_t *type, uint64_t *bits) {
    uint8_t len = csp__r_u8(r);
    const uint8_t *src = csp__r_take(r, len);
    if (!r->ok || len == 0)
        return false;
    memcpy(name, src, len);
    name[len] = 0;
    *type = csp__r_u8(r);
    *bits = csp__r_u64(r);
    return r->ok && memchr(name, 0, len) == NULL;
}

static const csp__option *row_named(const char *name) {
    for (size_t k = 0; k < csp__num_pruner_options; k++)
        if (strcmp(csp__pruner_options[k].name, name) == 0)
            return &csp__pruner_options[k];
    return NULL;
}

static void format_bits(const csp__option *o, uint64_t bits, char *buf, size_t size) {
    double v = o->type == CSP_OPTION_DOUBLE   ? csp__bits_f64(bits)
               : o->type == CSP_OPTION_UINT64 ? (double)bits
                                              : (double)(int64_t)bits;
    csp__option_format(o, v, buf, size);
}

static csp_status differs(csp__ckpt_load *l, int32_t i, const csp__option *o, uint64_t file,
                          uint64_t mine) {
    char a[40], b[40], who[300] = "the pruner's ";
    format_bits(o, file, a, sizeof a);
    format_bits(o, mine, b, sizeof b);
    if (i >= 0)
        snprintf(who, sizeof who, "tensor %d ('%s'): ", (int)i, tname(&l->pruner->tensors[i]));
    return csp__error(l->pruner->ctx, CSP_E_STATE,
                      "csp_pruner_load: %soption %s differs: checkpoint %s, pruner %s", who,
                      o->name, a, b);
}

/* Check @p count records against the values @p mine gives (tensor @p i, or
 * -1 for the pruner-wide ones); @p seen marks the rows present. */
static csp_status check_records(csp__ckpt_load *l, csp__rbuf *r, uint32_t count, int32_t i,
                                bool *seen) {
    const csp_pruner *p = l->pruner;
    const csp__ptensor *pt = i >= 0 ? &p->tensors[i] : NULL;
    memset(seen, 0, csp__num_pruner_options * sizeof *seen);
    size_t next = 0; /* records come in the table's order */
    for (uint32_t k = 0; k < count; k++) {
        char name[256];
        uint8_t type;
        uint64_t bits;
        if (!read_record(r, name, &type, &bits))
            return corrupt(l, "CSPC", "truncated or malformed option record");
        const csp__option *o = row_named(name);
        bool mine_kind = o != NULL && (pt != NULL ? per_tensor(o)
                                                  : (o->flags & CSP__OPTION_PRUNER_WIDE) != 0);
        if (!mine_kind)
            return csp__error(p->ctx, CSP_E_VERSION,
                              "csp_pruner_load: the checkpoint records option '%s', which this "
                              "library does not know (a newer libcsp's?)",
                              name);
        size_t at = (size_t)(o - csp__pruner_options);
        if (at < next)
            return corrupt(l, "CSPC", "option records out of order or repeated");
        next = at + 1;
        if (type != o->type)
            return corrupt(l, "CSPC", "an option record has the wrong type");
        seen[o - csp__pruner_options] = true;
        uint64_t mine = pt != NULL ? tensor_bits(o, pt) : csp__option_bits(o, CSP__SLOT_X, &p->x);
        if (pt != NULL && !relevant(o, pt) && bits != mine)
            return corrupt(l, "CSPC", "an option that does not apply to its tensor is not at its "
                                      "default");
        if (bits != mine)
            return differs(l, i, o, bits, mine);
    }
    for (size_t k = 0; k < csp__num_pruner_options; k++) {
        const csp__option *o = &csp__pruner_options[k];
        bool mine_here = pt != NULL ? per_tensor(o) : (o->flags & CSP__OPTION_PRUNER_WIDE) != 0;
        if (!mine_here || seen[k])
            continue;
        uint64_t mine = pt != NULL ? tensor_bits(o, pt) : csp__option_bits(o, CSP__SLOT_X, &p->x);
        if (mine != default_bits(o))
            return differs(l, i, o, default_bits(o), mine);
    }
    return CSP_OK;
}

static const char *cs_text(int has_cs, int attached) {
    return !has_cs ? "GMP" : attached ? "CSP with a host operator" : "CSP with its own operator";
}

/* The seed keys the random operators' Phi: it matters when one is used,
 * and is recorded as 0 otherwise. */
static csp_status check_seed(csp__ckpt_load *l, uint64_t seed) {
    const csp_pruner *p = l->pruner;
    if (!uses_seed(p))
        return seed == 0 ? CSP_OK
                         : corrupt(l, "CSPC", "a seed is recorded, but no operator is random");
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        bool random = pt->cs != NULL && pt->cs->owned != NULL &&
                      (csp_sensing_kind(pt->cs->owned) == CSP_SENSING_GAUSSIAN ||
                       csp_sensing_kind(pt->cs->owned) == CSP_SENSING_RADEMACHER);
        if (random && seed != p->ctx->seed)
            return csp__error(p->ctx, CSP_E_STATE,
                              "csp_pruner_load: the context seed differs: checkpoint %llu, "
                              "context %llu (it keys tensor %d's random sensing operator)",
                              (unsigned long long)seed, (unsigned long long)p->ctx->seed,
                              (int)i);
    }
    return CSP_OK;
}

static csp_status check_tensor_head(csp__ckpt_load *l, csp__rbuf *r, int32_t i) {
    const csp__ptensor *pt = &l->pruner->tensors[i];
    int has_cs = csp__r_u8(r), attached = csp__r_u8(r);
    if (csp__r_u16(r) != 0 || csp__r_u32(r) != 0 || has_cs > 1 || attached > 1)
        return corrupt(l, "CSPC", "reserved bytes are not zero");
    int my_cs = pt->cs != NULL, my_att = pt->cs != NULL && pt->cs->attached != NULL;
    if (has_cs != my_cs || attached != my_att)
        return csp__error(l->pruner->ctx, CSP_E_STATE,
                          "csp_pruner_load: tensor %d ('%s'): CSP state differs: checkpoint "
                          "%s, pruner %s (attach host operators with csp_pruner_set_sensing() "
                          "before loading)",
                          (int)i, tname(pt), cs_text(has_cs, attached), cs_text(my_cs, my_att));
    return CSP_OK;
}

static csp_status cspc_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    if (l->version < CSPC_VERSION)
        return csp__error(p->ctx, CSP_E_VERSION,
                          "csp_pruner_load: section CSPC version %u (a pre-release libcsp's) is "
                          "not read",
                          (unsigned)l->version);
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count = csp__r_u32(&r), per = csp__r_u32(&r), wide = csp__r_u32(&r);
    uint32_t zero = csp__r_u32(&r);
    uint64_t seed = csp__r_u64(&r);
    if (!r.ok)
        return corrupt(l, "CSPC", "truncated header");
    if (zero != 0)
        return corrupt(l, "CSPC", "reserved bytes are not zero");
    if ((int64_t)count != (int64_t)p->num_tensors)
        return corrupt(l, "CSPC", "tensor count differs from PRUN's");
    uint32_t mine_per = 0;
    for (size_t k = 0; k < csp__num_pruner_options; k++)
        mine_per += per_tensor(&csp__pruner_options[k]);
    /* An older writer records fewer options; without tensors the count is
     * only what this library writes. */
    if (per > mine_per || (count == 0 && per != mine_per))
        return corrupt(l, "CSPC", "the per-tensor record count is not this library's");
    bool seen[CSP__MAX_OPTIONS];
    csp_status st = check_records(l, &r, wide, -1, seen);
    if (st == CSP_OK)
        st = check_seed(l, seed);
    for (int32_t i = 0; i < p->num_tensors && st == CSP_OK; i++) {
        st = check_tensor_head(l, &r, i);
        if (st == CSP_OK)
            st = check_records(l, &r, per, i, seen);
    }
    if (st == CSP_OK && r.pos != r.len)
        st = corrupt(l, "CSPC", "bytes after the last record");
    return st;
}

static void cspc_commit(csp__ckpt_load *l) { (void)l; /* configuration only */ }

/* ---- SENS: activation accumulators of pruner-owned operators ---------------------- */

/* The operator whose accumulator a checkpoint holds, or NULL: an owned
 * activations operator with nothing attached (attached ones are the host's). */
static csp_sensing *owned_activations(const csp__ptensor *pt) {
    if (pt->cs == NULL || pt->cs->attached != NULL || pt->cs->owned == NULL)
        return NULL;
    return csp_sensing_kind(pt->cs->owned) == CSP_SENSING_ACTIVATIONS ? pt->cs->owned : NULL;
}

static bool sens_present(const csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++)
        if (owned_activations(&p->tensors[i]) != NULL)
            return true;
    return false;
}

static uint64_t sens_size(const csp_pruner *p) {
    uint64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s != NULL)
            n += 16 + 8 * (uint64_t)csp_sensing_accumulator_len(s);
    }
    return n;
}

static void sens_write(const csp_pruner *p, csp__wbuf *w) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        int64_t len = csp_sensing_accumulator_len(s);
        csp__w_u32(w, (uint32_t)i);
        csp__w_u32(w, 0);
        csp__w_i64(w, len);
        for (int64_t k = 0; k < len; k++)
            csp__w_f64(w, csp__sensing_accumulator_at(s, k));
    }
}

/* Staged accumulators: one allocation, the records' doubles in order. */
typedef struct {
    double *data;
} sens_stage;

static csp_status sens_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp_context *ctx = p->ctx;
    uint64_t total = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s != NULL)
            total += (uint64_t)csp_sensing_accumulator_len(s);
    }
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    if (total > 0) {
        double *data = csp__malloc(ctx, (size_t)total * sizeof(double));
        if (data == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "csp_pruner_load: out of memory for the "
                              "activation accumulators");
        l->stage = data;
    }
    double *at = l->stage;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        uint32_t index = csp__r_u32(&r);
        uint32_t zero = csp__r_u32(&r);
        int64_t len = csp__r_i64(&r);
        if (!r.ok || index != (uint32_t)i || len != csp_sensing_accumulator_len(s))
            return corrupt(l, "SENS", "records do not match the pruner's activation operators");
        if (zero != 0)
            return corrupt(l, "SENS", "a reserved field is not zero");
        const uint8_t *src = csp__r_take(&r, 8 * (uint64_t)len);
        if (src == NULL)
            return corrupt(l, "SENS", "truncated accumulator");
        for (int64_t k = 0; k < len; k++)
            at[k] = csp__bits_f64(csp__ld_u64(src + 8 * k));
        if (csp__sensing_check_accumulator(s, at, len, "accumulator") != CSP_OK) {
            char why[CSP_ERROR_MAX];
            snprintf(why, sizeof why, "%s", csp_context_last_error(ctx));
            return csp__error(ctx, CSP_E_CORRUPT, "csp_pruner_load: section SENS: tensor %d: %s",
                              (int)i, why);
        }
        /* What csp_sensing_read_accumulator() writes, exactly: S symmetric
         * bit for bit (the operator keeps one triangle) and N not -0, so
         * the section saves back to its own bytes. */
        int64_t n = csp_sensing_n(s);
        for (int64_t a = 0; a < n; a++)
            for (int64_t c = a + 1; c < n; c++)
                if (csp__ld_u64(src + 8 * (a * n + c)) != csp__ld_u64(src + 8 * (c * n + a)))
                    return csp__error(ctx, CSP_E_CORRUPT,
                                      "csp_pruner_load: section SENS: tensor %d: the sums are not "
                                      "exactly symmetric at (%lld, %lld)",
                                      (int)i, (long long)a, (long long)c);
        if (signbit(at[len - 1]))
            return corrupt(l, "SENS", "a negative row count");
        at += len;
    }
    if (r.pos != r.len)
        return corrupt(l, "SENS", "bytes after the last accumulator");
    return CSP_OK;
}

static void sens_commit(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    const double *at = l->stage;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        int64_t len = csp_sensing_accumulator_len(s);
        (void)csp_sensing_write_accumulator(s, at, len); /* checked: cannot fail */
        at += len;
    }
}

static csp_status sens_absent(csp__ckpt_load *l) {
    if (sens_present(l->pruner))
        return corrupt(l, "SENS", "missing, but the pruner has activation operators");
    return CSP_OK;
}

static void sens_release(csp__ckpt_load *l) {
    csp__free(l->pruner->ctx, l->stage);
    l->stage = NULL;
}

/* ---- WARM: ISTA/FISTA warm-start lambdas ------------------------------------------ */

static int64_t lambda_count(const csp__ptensor *pt) {
    if (pt->cs == NULL || pt->cs->lambda == NULL)
        return 0;
    return pt->cs->rows + (pt->cs->tail > 0);
}

static bool warm_present(const csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++)
        if (lambda_count(&p->tensors[i]) > 0)
            return true;
    return false;
}

static uint64_t warm_size(const csp_pruner *p) {
    uint64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c > 0)
            n += 16 + 8 * (uint64_t)c;
    }
    return n;
}

static void warm_write(const csp_pruner *p, csp__wbuf *w) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        csp__w_u32(w, (uint32_t)i);
        csp__w_u32(w, 0);
        csp__w_i64(w, c);
        for (int64_t k = 0; k < c; k++)
            csp__w_f64(w, p->tensors[i].cs->lambda[k]);
    }
}

static csp_status warm_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        uint32_t index = csp__r_u32(&r);
        uint32_t zero = csp__r_u32(&r);
        int64_t count = csp__r_i64(&r);
        if (!r.ok || index != (uint32_t)i || count != c)
            return corrupt(l, "WARM", "records do not match the pruner's ISTA/FISTA tensors");
        if (zero != 0)
            return corrupt(l, "WARM", "a reserved field is not zero");
        for (int64_t k = 0; k < c; k++) {
            double v = csp__r_f64(&r);
            if (!r.ok || !(v >= 0.0) || !isfinite(v))
                return corrupt(l, "WARM", "a lambda is truncated, negative or not finite");
        }
    }
    if (r.pos != r.len)
        return corrupt(l, "WARM", "bytes after the last record");
    return CSP_OK;
}

static void warm_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        (void)csp__r_u64(&r);
        (void)csp__r_u64(&r);
        for (int64_t k = 0; k < c; k++)
            p->tensors[i].cs->lambda[k] = csp__r_f64(&r);
    }
}

static csp_status warm_absent(csp__ckpt_load *l) {
    if (warm_present(l->pruner))
        return corrupt(l, "WARM", "missing, but the pruner has ISTA/FISTA tensors");
    return CSP_OK;
}

/* ---- STAT: statistics ----------------------------------------------------------- */

#define STAT_HEAD 56u
#define STAT_REC 80u

static uint64_t stat_size(const csp_pruner *p) {
    return STAT_HEAD + (uint64_t)p->num_tensors * STAT_REC;
}

static void stat_write(const csp_pruner *p, csp__wbuf *w) {
    const csp__pstats *s = &p->stats;
    csp__w_i64(w, s->steps);
    csp__w_i64(w, s->events);
    csp__w_f64(w, s->last_event_seconds);
    csp__w_f64(w, s->event_seconds);
    csp__w_f64(w, s->total_seconds);
    csp__w_f64(w, s->observe_seconds);
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__tstats *t = &p->tensors[i].stats;
        csp__w_f64(w, t->weight_error);
        csp__w_f64(w, t->sensing_error);
        csp__w_i64(w, t->iterations);
        csp__w_i64(w, t->iterations_max);
        csp__w_i64(w, t->not_converged);
        csp__w_i64(w, t->damped);
        csp__w_i64(w, t->events);
        csp__w_f64(w, t->event_seconds);
        csp__w_f64(w, t->total_seconds);
        csp__w_f64(w, t->observe_seconds);
    }
}

static bool finite_nonneg(double v) { return v >= 0.0 && isfinite(v); }

static void stat_parse(csp__rbuf *r, csp__pstats *ps, uint32_t *count, uint32_t *zero) {
    ps->steps = csp__r_i64(r);
    ps->events = csp__r_i64(r);
    ps->last_event_seconds = csp__r_f64(r);
    ps->event_seconds = csp__r_f64(r);
    ps->total_seconds = csp__r_f64(r);
    ps->observe_seconds = csp__r_f64(r);
    *count = csp__r_u32(r);
    *zero = csp__r_u32(r);
}

static void stat_parse_t(csp__rbuf *r, csp__tstats *t) {
    t->weight_error = csp__r_f64(r);
    t->sensing_error = csp__r_f64(r);
    t->iterations = csp__r_i64(r);
    t->iterations_max = csp__r_i64(r);
    t->not_converged = csp__r_i64(r);
    t->damped = csp__r_i64(r);
    t->events = csp__r_i64(r);
    t->event_seconds = csp__r_f64(r);
    t->total_seconds = csp__r_f64(r);
    t->observe_seconds = csp__r_f64(r);
}

static csp_status stat_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    csp__pstats ps;
    uint32_t count, zero;
    stat_parse(&r, &ps, &count, &zero);
    if (!r.ok || (int64_t)count != (int64_t)p->num_tensors ||
        l->len != STAT_HEAD + (uint64_t)count * STAT_REC)
        return corrupt(l, "STAT", "wrong length or tensor count");
    if (zero != 0)
        return corrupt(l, "STAT", "a reserved field is not zero");
    bool ok = ps.steps >= 0 && ps.events >= 0 && finite_nonneg(ps.last_event_seconds) &&
              finite_nonneg(ps.event_seconds) && finite_nonneg(ps.total_seconds) &&
              finite_nonneg(ps.observe_seconds);
    for (int32_t i = 0; i < p->num_tensors && ok; i++) {
        csp__tstats t;
        stat_parse_t(&r, &t);
        ok = finite_nonneg(t.weight_error) && finite_nonneg(t.sensing_error) &&
             t.iterations >= 0 && t.iterations_max >= 0 && t.not_converged >= 0 &&
             t.damped >= 0 && t.events >= 0 && finite_nonneg(t.event_seconds) &&
             finite_nonneg(t.total_seconds) && finite_nonneg(t.observe_seconds);
    }
    return ok ? CSP_OK : corrupt(l, "STAT", "a statistic is negative or not finite");
}

static void stat_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count, zero;
    stat_parse(&r, &p->stats, &count, &zero);
    for (int32_t i = 0; i < p->num_tensors; i++)
        stat_parse_t(&r, &p->tensors[i].stats);
}

/* A file without statistics: start them from zero. */
static void stat_absent_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    memset(&p->stats, 0, sizeof p->stats);
    for (int32_t i = 0; i < p->num_tensors; i++)
        memset(&p->tensors[i].stats, 0, sizeof p->tensors[i].stats);
}

/* ---- the codecs ------------------------------------------------------------------ */

const csp__ckpt_codec csp__ckpt_codec_cspc = {
    .tag = CSP__TAG('C', 'S', 'P', 'C'), .version = CSPC_VERSION, .flags = CSP__SECTION_REQUIRED,
    .size = cspc_size, .write = cspc_write, .check = cspc_check, .commit = cspc_commit,
    .name = "CSP configuration"};

const csp__ckpt_codec csp__ckpt_codec_sens = {
    .tag = CSP__TAG('S', 'E', 'N', 'S'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .present = sens_present, .size = sens_size, .write = sens_write, .check = sens_check,
    .commit = sens_commit, .absent_check = sens_absent, .release = sens_release,
    .name = "activation accumulators"};

const csp__ckpt_codec csp__ckpt_codec_warm = {
    .tag = CSP__TAG('W', 'A', 'R', 'M'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .present = warm_present, .size = warm_size, .write = warm_write, .check = warm_check,
    .commit = warm_commit, .absent_check = warm_absent, .name = "warm-start lambdas"};

const csp__ckpt_codec csp__ckpt_codec_stat = {
    .tag = CSP__TAG('S', 'T', 'A', 'T'), .version = 2, .flags = 0, .size = stat_size,
    .write = stat_write, .check = stat_check, .commit = stat_commit,
    .absent_commit = stat_absent_commit, .name = "statistics"};
