/* rnnt_demo.c - train the RNN-T connected-digit recogniser (rnnt_model.h)
 * on rnnt_data.h's corpus with the RNN-T loss (rnnt_loss.h), pruned during
 * training by libcsp (rnnt_prune.h), and print the word error rate
 * (wer.h), the compressed size and one `RESULT rnnt-result/2 {json}` line
 * (schema in README.md, "RESULT"). See examples/rnnt/README.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "rnnt_data.h"
#include "rnnt_dense.h"
#include "rnnt_infer_eval.h"
#include "rnnt_loss.h"
#include "rnnt_model.h"
#include "rnnt_prune.h"
#include "speech_methods.h"
#include "wer.h"

#define RESULT_SCHEMA "rnnt-result/2"
#define MAX_EPOCHS 1000

#ifndef RN_ESPEAK_SCRIPT
#define RN_ESPEAK_SCRIPT NULL
#endif
#ifndef RN_ESPEAK_CACHE
#define RN_ESPEAK_CACHE NULL
#endif

typedef struct opts {
    const char *method, *eval, *data, *data_dir;
    double sparsity, lr, lr_final, clip, begin_frac, end_frac, decay_begin, finetune_lr;
    int64_t epochs, batch, events, n_train, n_valid, n_test, calib, finetune_epochs;
    int one_shot;
    const char *save_dense, *load_dense, *dump_params;
    uint64_t seed;
    int threads, max_symbols, validate, quiet, list_methods, fixed_pool, infer;
    rn_config model;
    sm_overrides csp;
} opts;

typedef struct epoch_log {
    double loss, valid_wer, lr, seconds, grad_norm;
} epoch_log;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  --method NAME       dense, gmp, gmp-tensor, csp-act, ... (--list-methods) (dense)\n"
            "  --sparsity S        final sparsity of every pruned matrix (0.9)\n"
            "  --seed N            model init, batch order, pruning RNG (1)\n"
            "  --epochs N          (50)\n"
            "  --eval official|loso[:K]  official split, or leave speaker K out (0)\n"
            "  --data fsdd|espeak  FSDD (../shared/data/fsdd, $CSP_SPEECH_DATA) or the\n"
            "                      espeak-ng fallback (default: FSDD when found)\n"
            "  --data-dir DIR      FSDD directory\n"
            "  --threads N         libcsp threads (1); BLAS: OPENBLAS_NUM_THREADS\n"
            "  --validate          final numbers on the VALIDATION set (for tuning)\n"
            "  --n-train N --n-valid N --n-test N   strings per set (1000, 300, 500)\n"
            "  --fixed-pool        the same TRAIN strings every epoch\n"
            "  --batch N (16)  --lr X (0.004)  --clip X (5)  --max-symbols N (5)\n"
            "  --enc-layers N (1) --enc-hidden N (128) --embed N (32) --pred-hidden N (64)\n"
            "  --joint N (128)\n"
            "  --begin F --end F   pruning ramp, fractions of the steps (0.1, 0.6)\n"
            "  --events N          pruning events over the ramp (40)\n"
            "  --lr-final F        learning-rate factor reached at the end (0.05); the\n"
            "                      cosine decay runs from --decay-begin (the ramp end)\n"
            "  --csp KEY=VALUE,... option overrides (examples/speech/README.md)\n"
            "  --quiet             no per-epoch lines\n"
            "  --save-dense FILE   after a dense run (--method dense), write every parameter\n"
            "                      (examples/rnnt/rnnt_dense.h; atomic: FILE.tmp, renamed)\n"
            "  --one-shot          prune the --load-dense model ONCE (one csp_step event at\n"
            "                      step 0) to --sparsity with --method's configuration,\n"
            "                      from the activations of --calib TRAINING strings, then\n"
            "                      fine-tune --finetune-epochs; needs --load-dense. With\n"
            "                      --method dense: score the loaded model as it is\n"
            "  --load-dense FILE   the trained dense model (model sizes must match; with\n"
            "                      --one-shot only)\n"
            "  --calib N           calibration strings, evenly strided over the training\n"
            "                      side (epoch 0's pool) (256)\n"
            "  --finetune-epochs N epochs of fine-tuning after the event, masks fixed,\n"
            "                      gradients masked, fresh Adam (0: none)\n"
            "  --finetune-lr X     fine-tune lr: cosine from X to X * --lr-final over the\n"
            "                      fine-tune steps (0.001 = --lr / 4 of the default recipe)\n"
            "  --dump-params FILE  after any run, write the final parameters (same format\n"
            "                      as --save-dense; for tests and inspection)\n"
            "  --infer             after training, decode the evaluated set one utterance\n"
            "                      at a time, dense and through libcsp's sparse kernels\n"
            "                      (examples/rnnt/rnnt_infer.h): latency, real-time factor\n",
            prog);
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = s ? strtod(s, &end) : 0.0;
    if (!s || errno || end == s || *end || !isfinite(d) || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

static int inum(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    double d;
    if (num(s, (double)lo, (double)hi, &d) != 0 || d != floor(d))
        return -1;
    *out = (int64_t)d;
    return 0;
}

static void defaults(opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = "dense";
    o->eval = "official";
    o->sparsity = 0.9;
    o->lr = 4e-3;
    o->lr_final = 0.05;
    o->clip = 5.0;
    o->begin_frac = 0.1;
    o->end_frac = 0.6;
    o->decay_begin = -1.0;
    o->epochs = 50;
    o->batch = 16;
    o->events = 40;
    o->n_train = 1000;
    o->n_valid = 300;
    o->n_test = 500;
    o->seed = 1;
    o->threads = 1;
    o->max_symbols = 5;
    o->calib = 256;
    o->finetune_lr = 1e-3;
    rn_config_init(&o->model);
    sm_overrides_init(&o->csp);
}

/* One option with its value v (NULL for flags); returns 1 when v was used,
 * 0 for a flag, -1 when bad. */
static int option(opts *o, const char *a, const char *v)
{
    int64_t i = 0;
    double d = 0.0;
    if (!strcmp(a, "--validate"))
        return o->validate = 1, 0;
    if (!strcmp(a, "--quiet"))
        return o->quiet = 1, 0;
    if (!strcmp(a, "--list-methods"))
        return o->list_methods = 1, 0;
    if (!strcmp(a, "--fixed-pool"))
        return o->fixed_pool = 1, 0;
    if (!strcmp(a, "--infer"))
        return o->infer = 1, 0;
    if (!strcmp(a, "--one-shot"))
        return o->one_shot = 1, 0;
    if (!v)
        return -1;
    if (!strcmp(a, "--method"))
        return o->method = v, 1;
    if (!strcmp(a, "--eval"))
        return o->eval = v, 1;
    if (!strcmp(a, "--data"))
        return strcmp(v, "fsdd") && strcmp(v, "espeak") ? -1 : (o->data = v, 1);
    if (!strcmp(a, "--data-dir"))
        return o->data_dir = v, 1;
    if (!strcmp(a, "--save-dense"))
        return o->save_dense = v, 1;
    if (!strcmp(a, "--load-dense"))
        return o->load_dense = v, 1;
    if (!strcmp(a, "--dump-params"))
        return o->dump_params = v, 1;
    if (!strcmp(a, "--csp")) {
        char err[256];
        if (sm_parse_overrides(v, &o->csp, err, sizeof err) != 0) {
            fprintf(stderr, "--csp: %s\n", err);
            return -1;
        }
        return 1;
    }
    struct { const char *name; double *dst; double lo, hi; } dbl[] = {
        {"--sparsity", &o->sparsity, 0.0, 0.999}, {"--lr", &o->lr, 1e-6, 1.0},
        {"--lr-final", &o->lr_final, 1e-4, 1.0}, {"--clip", &o->clip, 0.0, 1e6},
        {"--begin", &o->begin_frac, 0.0, 1.0}, {"--end", &o->end_frac, 0.0, 1.0},
        {"--decay-begin", &o->decay_begin, 0.0, 1.0}, {"--finetune-lr", &o->finetune_lr, 1e-7, 1.0}};
    for (size_t k = 0; k < sizeof dbl / sizeof dbl[0]; k++)
        if (!strcmp(a, dbl[k].name))
            return num(v, dbl[k].lo, dbl[k].hi, dbl[k].dst) ? -1 : 1;
    struct { const char *name; int64_t lo, hi; } ints[] = {
        {"--epochs", 1, MAX_EPOCHS}, {"--batch", 1, 4096}, {"--events", 1, 100000},
        {"--n-train", 1, 10000000}, {"--n-valid", 1, 1000000}, {"--n-test", 1, 1000000},
        {"--seed", 0, INT64_MAX / 2}, {"--threads", 0, 1024}, {"--max-symbols", 1, 100},
        {"--enc-layers", 1, RN_MAX_LAYERS}, {"--enc-hidden", 1, 4096}, {"--embed", 1, 4096},
        {"--pred-hidden", 1, 4096}, {"--joint", 1, 4096}, {"--calib", 1, 10000000},
        {"--finetune-epochs", 0, MAX_EPOCHS}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (strcmp(a, ints[k].name))
            continue;
        if (inum(v, ints[k].lo, ints[k].hi, &i))
            return -1;
        int64_t *dst[] = {&o->epochs, &o->batch, &o->events, &o->n_train, &o->n_valid,
                          &o->n_test, NULL, NULL, NULL, &o->model.enc_layers,
                          &o->model.enc_hidden, &o->model.embed, &o->model.pred_hidden,
                          &o->model.joint, &o->calib, &o->finetune_epochs};
        if (dst[k])
            *dst[k] = i;
        else if (k == 6)
            o->seed = (uint64_t)i;
        else if (k == 7)
            o->threads = (int)i;
        else
            o->max_symbols = (int)i;
        return 1;
    }
    (void)d;
    return -1;
}

static int parse(int argc, char **argv, opts *o)
{
    defaults(o);
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            usage(stdout, argv[0]);
            return 1;
        }
        const int r = option(o, argv[k], k + 1 < argc ? argv[k + 1] : NULL);
        if (r < 0) {
            fprintf(stderr, "%s: bad option or value: %s%s%s\n", argv[0], argv[k],
                    k + 1 < argc ? " " : "", k + 1 < argc ? argv[k + 1] : "");
            usage(stderr, argv[0]);
            return -1;
        }
        k += r;
    }
    if (!(o->begin_frac < o->end_frac)) {
        fprintf(stderr, "%s: --begin must be below --end\n", argv[0]);
        return -1;
    }
    if (o->one_shot != (o->load_dense != NULL)) {
        fprintf(stderr, "%s: --one-shot and --load-dense go together (%s)\n", argv[0],
                o->one_shot ? "--one-shot needs --load-dense FILE, the trained dense model"
                            : "--load-dense needs --one-shot");
        return -1;
    }
    if (o->save_dense && (o->one_shot || strcmp(o->method, "dense") != 0)) {
        fprintf(stderr, "%s: --save-dense needs --method dense (and no --one-shot)\n", argv[0]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- JSON */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.6g", x);
    else
        fputs("null", f);
}

/* ------------------------------------------------------------ training */

typedef struct run {
    opts *o;
    rn_corpus *corpus;
    rn_model model;
    rn_ws *ws;
    rn_batch bt;
    rp_pruning *pr;
    const sm_method *method;
    float *grad, *loss;
    size_t grad_cap, loss_cap;
    int64_t steps_per_epoch, total_steps, step;
    int64_t n_epochs; /* --epochs, or --finetune-epochs with --one-shot */
    double decay_begin, base_lr;
    /* --one-shot: calibration strings observed, seconds of that pass, the
     * validation WER right after the event (before fine-tuning) */
    int64_t calib_n;
    double calib_s, valid_after_event;
    epoch_log log[MAX_EPOCHS];
    double train_s, eval_s;
} run;

static double lr_factor(const run *r, int64_t step)
{
    const double u0 = r->decay_begin * (double)r->total_steps, u1 = (double)r->total_steps;
    const double u = ((double)step - u0) / (u1 - u0);
    if (u <= 0.0)
        return 1.0;
    const double f = r->o->lr_final, c = u >= 1.0 ? 1.0 : u;
    return f + (1.0 - f) * 0.5 * (1.0 + cos(3.141592653589793 * c));
}

static rn_input input_of(const rn_batch *b)
{
    rn_input in = {b->B, b->T, b->U, b->F, b->feat, b->t_len, b->labels, b->u_len};
    return in;
}

static int grow(float **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    free(*p);
    *p = (float *)malloc(n * sizeof **p);
    *cap = *p ? n : 0;
    return *p ? 0 : -1;
}

/* One optimizer step on the batch in r->bt; adds the summed loss to *sum. */
static int train_step(run *r, double *sum, double *gnorm)
{
    rn_input in = input_of(&r->bt);
    const int64_t U1 = in.U + 1, V = r->model.cfg.vocab;
    const size_t n = (size_t)(in.B * in.T * U1 * V);
    if (grow(&r->grad, &r->grad_cap, n) || grow(&r->loss, &r->loss_cap, (size_t)in.B))
        return -1;
    const int64_t step = r->step + 1; /* the update this forward leads to */
    const int obs = r->pr && rp_wants_observe(r->pr, step);
    const float *logits = NULL;
    int st = rn_forward(&r->model, &in, r->ws, obs ? rp_observe : NULL, r->pr, &logits);
    if (st != RN_OK) {
        fprintf(stderr, "rn_forward: %d\n", st);
        return -1;
    }
    st = rn_loss(logits, in.labels, in.t_len, in.u_len, (int)in.B, (int)in.T, (int)U1, (int)V,
                 r->model.cfg.blank, r->loss, r->grad);
    if (st != RN_LOSS_OK) {
        fprintf(stderr, "rn_loss: %s\n", rn_loss_strerror(st));
        return -1;
    }
    const float scale = 1.0f / (float)in.B; /* mean over the batch */
    for (size_t k = 0; k < n; k++)
        r->grad[k] *= scale;
    for (int64_t b = 0; b < in.B; b++)
        *sum += r->loss[b];
    if (rn_backward(&r->model, &in, r->ws, r->grad) != RN_OK)
        return -1;
    if (r->pr && rp_mask_gradients(r->pr) != 0)
        return -1;
    *gnorm += rn_adam_step(&r->model, r->base_lr * lr_factor(r, r->step), r->o->clip);
    r->step++;
    if (r->pr && rp_step(r->pr, r->step) < 0)
        return -1;
    return rp_check(r->pr);
}

/* The epoch's batch order: indices sorted by length within runs of 8
 * batches after a shuffle (less padding), batches shuffled again. */
static int64_t *epoch_order(const run *r, int epoch, int64_t n)
{
    int64_t *idx = (int64_t *)malloc((size_t)n * sizeof *idx);
    int64_t *len = (int64_t *)malloc((size_t)n * sizeof *len);
    int64_t *out = (int64_t *)malloc((size_t)n * sizeof *out);
    if (!idx || !len || !out) {
        free(idx), free(len), free(out);
        return NULL;
    }
    sp_rng g;
    sp_rng_seed(&g, r->o->seed * 1000003u + (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++) {
        idx[i] = i;
        rn_utt_info info;
        len[i] = rn_corpus_info(r->corpus, RN_SET_TRAIN, epoch, i, &info) == 0 ? info.samples
                                                                               : 0;
    }
    sp_rng_shuffle_i64(&g, idx, n);
    const int64_t B = r->o->batch, run_len = 8 * B;
    for (int64_t s = 0; s < n; s += run_len) /* insertion sort by length, longest first */
        for (int64_t i = s + 1; i < n && i < s + run_len; i++)
            for (int64_t j = i; j > s && len[idx[j]] > len[idx[j - 1]]; j--) {
                int64_t t = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = t;
            }
    const int64_t nb = (n + B - 1) / B;
    int64_t *perm = len; /* reuse */
    for (int64_t i = 0; i < nb; i++)
        perm[i] = i;
    sp_rng_shuffle_i64(&g, perm, nb);
    int64_t k = 0;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t j = perm[i] * B; j < n && j < (perm[i] + 1) * B; j++)
            out[k++] = idx[j];
    free(idx);
    free(len);
    return out;
}

static int run_epoch(run *r, int epoch, epoch_log *lg)
{
    const int64_t n = rn_corpus_size(r->corpus, RN_SET_TRAIN);
    int64_t *order = epoch_order(r, epoch, n);
    if (!order)
        return -1;
    double sum = 0.0, gnorm = 0.0;
    int64_t steps = 0;
    int rc = 0;
    for (int64_t first = 0; first < n && rc == 0; first += r->o->batch) {
        const int count = (int)(n - first < r->o->batch ? n - first : r->o->batch);
        int st = rn_corpus_batch_idx(r->corpus, RN_SET_TRAIN, epoch, order + first, count,
                                     &r->bt);
        if (st != 0) {
            fprintf(stderr, "rn_corpus_batch_idx: %s\n", rn_data_strerror(st));
            rc = -1;
            break;
        }
        rc = train_step(r, &sum, &gnorm);
        steps++;
    }
    free(order);
    lg->loss = sum / (double)n;
    lg->grad_norm = steps ? gnorm / (double)steps : 0.0;
    lg->lr = r->base_lr * lr_factor(r, r->step - 1);
    return rc;
}

/* Greedy decoding of a whole set, WER totals into *w. */
static int evaluate(run *r, rn_set set, rn_wer *w)
{
    memset(w, 0, sizeof *w);
    const int64_t n = rn_corpus_size(r->corpus, set), B = 64;
    const int64_t cap = 4 * RN_MAX_DIGITS;
    int32_t *hyp = (int32_t *)malloc((size_t)(B * cap) * sizeof *hyp);
    int32_t hl[64];
    if (!hyp)
        return -1;
    int rc = 0;
    for (int64_t first = 0; first < n && rc == 0; first += B) {
        const int count = (int)(n - first < B ? n - first : B);
        if (rn_corpus_batch(r->corpus, set, 0, first, count, &r->bt) != 0) {
            rc = -1;
            break;
        }
        rn_input in = input_of(&r->bt);
        if (rn_greedy(&r->model, &in, r->ws, r->o->max_symbols, hyp, hl, cap) != RN_OK) {
            rc = -1;
            break;
        }
        for (int b = 0; b < count; b++)
            rn_wer_add(w, r->bt.labels + (int64_t)b * r->bt.U, r->bt.u_len[b], hyp + b * cap,
                       hl[b]);
    }
    free(hyp);
    return rc;
}

/* ------------------------------------------------------------- set-up */

static int open_corpus(run *r)
{
    const opts *o = r->o;
    rn_data_options d;
    rn_data_options_default(&d);
    d.data_dir = o->data_dir;
    d.espeak_cache = RN_ESPEAK_CACHE;
    d.espeak_script = RN_ESPEAK_SCRIPT;
    d.force_espeak = o->data && !strcmp(o->data, "espeak");
    d.seed = o->seed;
    d.n_train = o->n_train;
    d.n_valid = o->n_valid;
    d.n_test = o->n_test;
    d.fresh_each_epoch = !o->fixed_pool;
    if (!strcmp(o->eval, "official")) {
        d.eval = RN_EVAL_OFFICIAL;
    } else if (!strncmp(o->eval, "loso", 4) && (o->eval[4] == 0 || o->eval[4] == ':')) {
        int64_t k = 0;
        if (o->eval[4] == ':' && inum(o->eval + 5, 0, 1000, &k) != 0) {
            fprintf(stderr, "--eval loso:K needs a speaker index K\n");
            return -1;
        }
        d.eval = RN_EVAL_SPEAKER;
        d.test_speaker = (int)k;
    } else {
        fprintf(stderr, "--eval must be official or loso[:K]\n");
        return -1;
    }
    char err[512] = "";
    const int st = rn_corpus_open(&d, &r->corpus, err, sizeof err);
    if (st != 0) {
        fprintf(stderr, "data: %s: %s\n", rn_data_strerror(st), err);
        return -1;
    }
    if (o->data && !strcmp(o->data, "fsdd") && rn_corpus_is_synthetic(r->corpus) != 0) {
        fprintf(stderr, "--data fsdd: FSDD not found\n");
        return -1;
    }
    return 0;
}

/* --one-shot: the calibration pass (evenly strided TRAINING strings of
 * epoch 0's pool, batches of 64, every pruned matrix's real inputs observed,
 * no update) when some tensor senses activations, then the one event. */
static int calibrate(run *r)
{
    const int64_t n_train = rn_corpus_size(r->corpus, RN_SET_TRAIN);
    const int64_t n = r->o->calib < n_train ? r->o->calib : n_train, B = 64;
    int64_t *ids = (int64_t *)malloc((size_t)n * sizeof *ids);
    if (!ids)
        return -1;
    for (int64_t i = 0; i < n; i++)
        ids[i] = i * n_train / n;
    int rc = 0;
    int64_t passes = 0;
    for (int64_t first = 0; first < n && rc == 0; first += B) {
        const int count = (int)(n - first < B ? n - first : B);
        int st = rn_corpus_batch_idx(r->corpus, RN_SET_TRAIN, 0, ids + first, count, &r->bt);
        if (st != 0) {
            fprintf(stderr, "rn_corpus_batch_idx: %s\n", rn_data_strerror(st));
            rc = -1;
            break;
        }
        rn_input in = input_of(&r->bt);
        const float *logits = NULL;
        if (rn_forward(&r->model, &in, r->ws, rp_observe, r->pr, &logits) != RN_OK) {
            fprintf(stderr, "calibration: rn_forward failed\n");
            rc = -1;
        }
        passes++;
        if (rc == 0 && rp_check(r->pr) != 0)
            rc = -1;
    }
    free(ids);
    rp_add_observed(r->pr, passes);
    r->calib_n = rc == 0 ? n : 0;
    return rc;
}

static int one_shot(run *r)
{
    if (rp_needs_activations(r->pr)) {
        const double t0 = now();
        if (calibrate(r) != 0)
            return -1;
        r->calib_s = now() - t0;
    }
    return rp_one_shot(r->pr);
}

static int setup(run *r)
{
    opts *o = r->o;
    r->method = sm_find(o->method);
    if (!r->method || !r->method->available) {
        fprintf(stderr, "unknown or unavailable method '%s' (--list-methods)\n", o->method);
        return -1;
    }
    if (rp_check_version() != 0 || open_corpus(r) != 0)
        return -1;
    o->model.in = rn_corpus_feat_dim(r->corpus);
    o->model.vocab = RN_VOCAB;
    o->model.blank = RN_BLANK;
    if (rn_model_init(&r->model, &o->model, o->seed) != RN_OK || rn_ws_create(&r->ws) != RN_OK) {
        fprintf(stderr, "model: bad size or out of memory\n");
        return -1;
    }
    if (o->load_dense) {
        char err[512] = "";
        uint64_t seed = 0;
        if (rn_dense_load(&r->model, o->load_dense, &seed, err, sizeof err) != 0) {
            fprintf(stderr, "--load-dense: %s\n", err);
            return -1;
        }
        printf("loaded %s (written by a seed-%llu run)%s\n", o->load_dense,
               (unsigned long long)seed, seed != o->seed ? "; NOTE: --seed differs" : "");
    }
    const int64_t n = rn_corpus_size(r->corpus, RN_SET_TRAIN);
    r->steps_per_epoch = (n + o->batch - 1) / o->batch;
    r->n_epochs = o->one_shot ? o->finetune_epochs : o->epochs;
    r->total_steps = r->steps_per_epoch * r->n_epochs;
    r->base_lr = o->one_shot ? o->finetune_lr : o->lr;
    r->decay_begin = o->decay_begin >= 0.0 ? o->decay_begin : o->end_frac;
    if (o->one_shot) /* fine-tune: cosine over all of its steps */
        r->decay_begin = 0.0;
    if (r->decay_begin >= 1.0)
        r->decay_begin = 0.999;
    r->valid_after_event = NAN;
    if (!r->method->prunes)
        return 0;
    rp_schedule s = {o->sparsity, o->begin_frac, o->end_frac, 3.0, o->events, r->total_steps,
                     0, 0, 0, o->one_shot};
    if (rp_create(&r->pr, r->method, &o->csp, &r->model, o->seed, o->threads, &s) != 0)
        return -1;
    if (o->one_shot) {
        printf("schedule: one-shot, one event at step 0 to %.3g from %lld calibration strings; "
               "fine-tune %lld epochs (%lld steps), lr cosine %g -> %g\n",
               o->sparsity, rp_needs_activations(r->pr) ? (long long)o->calib : 0LL,
               (long long)r->n_epochs, (long long)r->total_steps, o->finetune_lr,
               o->finetune_lr * o->lr_final);
        return one_shot(r);
    }
    printf("schedule: cubic 0 -> %.3g over steps %lld..%lld every %lld; lr %g, cosine decay "
           "to %gx from step %lld\n",
           o->sparsity, (long long)s.begin_step, (long long)s.end_step, (long long)s.frequency,
           o->lr, o->lr_final, (long long)llround(r->decay_begin * (double)r->total_steps));
    return 0;
}

/* ------------------------------------------------------------- report */

typedef struct totals {
    int64_t numel, nnz, dense_bytes, csr_bytes, bitmap_bytes;
    int mask_ok, export_ok;
} totals;

static void write_result(FILE *f, const run *r, const rn_wer *w, const rp_tensor_report *rep,
                         int nrep, const totals *tt, const rp_times *tm, double valid_wer)
{
    const opts *o = r->o;
    fprintf(f, "RESULT " RESULT_SCHEMA " {\"schema\":\"" RESULT_SCHEMA "\",\"method\":");
    json_str(f, o->method);
    fprintf(f, ",\"summary\":");
    json_str(f, r->method->summary);
    fprintf(f, ",\"prunes\":%d,\"is_csp\":%d,\"sparsity\":", r->method->prunes,
            r->method->is_csp);
    json_num(f, r->method->prunes ? o->sparsity : 0.0);
    fprintf(f, ",\"csp_overrides\":");
    json_str(f, o->csp.text);
    fprintf(f, ",\"seed\":%llu,\"epochs\":%lld,\"one_shot\":%s,\"dense_model\":",
            (unsigned long long)o->seed, (long long)r->n_epochs, o->one_shot ? "true" : "false");
    json_str(f, o->load_dense ? o->load_dense : "");
    fprintf(f, ",\"calib_n\":%lld,\"calib_seconds\":", (long long)r->calib_n);
    json_num(f, r->calib_s);
    fprintf(f, ",\"finetune_epochs\":%lld,\"finetune_lr\":",
            (long long)(o->one_shot ? o->finetune_epochs : 0));
    json_num(f, o->one_shot ? o->finetune_lr : 0.0);
    fprintf(f, ",\"valid_wer_after_event\":");
    json_num(f, r->valid_after_event);
    fprintf(f, ",\"params_fnv\":\"%016llx\"",
            (unsigned long long)rn_dense_params_fnv(&r->model));
    fprintf(f, ",\"eval\":");
    json_str(f, o->eval);
    fprintf(f, ",\"eval_set\":\"%s\",\"data\":\"%s\",\"data_description\":",
            o->validate ? "valid" : "test", rn_corpus_is_synthetic(r->corpus) ? "espeak" : "fsdd");
    json_str(f, rn_corpus_describe(r->corpus));
    const rn_config *c = &r->model.cfg;
    fprintf(f,
            ",\"model\":{\"in\":%lld,\"enc_layers\":%lld,\"enc_hidden\":%lld,\"embed\":%lld,"
            "\"pred_hidden\":%lld,\"joint\":%lld,\"vocab\":%lld,\"params\":%lld,"
            "\"prunable\":%lld}",
            (long long)c->in, (long long)c->enc_layers, (long long)c->enc_hidden,
            (long long)c->embed, (long long)c->pred_hidden, (long long)c->joint,
            (long long)c->vocab, (long long)rn_model_numel(&r->model, 0),
            (long long)rn_model_numel(&r->model, 1));
    fprintf(f, ",\"wer\":");
    json_num(f, rn_wer_percent(w));
    fprintf(f, ",\"string_acc\":");
    json_num(f, rn_string_acc_percent(w));
    fprintf(f, ",\"sub\":%lld,\"ins\":%lld,\"del\":%lld,\"ref_digits\":%lld,\"strings\":%lld",
            (long long)w->sub, (long long)w->ins, (long long)w->del, (long long)w->ref_labels,
            (long long)w->strings);
    fprintf(f, ",\"valid_wer\":");
    json_num(f, valid_wer);
    fprintf(f, ",\"train_seconds\":");
    json_num(f, r->train_s);
    fprintf(f, ",\"csp_step_seconds\":");
    json_num(f, tm->step_s);
    fprintf(f, ",\"csp_seconds\":");
    json_num(f, tm->step_s + tm->mask_s + tm->observe_s);
    fprintf(f, ",\"csp_share\":");
    json_num(f, r->train_s > 0 ? (tm->step_s + tm->mask_s + tm->observe_s) / r->train_s : 0.0);
    fprintf(f, ",\"events\":%lld,\"observed_passes\":%lld", (long long)tm->events,
            (long long)tm->observed);
    fprintf(f, ",\"prunable_numel\":%lld,\"nnz\":%lld,\"actual_sparsity\":",
            (long long)tt->numel, (long long)tt->nnz);
    json_num(f, tt->numel ? 1.0 - (double)tt->nnz / (double)tt->numel : 0.0);
    fprintf(f, ",\"dense_bytes\":%lld,\"csr_bytes\":%lld,\"bitmap_bytes\":%lld,\"mask_ok\":%s,"
               "\"export_ok\":%s,\"tensors\":[",
            (long long)tt->dense_bytes, (long long)tt->csr_bytes, (long long)tt->bitmap_bytes,
            tt->mask_ok ? "true" : "false", tt->export_ok ? "true" : "false");
    for (int k = 0; k < nrep; k++) {
        fprintf(f, "%s{\"name\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"nnz\":%lld,"
                   "\"csr_bytes\":%lld,\"bitmap_bytes\":%lld}",
                k ? "," : "", rep[k].name, (long long)rep[k].rows, (long long)rep[k].cols,
                (long long)rep[k].nnz, (long long)rep[k].csr_bytes,
                (long long)rep[k].bitmap_bytes);
    }
    fprintf(f, "],\"history\":[");
    for (int64_t e = 0; e < r->n_epochs; e++) {
        fprintf(f, "%s{\"epoch\":%lld,\"loss\":", e ? "," : "", (long long)e + 1);
        json_num(f, r->log[e].loss);
        fprintf(f, ",\"valid_wer\":");
        json_num(f, r->log[e].valid_wer);
        fprintf(f, ",\"lr\":");
        json_num(f, r->log[e].lr);
        fprintf(f, ",\"seconds\":");
        json_num(f, r->log[e].seconds);
        fprintf(f, "}");
    }
    fprintf(f, "],\"threads\":%d,\"libcsp\":\"%s\"}\n", o->threads, rp_version());
}

static int report(run *r, double valid_wer)
{
    rn_wer w;
    const double t0 = now();
    if (evaluate(r, r->o->validate ? RN_SET_VALID : RN_SET_TEST, &w) != 0) {
        fprintf(stderr, "evaluation failed\n");
        return -1;
    }
    r->eval_s += now() - t0;
    rp_tensor_report rep[RN_MAX_PARAMS];
    const int nrep = rp_report(r->pr, &r->model, rep, RN_MAX_PARAMS);
    if (nrep < 0) {
        fprintf(stderr, "export report failed\n");
        return -1;
    }
    totals tt = {0, 0, 0, 0, 0, 1, 1};
    for (int k = 0; k < nrep; k++) {
        tt.numel += rep[k].numel;
        tt.nnz += rep[k].nnz;
        tt.dense_bytes += 4 * rep[k].numel;
        tt.csr_bytes += rep[k].csr_bytes;
        tt.bitmap_bytes += rep[k].bitmap_bytes;
        tt.mask_ok &= rep[k].mask_ok;
        tt.export_ok &= rep[k].export_ok;
    }
    rp_times tm;
    rp_get_times(r->pr, &tm);
    const char *set = r->o->validate ? "validation" : "test";
    printf("%s WER %.2f %% (sub %lld ins %lld del %lld over %lld digits), string accuracy "
           "%.2f %% of %lld\n",
           set, rn_wer_percent(&w), (long long)w.sub, (long long)w.ins, (long long)w.del,
           (long long)w.ref_labels, rn_string_acc_percent(&w), (long long)w.strings);
    printf("prunable weights %lld, kept %lld (sparsity %.4f); %lld bytes dense, CSR %lld, "
           "bitmap %lld (libcsp exports%s)%s\n",
           (long long)tt.numel, (long long)tt.nnz,
           tt.numel ? 1.0 - (double)tt.nnz / (double)tt.numel : 0.0, (long long)tt.dense_bytes,
           (long long)tt.csr_bytes, (long long)tt.bitmap_bytes, r->pr ? "" : ": none, computed",
           tt.mask_ok && tt.export_ok ? "" : "  MASK/EXPORT CHECK FAILED");
    printf("training %.1f s; csp_step %.2f s (%.2f %%), %lld events; masking %.2f s, "
           "observing %.2f s\n",
           r->train_s, tm.step_s, r->train_s > 0 ? 100.0 * tm.step_s / r->train_s : 0.0,
           (long long)tm.events, tm.mask_s, tm.observe_s);
    write_result(stdout, r, &w, rep, nrep, &tt, &tm, valid_wer);
    return tt.mask_ok && tt.export_ok ? 0 : -1;
}

/* --infer: the trained (pruned) model decoded streaming, batch 1, dense and
 * sparse, on the set report() scored. */
static int infer_report(run *r)
{
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, NULL) != CSP_OK) {
        fprintf(stderr, "csp_context_create failed\n");
        return -1;
    }
    rn_infer_stats st;
    const rn_set set = r->o->validate ? RN_SET_VALID : RN_SET_TEST;
    const int rc = rn_infer_eval(&r->model, ctx, r->corpus, set, r->o->max_symbols, &st);
    csp_context_free(ctx);
    if (rc != 0 || st.utterances == 0)
        return -1;
    const double n = (double)st.utterances;
    printf("inference (streaming, batch 1, CPU time, %lld utterances, %.1f s of audio): "
           "dense %.3f ms per utterance (real-time factor %.4f), sparse %.3f ms (%.4f), "
           "speed-up %.2fx; prunable weights %lld B dense, %lld B sparse; identical "
           "hypotheses %lld/%lld; WER dense %.2f %%, sparse %.2f %%\n",
           (long long)st.utterances, st.audio_s, 1e3 * st.dense_s / n, st.dense_s / st.audio_s,
           1e3 * st.sparse_s / n, st.sparse_s / st.audio_s,
           st.sparse_s > 0 ? st.dense_s / st.sparse_s : 0.0, (long long)st.dense_bytes,
           (long long)st.sparse_bytes, (long long)st.same_hyps, (long long)st.utterances,
           rn_wer_percent(&st.dense_wer), rn_wer_percent(&st.sparse_wer));
    printf("INFER {\"utterances\":%lld,\"audio_s\":%.6g,\"dense_s\":%.6g,\"sparse_s\":%.6g,"
           "\"dense_bytes\":%lld,\"sparse_bytes\":%lld,\"same_hyps\":%lld,"
           "\"dense_wer\":%.6g,\"sparse_wer\":%.6g}\n",
           (long long)st.utterances, st.audio_s, st.dense_s, st.sparse_s,
           (long long)st.dense_bytes, (long long)st.sparse_bytes, (long long)st.same_hyps,
           rn_wer_percent(&st.dense_wer), rn_wer_percent(&st.sparse_wer));
    return 0;
}

static void list_methods(void)
{
    for (int i = 0; i < sm_count(); i++) {
        const sm_method *m = sm_at(i);
        printf("%-16s %s%s\n", m->name, m->summary, m->available ? "" : " (unavailable)");
    }
}

static int train(run *r)
{
    const opts *o = r->o;
    double valid_wer = NAN;
    const double t_start = now();
    if (o->one_shot || r->n_epochs == 0) {
        /* the loaded (and pruned) model before any fine-tuning */
        rn_wer w;
        const double t1 = now();
        if (evaluate(r, RN_SET_VALID, &w) != 0)
            return -1;
        r->eval_s += now() - t1;
        valid_wer = rn_wer_percent(&w);
        if (r->pr)
            r->valid_after_event = valid_wer;
        printf("valid WER %.2f %% %s\n", valid_wer,
               r->pr ? "right after the one-shot event" : "of the loaded model");
    }
    for (int64_t e = 0; e < r->n_epochs; e++) {
        const double t0 = now();
        if (run_epoch(r, (int)e, &r->log[e]) != 0)
            return -1;
        r->log[e].seconds = now() - t0;
        r->train_s += r->log[e].seconds;
        rn_wer w;
        const double t1 = now();
        r->log[e].valid_wer = NAN;
        if (!o->quiet || e + 1 == r->n_epochs) {
            if (evaluate(r, RN_SET_VALID, &w) != 0)
                return -1;
            r->log[e].valid_wer = valid_wer = rn_wer_percent(&w);
        }
        r->eval_s += now() - t1;
        const double elapsed = now() - t_start;
        if (!o->quiet)
            printf("epoch %3lld/%lld  loss %8.4f  valid WER %6.2f %%  lr %.2e  |g| %.2f  "
                   "%.1f s  elapsed %.0f s  remaining ~%.0f s\n",
                   (long long)e + 1, (long long)r->n_epochs, r->log[e].loss, r->log[e].valid_wer,
                   r->log[e].lr, r->log[e].grad_norm, r->log[e].seconds, elapsed,
                   elapsed / (double)(e + 1) * (double)(r->n_epochs - e - 1));
        fflush(stdout);
    }
    char err[512] = "";
    if (o->save_dense && rn_dense_save(&r->model, o->seed, o->save_dense, err, sizeof err) != 0) {
        fprintf(stderr, "--save-dense: %s\n", err);
        return -1;
    }
    if (o->save_dense)
        printf("saved the dense model to %s\n", o->save_dense);
    if (o->dump_params && rn_dense_save(&r->model, o->seed, o->dump_params, err, sizeof err)) {
        fprintf(stderr, "--dump-params: %s\n", err);
        return -1;
    }
    if (report(r, valid_wer) != 0)
        return -1;
    return o->infer ? infer_report(r) : 0;
}

int main(int argc, char **argv)
{
    static opts o;
    const int pr = parse(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    if (o.list_methods) {
        list_methods();
        return 0;
    }
    static run r;
    r.o = &o;
    int rc = setup(&r);
    if (rc == 0) {
        printf("rnnt_demo: method %s (%s), sparsity %.3g, seed %llu, %s %lld, libcsp %s\n",
               o.method, r.method->summary, r.method->prunes ? o.sparsity : 0.0,
               (unsigned long long)o.seed, o.one_shot ? "one-shot, fine-tune epochs" : "epochs", (long long)r.n_epochs, rp_version());
        printf("data: %s\n", rn_corpus_describe(r.corpus));
        printf("model: %lld parameters (%lld in pruned matrices); %lld steps of %lld\n",
               (long long)rn_model_numel(&r.model, 0), (long long)rn_model_numel(&r.model, 1),
               (long long)r.total_steps, (long long)o.batch);
        fflush(stdout);
        rc = train(&r);
    }
    rp_free(r.pr);
    rn_batch_free(&r.bt);
    rn_ws_free(r.ws);
    rn_model_free(&r.model);
    rn_corpus_close(r.corpus);
    free(r.grad);
    free(r.loss);
    return rc == 0 ? 0 : 1;
}
