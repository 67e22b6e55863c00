/* The checkpoint's section codecs and their registry: the pruner
 * ("PRUN"), its tensors ("TNSR") and their masks ("MASK"). Layouts in
 * docs/formats.md. New sections go in files of their own and one line in
 * csp__ckpt_codecs[] (lib/io/ckpt_internal.h says how). */
#include <stdio.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "prune/mask.h"

/* ---- helpers ------------------------------------------------------------------ */

static csp_status corrupt(csp__ckpt_load *l, const char *section, const char *what) {
    return csp__error(l->pruner->ctx, CSP_E_CORRUPT, "csp_pruner_load: section %s: %s", section,
                      what);
}

static const char *tname(const csp__ptensor *pt) {
    return pt->weight->name != NULL ? pt->weight->name : "";
}

/* Equality bit for bit: the file must hold what this pruner writes (so -0
 * and +0 differ, and a NaN never matches: the pruner holds none). */
static bool same_f64(double a, double b) { return csp__f64_bits(a) == csp__f64_bits(b); }

/* Reserved fields are zero; readers refuse anything else, so that every
 * accepted file saves back to its own bytes. */
static csp_status reserved(csp__ckpt_load *l, const char *section) {
    return corrupt(l, section, "a reserved field is not zero");
}

/* ---- PRUN: the pruner and its schedule ------------------------------------------ */

#define PRUN_SIZE 80u

static uint64_t prun_size(const csp_pruner *p) {
    (void)p;
    return PRUN_SIZE;
}

static void prun_write(const csp_pruner *p, csp__wbuf *w) {
    const csp_schedule_options *o = &p->schedule->o;
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    csp__w_i64(w, p->last_step);
    csp__w_i64(w, p->last_event);
    csp__w_i32(w, o->kind);
    csp__w_u32(w, 0);
    csp__w_f64(w, o->initial_sparsity);
    csp__w_f64(w, o->final_sparsity);
    csp__w_f64(w, o->exponent);
    csp__w_i64(w, o->begin_step);
    csp__w_i64(w, o->end_step);
    csp__w_i64(w, o->frequency);
}

typedef struct {
    uint32_t num_tensors, reserved0, reserved1;
    int64_t last_step, last_event;
    int32_t kind;
    double s_i, s_f, exponent;
    int64_t begin, end, frequency;
} prun_rec;

static void prun_parse(csp__rbuf *r, prun_rec *x) {
    x->num_tensors = csp__r_u32(r);
    x->reserved0 = csp__r_u32(r);
    x->last_step = csp__r_i64(r);
    x->last_event = csp__r_i64(r);
    x->kind = csp__r_i32(r);
    x->reserved1 = csp__r_u32(r);
    x->s_i = csp__r_f64(r);
    x->s_f = csp__r_f64(r);
    x->exponent = csp__r_f64(r);
    x->begin = csp__r_i64(r);
    x->end = csp__r_i64(r);
    x->frequency = csp__r_i64(r);
}

static csp_status schedule_differs(csp__ckpt_load *l, const char *field, double file, double mine) {
    return csp__error(l->pruner->ctx, CSP_E_STATE,
                      "csp_pruner_load: the schedule's %s differs: checkpoint %.17g, pruner "
                      "%.17g",
                      field, file, mine);
}

static csp_status prun_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    prun_rec x;
    prun_parse(&r, &x);
    if (!r.ok || r.pos != r.len)
        return corrupt(l, "PRUN", "wrong length");
    if (x.reserved0 != 0 || x.reserved1 != 0)
        return reserved(l, "PRUN");
    if ((int64_t)x.num_tensors != (int64_t)p->num_tensors)
        return csp__error(p->ctx, CSP_E_SHAPE,
                          "csp_pruner_load: the checkpoint holds %lu tensors, the pruner %d",
                          (unsigned long)x.num_tensors, (int)p->num_tensors);
    const csp_schedule_options *o = &p->schedule->o;
    if (x.kind != o->kind)
        return csp__error(p->ctx, CSP_E_STATE,
                          "csp_pruner_load: the schedule's kind differs: checkpoint %d, pruner %d",
                          (int)x.kind, (int)o->kind);
    if (!same_f64(x.s_i, o->initial_sparsity))
        return schedule_differs(l, "initial_sparsity", x.s_i, o->initial_sparsity);
    if (!same_f64(x.s_f, o->final_sparsity))
        return schedule_differs(l, "final_sparsity", x.s_f, o->final_sparsity);
    if (!same_f64(x.exponent, o->exponent))
        return schedule_differs(l, "exponent", x.exponent, o->exponent);
    if (x.begin != o->begin_step)
        return schedule_differs(l, "begin_step", (double)x.begin, (double)o->begin_step);
    if (x.end != o->end_step)
        return schedule_differs(l, "end_step", (double)x.end, (double)o->end_step);
    if (x.frequency != o->frequency)
        return schedule_differs(l, "frequency", (double)x.frequency, (double)o->frequency);
    if (x.last_step < -1 || x.last_event < -1 || x.last_event > x.last_step)
        return corrupt(l, "PRUN", "last_step/last_event out of range");
    return CSP_OK;
}

static void prun_commit(csp__ckpt_load *l) {
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    prun_rec x;
    prun_parse(&r, &x);
    l->pruner->last_step = x.last_step;
    l->pruner->last_event = x.last_event;
}

/* ---- TNSR: each tensor's configuration and scalar state ------------------------- */

#define TNSR_FIXED 80u

static uint64_t name_len(const csp__ptensor *pt) { return strlen(tname(pt)); }

static uint64_t tnsr_size(const csp_pruner *p) {
    uint64_t n = 8;
    for (int32_t i = 0; i < p->num_tensors; i++)
        n += TNSR_FIXED + csp__pad8(name_len(&p->tensors[i]));
    return n;
}

static void tnsr_write(const csp_pruner *p, csp__wbuf *w) {
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        const csp_tensor *t = pt->weight;
        uint64_t nl = name_len(pt);
        csp__w_u8(w, (uint8_t)t->dtype);
        csp__w_u8(w, (uint8_t)t->rank);
        csp__w_u8(w, (uint8_t)pt->conf.granularity);
        csp__w_u8(w, (uint8_t)(csp__excluded(pt) ? 1 : 0));
        bool nm = pt->conf.granularity == CSP_GRANULARITY_NM;
        csp__w_u8(w, nm ? (uint8_t)pt->conf.nm_n : 0);
        csp__w_u8(w, nm ? (uint8_t)pt->conf.nm_m : 0);
        csp__w_u16(w, (uint16_t)nl);
        csp__w_i32(w, pt->conf.granularity == CSP_GRANULARITY_GLOBAL ? pt->conf.group : 0);
        csp__w_u32(w, 0);
        for (int d = 0; d < CSP_MAX_RANK; d++)
            csp__w_i64(w, d < t->rank ? t->shape[d] : 0);
        csp__w_f64(w, pt->conf.final_sparsity);
        csp__w_i64(w, pt->nnz);
        csp__w_f64(w, pt->target);
        csp__w_i64(w, pt->last_event);
        csp__w_bytes(w, tname(pt), nl);
        csp__w_pad8(w);
    }
}

typedef struct {
    uint8_t dtype, rank, granularity, excluded, nm_n, nm_m;
    uint16_t name_len;
    int32_t group;
    uint32_t reserved;
    int64_t shape[CSP_MAX_RANK];
    double final_override;
    int64_t nnz;
    double target;
    int64_t last_event;
    const uint8_t *name;
} tnsr_rec;

static void tnsr_parse(csp__rbuf *r, tnsr_rec *x) {
    x->dtype = csp__r_u8(r);
    x->rank = csp__r_u8(r);
    x->granularity = csp__r_u8(r);
    x->excluded = csp__r_u8(r);
    x->nm_n = csp__r_u8(r);
    x->nm_m = csp__r_u8(r);
    x->name_len = csp__r_u16(r);
    x->group = csp__r_i32(r);
    x->reserved = csp__r_u32(r);
    for (int d = 0; d < CSP_MAX_RANK; d++)
        x->shape[d] = csp__r_i64(r);
    x->final_override = csp__r_f64(r);
    x->nnz = csp__r_i64(r);
    x->target = csp__r_f64(r);
    x->last_event = csp__r_i64(r);
    x->name = csp__r_take(r, x->name_len);
    csp__r_pad8(r);
}

static void shape_text(char *buf, size_t cap, int rank, const int64_t *shape) {
    size_t n = 0;
    buf[0] = '\0';
    for (int d = 0; d < rank && d < CSP_MAX_RANK && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, d == 0 ? "%lld" : "x%lld", (long long)shape[d]);
}

static csp_status tensor_differs(csp__ckpt_load *l, csp_status st, int32_t i, const char *what,
                                 long long file, long long mine) {
    const csp__ptensor *pt = &l->pruner->tensors[i];
    return csp__error(l->pruner->ctx, st,
                      "csp_pruner_load: tensor %d ('%s'): %s differs: checkpoint %lld, pruner %lld",
                      (int)i, tname(pt), what, file, mine);
}

static csp_status tnsr_check_one(csp__ckpt_load *l, int32_t i, const tnsr_rec *x) {
    csp_context *ctx = l->pruner->ctx;
    const csp__ptensor *pt = &l->pruner->tensors[i];
    const csp_tensor *t = pt->weight;
    if (x->dtype != t->dtype)
        return tensor_differs(l, CSP_E_DTYPE, i, "dtype (1 float32, 2 float64)", x->dtype,
                              t->dtype);
    bool same = x->rank == t->rank;
    for (int d = 0; d < CSP_MAX_RANK; d++)
        same = same && x->shape[d] == (d < t->rank ? t->shape[d] : 0);
    if (!same) {
        char a[128], b[128];
        shape_text(a, sizeof a, x->rank, x->shape);
        shape_text(b, sizeof b, t->rank, t->shape);
        return csp__error(ctx, CSP_E_SHAPE,
                          "csp_pruner_load: tensor %d ('%s'): shape differs: checkpoint %s (rank "
                          "%d), pruner %s (rank %d)",
                          (int)i, tname(pt), a, (int)x->rank, b, (int)t->rank);
    }
    /* What TNSR stores of the configuration must be what this pruner would
     * write (so an accepted file saves back to the same bytes); the rest is
     * compared option by option by CSPC (lib/io/ckpt_cs.c). */
    const csp_pruner_tensor_options *c = &pt->conf;
    if (x->excluded != (csp__excluded(pt) ? 1 : 0))
        return tensor_differs(l, CSP_E_STATE, i, "exclude", x->excluded, csp__excluded(pt));
    if (x->granularity != c->granularity)
        return tensor_differs(l, CSP_E_STATE, i, "granularity", x->granularity, c->granularity);
    bool nm = c->granularity == CSP_GRANULARITY_NM;
    bool global = c->granularity == CSP_GRANULARITY_GLOBAL;
    if (x->reserved != 0)
        return reserved(l, "TNSR");
    if (!global && x->group != 0)
        return corrupt(l, "TNSR", "a group is set for a tensor without GLOBAL granularity");
    if (x->group != (global ? c->group : 0))
        return tensor_differs(l, CSP_E_STATE, i, "global group", x->group, c->group);
    if (!nm && (x->nm_n != 0 || x->nm_m != 0))
        return corrupt(l, "TNSR", "N:M is set for a tensor without N:M granularity");
    if (nm && (x->nm_n != c->nm_n || x->nm_m != c->nm_m))
        return csp__error(ctx, CSP_E_STATE,
                          "csp_pruner_load: tensor %d ('%s'): N:M differs: checkpoint %d:%d, "
                          "pruner %d:%d",
                          (int)i, tname(pt), (int)x->nm_n, (int)x->nm_m, (int)c->nm_n,
                          (int)c->nm_m);
    if (!same_f64(x->final_override, c->final_sparsity))
        return csp__error(ctx, CSP_E_STATE,
                          "csp_pruner_load: tensor %d ('%s'): final_sparsity differs: "
                          "checkpoint %.17g, pruner %.17g",
                          (int)i, tname(pt), x->final_override, c->final_sparsity);
    const char *mine = tname(pt);
    if (x->name_len > 0 && mine[0] != '\0' &&
        (strlen(mine) != x->name_len || memcmp(mine, x->name, x->name_len) != 0))
        return csp__error(ctx, CSP_E_STATE,
                          "csp_pruner_load: tensor %d: name differs: checkpoint '%.*s', pruner "
                          "'%s' (tensors must be added in the same order)",
                          (int)i, (int)x->name_len, (const char *)x->name, mine);
    /* Scalar state: consistent with itself. */
    if (!(x->target >= 0.0 && x->target < 1.0) || x->last_event < -1 ||
        (x->excluded && (x->nnz != t->numel || x->last_event != -1 || x->target != 0.0)))
        return corrupt(l, "TNSR", "a tensor's target, nnz or last_event is out of range");
    return CSP_OK;
}

static csp_status tnsr_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count = csp__r_u32(&r);
    uint32_t zero = csp__r_u32(&r);
    if (!r.ok)
        return corrupt(l, "TNSR", "too short");
    if (zero != 0)
        return reserved(l, "TNSR");
    if ((int64_t)count != (int64_t)p->num_tensors)
        return csp__error(p->ctx, CSP_E_SHAPE,
                          "csp_pruner_load: the checkpoint holds %lu tensors, the pruner %d",
                          (unsigned long)count, (int)p->num_tensors);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        tnsr_rec x;
        tnsr_parse(&r, &x);
        if (!r.ok)
            return corrupt(l, "TNSR", "truncated record or non-zero padding");
        csp_status st = tnsr_check_one(l, i, &x);
        if (st != CSP_OK)
            return st;
    }
    if (r.pos != r.len)
        return corrupt(l, "TNSR", "bytes after the last record");
    return CSP_OK;
}

static void tnsr_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    (void)csp__r_u64(&r);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        tnsr_rec x;
        tnsr_parse(&r, &x);
        p->tensors[i].target = x.target;
        p->tensors[i].last_event = x.last_event;
    }
}

/* ---- MASK: the masks of the non-excluded tensors --------------------------------- */

#define MASK_FIXED 24u

static uint64_t mask_bytes(int64_t numel) { return ((uint64_t)numel + 7) / 8; }

static uint64_t mask_size(const csp_pruner *p) {
    uint64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++)
        if (!csp__excluded(&p->tensors[i]))
            n += MASK_FIXED + csp__pad8(mask_bytes(p->tensors[i].weight->numel));
    return n;
}

static void mask_write(const csp_pruner *p, csp__wbuf *w) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (csp__excluded(pt))
            continue;
        int64_t numel = pt->weight->numel;
        csp__w_u32(w, (uint32_t)i);
        csp__w_u32(w, 0);
        csp__w_i64(w, numel);
        csp__w_i64(w, pt->nnz);
        uint64_t nb = mask_bytes(numel);
        if (!csp__w_room(w, nb))
            return;
        uint8_t *dst = w->p + w->pos;
        uint64_t full = nb / 8;
        for (uint64_t k = 0; k < full; k++)
            csp__st_u64(dst + 8 * k, pt->mask[k]);
        for (uint64_t b = full * 8; b < nb; b++)
            dst[b] = (uint8_t)(pt->mask[b / 8] >> (8 * (b % 8)));
        w->pos += nb;
        csp__w_pad8(w);
    }
}

/* Word @p k of a mask stored as @p nb little-endian bytes. */
static uint64_t mask_word(const uint8_t *bytes, uint64_t nb, uint64_t k) {
    if (8 * k + 8 <= nb)
        return csp__ld_u64(bytes + 8 * k);
    uint64_t v = 0;
    for (uint64_t b = 8 * k; b < nb; b++)
        v |= (uint64_t)bytes[b] << (8 * (b - 8 * k));
    return v;
}

static csp_status mask_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r, tr;
    csp__r_init(&r, l->payload, l->len);
    /* The tensor table, to walk alongside (it passed its check). */
    const csp__ckpt_load *tl = csp__ckpt_peer(l, &csp__ckpt_codec_tnsr);
    csp__r_init(&tr, tl->payload, tl->len);
    (void)csp__r_u64(&tr);
    int32_t tensor_at = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (csp__excluded(pt))
            continue;
        uint32_t index = csp__r_u32(&r);
        uint32_t zero = csp__r_u32(&r);
        int64_t numel = csp__r_i64(&r);
        int64_t nnz = csp__r_i64(&r);
        if (!r.ok)
            return corrupt(l, "MASK", "truncated record");
        if (index != (uint32_t)i || numel != pt->weight->numel)
            return corrupt(l, "MASK", "records do not match the tensor table");
        if (zero != 0)
            return reserved(l, "MASK");
        uint64_t nb = mask_bytes(numel);
        const uint8_t *bytes = csp__r_take(&r, nb);
        if (bytes == NULL || !csp__r_pad8(&r))
            return corrupt(l, "MASK", "truncated mask or non-zero padding");
        if (numel % 8 != 0 && (bytes[nb - 1] >> (numel % 8)) != 0)
            return corrupt(l, "MASK", "bits set past the end of a mask");
        int64_t ones = 0;
        for (uint64_t k = 0; k < (nb + 7) / 8; k++)
            ones += csp__popcount64(mask_word(bytes, nb, k));
        if (ones != nnz)
            return csp__error(p->ctx, CSP_E_CORRUPT,
                              "csp_pruner_load: section MASK: tensor %d: nnz %lld but the mask "
                              "keeps %lld",
                              (int)i, (long long)nnz, (long long)ones);
        /* TNSR's copy of nnz (checked before MASK) must agree. */
        tnsr_rec tx;
        memset(&tx, 0, sizeof tx);
        while (tensor_at <= i) {
            tnsr_parse(&tr, &tx);
            tensor_at++;
        }
        if (!tr.ok || tx.nnz != nnz)
            return csp__error(p->ctx, CSP_E_CORRUPT,
                              "csp_pruner_load: tensor %d: section TNSR says nnz %lld, section "
                              "MASK %lld",
                              (int)i, (long long)tx.nnz, (long long)nnz);
    }
    if (r.pos != r.len)
        return corrupt(l, "MASK", "bytes after the last mask");
    return CSP_OK;
}

static void mask_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (csp__excluded(pt))
            continue;
        (void)csp__r_u64(&r);
        int64_t numel = csp__r_i64(&r);
        pt->nnz = csp__r_i64(&r);
        uint64_t nb = mask_bytes(numel);
        const uint8_t *bytes = csp__r_take(&r, nb);
        csp__r_pad8(&r);
        for (int64_t k = 0; k < csp__mask_words(numel); k++)
            pt->mask[k] = mask_word(bytes, nb, (uint64_t)k);
    }
}

/* ---- the registry -------------------------------------------------------------- */

const csp__ckpt_codec csp__ckpt_codec_prun = {
    .tag = CSP__TAG('P', 'R', 'U', 'N'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .size = prun_size, .write = prun_write, .check = prun_check, .commit = prun_commit,
    .name = "pruner and schedule"};

const csp__ckpt_codec csp__ckpt_codec_tnsr = {
    .tag = CSP__TAG('T', 'N', 'S', 'R'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .size = tnsr_size, .write = tnsr_write, .check = tnsr_check, .commit = tnsr_commit,
    .name = "tensors"};

const csp__ckpt_codec csp__ckpt_codec_mask = {
    .tag = CSP__TAG('M', 'A', 'S', 'K'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .size = mask_size, .write = mask_write, .check = mask_check, .commit = mask_commit,
    .name = "masks"};

/* Written and checked in this order; a new section is one more line (after
 * the sections it relies on) and a codec in a file of its own. */
const csp__ckpt_codec *const csp__ckpt_codecs[] = {
    &csp__ckpt_codec_prun,
    &csp__ckpt_codec_tnsr,
    &csp__ckpt_codec_mask,
    &csp__ckpt_codec_cspc, /* the CSP state: lib/io/ckpt_cs.c */
    &csp__ckpt_codec_sens,
    &csp__ckpt_codec_warm,
    &csp__ckpt_codec_stat,
    &csp__ckpt_codec_adpt, /* the adaptive schedule: lib/io/ckpt_adapt.c */
};

const size_t csp__ckpt_num_codecs = sizeof csp__ckpt_codecs / sizeof csp__ckpt_codecs[0];

const csp__ckpt_load *csp__ckpt_peer(const csp__ckpt_load *l, const csp__ckpt_codec *c) {
    size_t i = 0;
    while (i + 1 < csp__ckpt_num_codecs && csp__ckpt_codecs[i] != c)
        i++;
    return &l->peers[i];
}

const csp__ckpt_codec *csp__ckpt_codec_of(uint32_t tag) {
    for (size_t i = 0; i < csp__ckpt_num_codecs; i++)
        if (csp__ckpt_codecs[i]->tag == tag)
            return csp__ckpt_codecs[i];
    return NULL;
}
