/* speech_args.c - speech_demo's command line (see speech_demo.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "speech_demo.h"

void sd_usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  --method NAME        dense, gmp (row-balanced), gmp-tensor, csp (the library\n"
            "                       default), csp-gauss, csp-act, ...; --list-methods (gmp)\n"
            "  --csp K=V[,K=V...]   override options of the method: sensing (identity|\n"
            "                       gaussian|rademacher|activations), solver (omp|ista|fista),\n"
            "                       correction (none|full|blend), support (solver|magnitude),\n"
            "                       alpha, rho, damping, shrink,\n"
            "                       redraw (0|1), window (observe window), granularity\n"
            "                       (row|tensor), tensors (ih+hh+out: which matrices)\n"
            "  --sparsity S         final sparsity of W_ih, W_hh, W_out in [0, 1) (0.95)\n"
            "  --begin F --end F    cubic ramp from F*steps to F*steps (0.1, 0.6)\n"
            "  --frequency N        steps between pruning events; 0 = (end-begin)/events (0)\n"
            "  --events N           events wanted when --frequency is 0 (50)\n"
            "  --exponent P         schedule exponent (3)\n"
            "  --initial-sparsity S sparsity at the first event (0)\n"
            "  --recipe NAME        masked-decay (the default: gradient masking and the\n"
            "                       learning-rate decay below) or old (constant learning\n"
            "                       rate, unmasked gradients); later flags change it\n"
            "  --lr-decay KIND      none, linear, cosine or exp (the recipe's: cosine)\n"
            "  --lr-decay-begin F   decay from F*steps (the recipe's: 0.8; with --lr-decay\n"
            "                       and no --lr-decay-begin: the ramp end, --end)\n"
            "  --lr-decay-end F     to F*steps (1)\n"
            "  --lr-final F         learning-rate factor reached at the end (0.05)\n"
            "  --no-mask-gradients  do not mask pruned weights' gradients before clipping\n"
            "  --mask-gradients     mask them (the default)\n"
            "  --one-shot           prune the --load-dense model once (step 0) from the\n"
            "                       activations of --calib training utterances, then\n"
            "                       fine-tune for --finetune-epochs (0: none)\n"
            "  --calib N            calibration utterances, evenly strided over the\n"
            "                       training side (256)\n"
            "  --finetune-epochs N  epochs of fine-tuning after a one-shot event (0)\n"
            "  --save-dense FILE    after a dense run, write the model's parameters\n"
            "  --load-dense FILE    start from these parameters (needs --one-shot)\n"
            "  --seed S             model init, shuffling and libcsp seed (1)\n"
            "  --epochs N           training epochs (20)\n"
            "  --threads N          libcsp worker threads (1); BLAS: OPENBLAS_NUM_THREADS\n"
            "  --data DIR           data directory (else $CSP_SPEECH_DATA, else\n"
            "                       <repo>/../shared/data/fsdd, else espeak-ng fallback)\n"
            "  --eval E             official | speaker:NAME (leave NAME out) (official)\n"
            "  --validate           evaluate on a validation split of E's training side\n"
            "                       (official: recordings 5-9; speaker:NAME: the next\n"
            "                       speaker); the test utterances are not used at all\n"
            "  --hidden H --batch B --lr LR --bucket K   trainer (128, 32, 1e-3, 8)\n"
            "  --subset N           at most N train and N test utterances (0 = all)\n"
            "  --history N          with --quiet, evaluate after the last N epochs (5)\n"
            "  --espeak-cache DIR   fallback cache (else $CSP_SPEECH_CACHE, else the build\n"
            "                       directory's)\n"
            "  --espeak-takes N     fallback takes per digit and voice (50)\n"
            "  --no-generate        never synthesise the fallback\n"
            "  --list-methods       print the methods (METHOD {json} lines) and exit\n"
            "  --print-data         resolve the data (generate the fallback if needed),\n"
            "                       print DATA {json} and exit\n"
            "  --quiet              no per-epoch lines (and evaluation only after the\n"
            "                       last --history epochs)\n",
            prog);
}

const char *sd_lr_decay_name(int kind)
{
    switch (kind) {
    case SP_LR_CONSTANT: return "none";
    case SP_LR_LINEAR: return "linear";
    case SP_LR_COSINE: return "cosine";
    case SP_LR_EXP: return "exp";
    default: return "?";
    }
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = (int64_t)x;
    return 0;
}

/* The default recipe ("masked-decay", chosen on validation splits by
 * recipe_study.py: docs/results/speech-recipe.md) or the one of the results
 * before it ("old"). */
static int set_recipe(demo_options *o, const char *name)
{
    if (!strcmp(name, "masked-decay")) {
        o->lr_decay = SP_LR_COSINE;
        o->lr_decay_begin = 0.8;
        o->lr_decay_end = 1.0;
        o->lr_final = 0.05;
        o->mask_gradients = 1;
    } else if (!strcmp(name, "old")) {
        o->lr_decay = SP_LR_CONSTANT;
        o->mask_gradients = 0;
    } else {
        return -1;
    }
    o->recipe = name;
    return 0;
}

static void defaults(demo_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = "gmp";
    o->sparsity = 0.95;
    o->begin_frac = 0.1;
    o->end_frac = 0.6;
    o->exponent = 3.0;
    o->events = 50;
    o->epochs = 20;
    o->history = 5;
    o->threads = 1;
    o->eval = "official";
    o->espeak_takes = 50;
    o->calib = 256;
    sm_overrides_init(&o->csp);
    sp_train_options_init(&o->train);
    set_recipe(o, "masked-decay");
}

/* Flags without a value: 1 when @p a is one (applied), else 0. */
static int apply_switch(demo_options *o, const char *a)
{
    if (!strcmp(a, "--list-methods"))
        o->list_methods = 1;
    else if (!strcmp(a, "--print-data"))
        o->print_data = 1;
    else if (!strcmp(a, "--no-generate"))
        o->no_generate = 1;
    else if (!strcmp(a, "--quiet"))
        o->quiet = 1;
    else if (!strcmp(a, "--validate"))
        o->validate = 1;
    else if (!strcmp(a, "--no-mask-gradients"))
        o->mask_gradients = 0;
    else if (!strcmp(a, "--mask-gradients"))
        o->mask_gradients = 1;
    else if (!strcmp(a, "--one-shot"))
        o->one_shot = 1;
    else
        return 0;
    return 1;
}

static int parse_decay(const char *v, int *kind)
{
    static const char *const names[] = {"none", "linear", "cosine", "exp"};
    for (int k = 0; k < 4; k++)
        if (!strcmp(v, names[k])) {
            *kind = k; /* SP_LR_CONSTANT .. SP_LR_EXP */
            return 0;
        }
    return -1;
}

/* A flag with value @p v: 0 applied, 1 bad value, -1 unknown flag. */
static int apply_value(demo_options *o, const char *a, const char *v)
{
    int64_t x = 0;
    double d = 0.0;
    sp_train_options *t = &o->train;
    if (!strcmp(a, "--method"))
        o->method = v;
    else if (!strcmp(a, "--data"))
        o->data = v;
    else if (!strcmp(a, "--eval"))
        o->eval = v;
    else if (!strcmp(a, "--save-dense"))
        o->save_dense = v;
    else if (!strcmp(a, "--load-dense"))
        o->load_dense = v;
    else if (!strcmp(a, "--calib"))
        return parse_i64(v, &o->calib) || o->calib < 1;
    else if (!strcmp(a, "--finetune-epochs"))
        return parse_i64(v, &o->finetune_epochs) || o->finetune_epochs < 0;
    else if (!strcmp(a, "--espeak-cache"))
        o->espeak_cache = v;
    else if (!strcmp(a, "--recipe"))
        return set_recipe(o, v) ? 1 : 0;
    else if (!strcmp(a, "--lr-decay"))
        return parse_decay(v, &o->lr_decay) ? 1 : (o->decay_given = 1, 0);
    else if (!strcmp(a, "--sparsity"))
        return parse_double(v, &o->sparsity) ? 1 : 0;
    else if (!strcmp(a, "--begin"))
        return parse_double(v, &o->begin_frac) ? 1 : 0;
    else if (!strcmp(a, "--end"))
        return parse_double(v, &o->end_frac) ? 1 : 0;
    else if (!strcmp(a, "--exponent"))
        return parse_double(v, &o->exponent) ? 1 : 0;
    else if (!strcmp(a, "--initial-sparsity"))
        return parse_double(v, &o->initial_sparsity) ? 1 : 0;
    else if (!strcmp(a, "--lr-decay-begin"))
        return parse_double(v, &o->lr_decay_begin) || o->lr_decay_begin < 0
                   ? 1
                   : (o->decay_begin_given = 1, 0);
    else if (!strcmp(a, "--lr-decay-end"))
        return parse_double(v, &o->lr_decay_end) ? 1 : 0;
    else if (!strcmp(a, "--lr-final"))
        return parse_double(v, &o->lr_final) || !(o->lr_final > 0 && o->lr_final <= 1) ? 1 : 0;
    else if (!strcmp(a, "--lr"))
        return parse_double(v, &d) || d <= 0 ? 1 : (t->adam.lr = (float)d, 0);
    else if (!strcmp(a, "--frequency"))
        return parse_i64(v, &o->frequency) || o->frequency < 0;
    else if (!strcmp(a, "--events"))
        return parse_i64(v, &o->events) || o->events < 1;
    else if (!strcmp(a, "--epochs"))
        return parse_i64(v, &o->epochs) || o->epochs < 1;
    else if (!strcmp(a, "--subset"))
        return parse_i64(v, &o->subset) || o->subset < 0;
    else if (!strcmp(a, "--history"))
        return parse_i64(v, &o->history) || o->history < 0;
    else if (!strcmp(a, "--espeak-takes"))
        return parse_i64(v, &o->espeak_takes) || o->espeak_takes < 5;
    else if (!strcmp(a, "--hidden"))
        return parse_i64(v, &t->hidden) || t->hidden < 1;
    else if (!strcmp(a, "--batch"))
        return parse_i64(v, &t->batch) || t->batch < 1;
    else if (!strcmp(a, "--bucket"))
        return parse_i64(v, &t->bucket) || t->bucket < 0;
    else if (!strcmp(a, "--seed"))
        return parse_i64(v, &x) || x < 0 ? 1 : (t->seed = (uint64_t)x, 0);
    else if (!strcmp(a, "--threads"))
        return parse_i64(v, &x) || x < 1 || x > CSP_MAX_THREADS ? 1 : (o->threads = (int32_t)x, 0);
    else
        return -1;
    return 0;
}

static int check_ranges(const demo_options *o, const char *prog)
{
    const double decay_begin = o->lr_decay_begin < 0 ? o->end_frac : o->lr_decay_begin;
    if (!(o->sparsity >= 0.0 && o->sparsity < 1.0) ||
        !(o->initial_sparsity >= 0.0 && o->initial_sparsity <= o->sparsity) ||
        !(o->begin_frac >= 0.0 && o->begin_frac < o->end_frac && o->end_frac <= 1.0) ||
        !(o->exponent > 0.0)) {
        fprintf(stderr, "%s: need 0 <= initial-sparsity <= sparsity < 1, "
                        "0 <= begin < end <= 1, exponent > 0\n", prog);
        return -1;
    }
    if (o->one_shot != (o->load_dense != NULL)) {
        fprintf(stderr, "%s: --one-shot and --load-dense go together\n", prog);
        return -1;
    }
    if (o->save_dense && (o->one_shot || strcmp(o->method, "dense") != 0)) {
        fprintf(stderr, "%s: --save-dense needs --method dense\n", prog);
        return -1;
    }
    if (o->lr_decay != SP_LR_CONSTANT &&
        !(decay_begin < o->lr_decay_end && o->lr_decay_end <= 1.0)) {
        fprintf(stderr, "%s: need lr-decay-begin (%g) < lr-decay-end (%g) <= 1\n", prog,
                decay_begin, o->lr_decay_end);
        return -1;
    }
    return 0;
}

int sd_parse_args(int argc, char **argv, demo_options *o)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            sd_usage(stdout, argv[0]);
            return 1;
        }
        if (apply_switch(o, a))
            continue;
        if (!strcmp(a, "--csp") && i + 1 < argc) {
            char err[256];
            if (sm_parse_overrides(argv[++i], &o->csp, err, sizeof err) != 0) {
                fprintf(stderr, "%s: %s\n", argv[0], err);
                return -1;
            }
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value (or is unknown)\n", argv[0], a);
            return -1;
        }
        const char *v = argv[++i];
        const int rc = apply_value(o, a, v);
        if (rc) {
            if (rc < 0)
                fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
            else
                fprintf(stderr, "%s: bad value for %s: %s\n", argv[0], a, v);
            return -1;
        }
    }
    /* A decay asked for by kind starts where the pruning ramp ends, unless
     * its start is given too; a recipe's decay starts where the recipe says. */
    if (o->decay_given && !o->decay_begin_given)
        o->lr_decay_begin = -1.0;
    return check_ranges(o, argv[0]);
}
