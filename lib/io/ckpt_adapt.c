/* Section ADPT: the adaptive schedule's state (lib/prune/adaptive.c), each
 * tensor's multiplier of the next event. Written only when the adaptive
 * schedule is on; a file without it loads as before (the multipliers are
 * reset, and a pruner with the adaptive schedule on refuses it). Layout in
 * docs/formats.md. */
#include <math.h>

#include "io/ckpt_internal.h"
#include "prune/adaptive.h"

static csp_status corrupt(csp__ckpt_load *l, const char *what) {
    return csp__error(l->pruner->ctx, CSP_E_CORRUPT, "csp_pruner_load: section ADPT: %s", what);
}

static bool adpt_present(const csp_pruner *p) { return csp__adapt_on(p); }

static uint64_t adpt_size(const csp_pruner *p) { return 8 + 8 * (uint64_t)p->num_tensors; }

static void adpt_write(const csp_pruner *p, csp__wbuf *w) {
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    for (int32_t i = 0; i < p->num_tensors; i++)
        csp__w_f64(w, csp__excluded(&p->tensors[i]) ? 0.0 : p->tensors[i].adapt_mult);
}

static csp_status adpt_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count = csp__r_u32(&r);
    uint32_t zero = csp__r_u32(&r);
    if (!r.ok || count != (uint32_t)p->num_tensors)
        return corrupt(l, "the tensor count does not match the pruner's");
    if (zero != 0)
        return corrupt(l, "a reserved field is not zero");
    for (int32_t i = 0; i < p->num_tensors; i++) {
        double m = csp__r_f64(&r);
        if (!r.ok)
            return corrupt(l, "truncated");
        if (!(m >= 0.0 && m <= p->x.adapt_max) ||
            (csp__excluded(&p->tensors[i]) && csp__f64_bits(m) != 0))
            return corrupt(l, "a multiplier is outside [0, adapt_max] (0 for excluded tensors)");
    }
    if (r.pos != r.len)
        return corrupt(l, "bytes after the last multiplier");
    return CSP_OK;
}

static void adpt_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    (void)csp__r_u64(&r);
    for (int32_t i = 0; i < p->num_tensors; i++)
        p->tensors[i].adapt_mult = csp__r_f64(&r);
}

static csp_status adpt_absent(csp__ckpt_load *l) {
    if (csp__adapt_on(l->pruner))
        return corrupt(l, "missing, but the pruner's adaptive schedule is on");
    return CSP_OK;
}

static void adpt_absent_commit(csp__ckpt_load *l) { csp__adapt_reset(l->pruner); }

const csp__ckpt_codec csp__ckpt_codec_adpt = {
    .tag = CSP__TAG('A', 'D', 'P', 'T'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .present = adpt_present, .size = adpt_size, .write = adpt_write, .check = adpt_check,
    .commit = adpt_commit, .absent_check = adpt_absent, .absent_commit = adpt_absent_commit,
    .name = "adaptive schedule"};
