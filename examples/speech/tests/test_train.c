/* test_train.c - training driver on an in-memory synthetic data set:
 * hook contract (after_step numbering, observe shapes/order/zero h_{-1}),
 * in-place edits by the host persisting, determinism per seed, learning,
 * evaluation independent of eval batch size, Adam + clipping against a
 * double-precision reference of the PyTorch formulas, the learning-rate
 * decay against closed forms, and the before_update hook: gradient edits
 * made there are what clipping and the decayed Adam update see. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../rng.h"
#include "../train.h"

#include "check.h"

#define NU 300

/* Class c: frames = noise + pattern with band c*4..c*4+3 raised. */
static void make_dataset(sp_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    sp_rng r;
    sp_rng_seed(&r, 99);
    ds->utts = calloc(NU, sizeof *ds->utts);
    int64_t lens[NU], tot = 0;
    for (int i = 0; i < NU; i++) {
        lens[i] = 5 + (int64_t)sp_rng_below(&r, 36);
        tot += lens[i];
    }
    ds->pool = malloc((size_t)tot * SP_FEAT_NMEL * sizeof(float));
    ds->n = NU;
    ds->n_speakers = 3;
    strcpy(ds->speakers[0], "a");
    strcpy(ds->speakers[1], "b");
    strcpy(ds->speakers[2], "c");
    int64_t off = 0;
    for (int i = 0; i < NU; i++) {
        sp_utt *u = &ds->utts[i];
        u->label = i % 10;
        u->speaker = (i / 10) % 3;
        u->index = i / 30;
        u->frames = lens[i];
        u->samples = 200 + 80 * (lens[i] - 1);
        snprintf(u->name, sizeof u->name, "%d_%s_%d.wav", u->label,
                 ds->speakers[u->speaker], u->index);
        u->feat = ds->pool + off * SP_FEAT_NMEL;
        for (int64_t t = 0; t < lens[i]; t++)
            for (int m = 0; m < SP_FEAT_NMEL; m++) {
                float v = 3.0f * sp_rng_uniform(&r) - 10.0f;
                if (m / 4 == u->label && t >= lens[i] / 3)
                    v += 2.0f;
                u->feat[t * SP_FEAT_NMEL + m] = v;
            }
        off += lens[i];
        if (lens[i] > ds->max_frames)
            ds->max_frames = lens[i];
    }
    ds->total_frames = tot;
}

typedef struct {
    int64_t calls, next_step, bad_step;
    int64_t obs_calls, obs_bad, ih_rows_total, last_ih_rows, last_hh_rows;
    int expect_which;
    int64_t hidden;
    sp_trainer *tr; /* for in-place edits */
    int mask;       /* zero W_hh[0..9] and their moments after each step */
} hooks;

static void after_step(void *user, int64_t step)
{
    hooks *h = user;
    if (step != h->next_step)
        h->bad_step++;
    h->next_step = step + 1;
    h->calls++;
    if (h->mask) {
        sp_param *p = &sp_trainer_model(h->tr)->p[SP_P_W_HH];
        for (int j = 0; j < 10; j++)
            p->data[j] = p->exp_avg[j] = p->exp_avg_sq[j] = 0.0f;
    }
}

static void observe(void *user, int which, const float *x, int64_t rows,
                    int64_t cols)
{
    hooks *h = user;
    h->obs_calls++;
    if (which != h->expect_which || !x || rows < 1)
        h->obs_bad++;
    if (which == SP_P_W_IH) {
        if (cols != SP_FEAT_NMEL)
            h->obs_bad++;
        h->last_ih_rows = rows;
        h->ih_rows_total += rows;
        h->expect_which = SP_P_W_HH;
    } else if (which == SP_P_W_HH) {
        if (cols != h->hidden || rows != h->last_ih_rows)
            h->obs_bad++;
        h->last_hh_rows = rows;
        h->expect_which = SP_P_W_OUT;
    } else if (which == SP_P_W_OUT) {
        if (cols != h->hidden || rows > 32)
            h->obs_bad++;
        /* The first `rows` rows of the W_hh input are h_{-1} = 0; checked
         * via the pooled vectors being finite and non-zero instead. */
        for (int64_t i = 0; i < rows * cols; i++)
            if (!isfinite(x[i]))
                h->obs_bad++;
        h->expect_which = SP_P_W_IH;
    }
}

static int64_t zero_rows_seen;
static void observe_zero(void *user, int which, const float *x, int64_t rows,
                         int64_t cols)
{
    (void)user;
    if (which != SP_P_W_HH)
        return;
    /* Count leading all-zero rows: should be the batch size. */
    int64_t r = 0;
    for (; r < rows; r++) {
        int z = 1;
        for (int64_t c = 0; c < cols; c++)
            z &= x[r * cols + c] == 0.0f;
        if (!z)
            break;
    }
    zero_rows_seen += r;
}

static void test_adam(void)
{
    sp_model m;
    sp_model_init(&m, 2, 1, 2, 5);
    sp_adam_options o;
    sp_adam_options_init(&o);
    o.clip = 0.5f;
    int64_t total = 0;
    for (int k = 0; k < SP_NPARAMS; k++)
        total += m.p[k].size;
    double *w = malloc((size_t)total * sizeof *w), *ma = calloc((size_t)total, sizeof *ma),
           *va = calloc((size_t)total, sizeof *va), *g = malloc((size_t)total * sizeof *g);
    int64_t q = 0;
    for (int k = 0; k < SP_NPARAMS; k++)
        for (int64_t j = 0; j < m.p[k].size; j++)
            w[q++] = m.p[k].data[j];
    double worst = 0.0;
    for (int step = 1; step <= 3; step++) {
        q = 0;
        double norm2 = 0.0;
        for (int k = 0; k < SP_NPARAMS; k++)
            for (int64_t j = 0; j < m.p[k].size; j++) {
                float gv = (float)((q % 3) - 1) * 0.3f * (float)step + 0.01f * (float)q;
                m.p[k].grad[j] = gv;
                g[q++] = gv;
                norm2 += (double)gv * gv;
            }
        double coef = 0.5 / (sqrt(norm2) + 1e-6);
        double rn = sp_model_adam_step(&m, &o);
        if (fabs(rn - sqrt(norm2)) > 1e-9 * sqrt(norm2))
            worst = 1.0;
        for (q = 0; q < total; q++) {
            double gq = coef < 1.0 ? g[q] * coef : g[q];
            ma[q] = 0.9 * ma[q] + 0.1 * gq;
            va[q] = 0.999 * va[q] + 0.001 * gq * gq;
            double mh = ma[q] / (1.0 - pow(0.9, step));
            double den = sqrt(va[q]) / sqrt(1.0 - pow(0.999, step)) + 1e-8;
            w[q] -= 1e-3 * mh / den;
        }
        q = 0;
        for (int k = 0; k < SP_NPARAMS; k++)
            for (int64_t j = 0; j < m.p[k].size; j++, q++) {
                double e = fabs(m.p[k].data[j] - w[q]);
                if (e > worst)
                    worst = e;
            }
    }
    CHECK(worst < 1e-6, "Adam vs double reference: max err %.3g", worst);
    CHECK(m.adam_step == 3, "adam_step counter");
    free(w);
    free(ma);
    free(va);
    free(g);
    sp_model_free(&m);
}

#define PI 3.14159265358979323846

/* sp_lr_factor against other closed forms of the same curves, at the
 * boundaries, the midpoint and random points. */
static void test_lr_factor(uint64_t seed)
{
    CHECK(sp_lr_factor(NULL, 5) == 1.0, "NULL schedule");
    sp_lr_schedule s = {SP_LR_CONSTANT, 0, 0, 1.0};
    CHECK(sp_lr_factor(&s, 12345) == 1.0 && sp_lr_schedule_valid(&s), "constant");
    sp_rng r;
    sp_rng_seed(&r, seed);
    double worst = 0.0;
    int bad_edges = 0, bad_mono = 0;
    for (int trial = 0; trial < 300; trial++) {
        s.kind = 1 + trial % 3;
        s.begin = (int64_t)sp_rng_below(&r, 1000);
        s.end = s.begin + 1 + (int64_t)sp_rng_below(&r, 2000);
        s.final_factor = 0.001 + 0.998 * sp_rng_uniform(&r);
        const double f = s.final_factor;
        bad_edges += sp_lr_factor(&s, s.begin) != 1.0 || sp_lr_factor(&s, 0) != 1.0 ||
                     sp_lr_factor(&s, s.end) != f || sp_lr_factor(&s, s.end + 77) != f;
        double prev = 1.0;
        for (int k = 0; k < 50; k++) {
            const int64_t t = s.begin + (int64_t)sp_rng_below(&r, (uint64_t)(s.end - s.begin + 1));
            const double u = (double)(t - s.begin) / (double)(s.end - s.begin);
            double ref;
            if (s.kind == SP_LR_LINEAR)
                ref = (1.0 - u) + u * f;
            else if (s.kind == SP_LR_COSINE)
                ref = f + (1.0 - f) * cos(0.5 * PI * u) * cos(0.5 * PI * u);
            else
                ref = exp(u * log(f));
            const double e = fabs(sp_lr_factor(&s, t) - ref);
            worst = e > worst ? e : worst;
        }
        for (int64_t t = s.begin; t <= s.end; t += 1 + (s.end - s.begin) / 64) {
            const double v = sp_lr_factor(&s, t);
            bad_mono += v > prev || v < f;
            prev = v;
        }
        if (s.end - s.begin == 2) { /* exact midpoints */
            const double mid = sp_lr_factor(&s, s.begin + 1);
            const double want = s.kind == SP_LR_EXP ? sqrt(f) : 0.5 * (1.0 + f);
            worst = fabs(mid - want) > worst ? fabs(mid - want) : worst;
        }
    }
    CHECK(worst < 1e-12, "lr factor vs closed forms: max err %.3g (seed %llu)", worst,
          (unsigned long long)seed);
    CHECK(!bad_edges && !bad_mono, "lr factor: %d bad boundaries, %d non-monotone", bad_edges,
          bad_mono);
    sp_lr_schedule bad[] = {{7, 0, 10, 0.5},          {SP_LR_LINEAR, 10, 10, 0.5},
                            {SP_LR_COSINE, -1, 10, 0.5}, {SP_LR_EXP, 0, 10, 0.0},
                            {SP_LR_LINEAR, 0, 10, 1.5}, {SP_LR_LINEAR, 0, 10, NAN}};
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refused += !sp_lr_schedule_valid(&bad[i]) && sp_lr_factor(&bad[i], 5) == 1.0;
    CHECK(refused == (int)(sizeof bad / sizeof *bad), "invalid schedules refused: %d", refused);
}

/* The before_update hook: at step `probe` it zeroes the gradients of
 * W_hh[0..9] and snapshots the whole model; after_step then compares the
 * update with a double reference (global-norm clipping over the edited
 * gradients, Adam at the decayed learning rate). */
typedef struct {
    sp_trainer *tr;
    int64_t probe, before_calls, bad_order, after_calls;
    int64_t total;
    double *w, *g, *m1, *m2;
    sp_adam_options adam;
    sp_lr_schedule decay;
    int64_t adam_t;
    double worst;
    int done;
} probe_hooks;

typedef void (*probe_fn)(probe_hooks *, int64_t, const sp_param *, int64_t);

static void probe_each(const sp_model *m, probe_fn fn, probe_hooks *h)
{
    int64_t q = 0;
    for (int k = 0; k < SP_NPARAMS; k++) {
        for (int64_t j = 0; j < m->p[k].size; j++)
            fn(h, q + j, &m->p[k], j);
        q += m->p[k].size;
    }
}

static void snap(probe_hooks *h, int64_t q, const sp_param *p, int64_t j)
{
    h->w[q] = p->data[j];
    h->g[q] = p->grad[j];
    h->m1[q] = p->exp_avg[j];
    h->m2[q] = p->exp_avg_sq[j];
}

static void probe_before(void *user, int64_t step)
{
    probe_hooks *h = user;
    h->bad_order += step != h->before_calls || h->after_calls != step;
    h->before_calls++;
    if (step != h->probe)
        return;
    sp_model *m = sp_trainer_model(h->tr);
    for (int j = 0; j < 10; j++)
        m->p[SP_P_W_HH].grad[j] = 0.0f;
    h->adam_t = m->adam_step + 1;
    probe_each(m, snap, h);
}

static void compare_update(probe_hooks *h, int64_t q, const sp_param *p, int64_t j)
{
    const double c = h->g[h->total], t = (double)h->adam_t; /* c: clip coefficient */
    const double lr = h->adam.lr * sp_lr_factor(&h->decay, h->probe);
    const double gq = h->g[q] * c;
    const double m1 = 0.9 * h->m1[q] + 0.1 * gq, m2 = 0.999 * h->m2[q] + 0.001 * gq * gq;
    const double den = sqrt(m2) / sqrt(1.0 - pow(0.999, t)) + 1e-8;
    const double w = h->w[q] - lr * (m1 / (1.0 - pow(0.9, t))) / den;
    const double e = fabs(w - p->data[j]) / (lr + 1e-12);
    h->worst = e > h->worst ? e : h->worst;
}

static void probe_after(void *user, int64_t step)
{
    probe_hooks *h = user;
    h->after_calls++;
    if (step != h->probe)
        return;
    double n2 = 0.0;
    for (int64_t q = 0; q < h->total; q++)
        n2 += h->g[q] * h->g[q];
    const double coef = h->adam.clip / (sqrt(n2) + 1e-6);
    h->g[h->total] = coef < 1.0 ? coef : 1.0;
    probe_each(sp_trainer_model(h->tr), compare_update, h);
    h->done = 1;
}

static void test_before_update(const sp_dataset *ds, const int64_t *train, int64_t ntr)
{
    sp_train_options o;
    sp_train_options_init(&o);
    o.hidden = 8;
    o.seed = 11;
    o.adam.lr = 5e-3f;
    o.adam.clip = 0.05f; /* small: every update is clipped */
    const int64_t spe = (ntr + o.batch - 1) / o.batch;
    o.lr_decay = (sp_lr_schedule){SP_LR_COSINE, 2, 2 * spe - 1, 0.1};
    probe_hooks h;
    memset(&h, 0, sizeof h);
    h.probe = spe + 2; /* inside the decay, in the second epoch */
    h.adam = o.adam;
    h.decay = o.lr_decay;
    o.before_update = probe_before;
    o.after_step = probe_after;
    o.user = &h;
    CHECK(sp_trainer_create(&h.tr, &o, ds, train, ntr) == SP_TRAIN_OK, "create (probe)");
    sp_model *m = sp_trainer_model(h.tr);
    for (int k = 0; k < SP_NPARAMS; k++)
        h.total += m->p[k].size;
    h.w = malloc((size_t)h.total * sizeof *h.w);
    h.g = malloc((size_t)(h.total + 1) * sizeof *h.g);
    h.m1 = malloc((size_t)h.total * sizeof *h.m1);
    h.m2 = malloc((size_t)h.total * sizeof *h.m2);
    sp_epoch_stats st;
    sp_trainer_run_epoch(h.tr, &st);
    CHECK(st.clipped == spe && st.grad_norm > 0.05, "clipped %lld of %lld, mean norm %.3g",
          (long long)st.clipped, (long long)spe, st.grad_norm);
    sp_trainer_run_epoch(h.tr, &st);
    CHECK(h.before_calls == 2 * spe && h.after_calls == 2 * spe && !h.bad_order,
          "before_update: %lld calls, %lld out of order", (long long)h.before_calls,
          (long long)h.bad_order);
    CHECK(h.done && h.worst < 2e-3, "update after before_update edits vs reference: %.3g of lr",
          h.worst);
    const float last_lr = (float)((double)o.adam.lr * sp_lr_factor(&o.lr_decay, 2 * spe - 1));
    CHECK(st.lr == last_lr && fabsf(last_lr - 5e-4f) < 1e-9f, "lr of the last update %.9g",
          st.lr);
    sp_trainer_free(h.tr);
    /* Clipping off: nothing counted. */
    o.adam.clip = 0.0f;
    o.before_update = NULL;
    o.after_step = NULL;
    sp_trainer *t2;
    CHECK(sp_trainer_create(&t2, &o, ds, train, ntr) == SP_TRAIN_OK, "create (no clip)");
    sp_trainer_run_epoch(t2, &st);
    CHECK(st.clipped == 0, "clip off: %lld clipped", (long long)st.clipped);
    sp_trainer_free(t2);
    o.lr_decay.end = o.lr_decay.begin;
    CHECK(sp_trainer_create(&t2, &o, ds, train, ntr) == SP_TRAIN_E_INVALID && !t2,
          "invalid decay refused");
    free(h.w);
    free(h.g);
    free(h.m1);
    free(h.m2);
}

static int same_weights(sp_trainer *a, sp_trainer *b)
{
    sp_model *ma = sp_trainer_model(a), *mb = sp_trainer_model(b);
    for (int k = 0; k < SP_NPARAMS; k++)
        if (memcmp(ma->p[k].data, mb->p[k].data, (size_t)ma->p[k].size * sizeof(float)))
            return 0;
    return 1;
}

int main(void)
{
    const uint64_t seed = (uint64_t)time(NULL);
    printf("test_train: seed %llu\n", (unsigned long long)seed);
    test_adam();
    test_lr_factor(seed);
    sp_dataset ds;
    make_dataset(&ds);
    int64_t train[NU], test[NU], ntr = 0, nte = 0, train_frames = 0;
    for (int64_t i = 0; i < NU; i++) {
        if (ds.utts[i].index < 2) {
            test[nte++] = i;
        } else {
            train[ntr++] = i;
            train_frames += ds.utts[i].frames;
        }
    }
    sp_train_options opt;
    sp_train_options_init(&opt);
    CHECK(opt.hidden == 128 && opt.batch == 32 && opt.seed == 1 &&
              opt.adam.lr == 1e-3f && opt.adam.clip == 5.0f && !opt.after_step &&
              !opt.observe && !opt.before_update && opt.lr_decay.kind == SP_LR_CONSTANT,
          "defaults");
    opt.hidden = 16;
    opt.seed = 5;
    opt.adam.lr = 1e-2f;
    hooks h;
    memset(&h, 0, sizeof h);
    h.hidden = opt.hidden;
    h.expect_which = SP_P_W_IH;
    opt.after_step = after_step;
    opt.observe = observe;
    opt.user = &h;
    sp_trainer *tr, *tr2, *tr3;
    CHECK(sp_trainer_create(&tr, &opt, &ds, train, ntr) == SP_TRAIN_OK, "create");
    h.tr = tr;
    CHECK(sp_trainer_steps_per_epoch(tr) == (ntr + 31) / 32, "steps/epoch");
    sp_epoch_stats st;
    sp_eval_result ev0, ev;
    sp_trainer_evaluate(tr, train, ntr, &ev0);
    CHECK(sp_trainer_run_epoch(tr, &st) == SP_TRAIN_OK, "epoch");
    CHECK(h.calls == sp_trainer_steps_per_epoch(tr) && h.bad_step == 0 &&
              st.steps == h.calls && sp_trainer_steps_done(tr) == h.calls,
          "after_step: %lld calls, %lld out of order", (long long)h.calls,
          (long long)h.bad_step);
    CHECK(h.obs_calls == 3 * h.calls && h.obs_bad == 0 &&
              h.ih_rows_total == train_frames,
          "observe: %lld calls, %lld bad, %lld rows of %lld frames",
          (long long)h.obs_calls, (long long)h.obs_bad,
          (long long)h.ih_rows_total, (long long)train_frames);

    /* Leading zero rows of the W_hh input = one h_{-1} per utterance. */
    zero_rows_seen = 0;
    sp_train_options oz = opt;
    oz.observe = observe_zero;
    oz.after_step = NULL;
    CHECK(sp_trainer_create(&tr3, &oz, &ds, train, ntr) == SP_TRAIN_OK, "create 3");
    sp_trainer_run_epoch(tr3, NULL);
    CHECK(zero_rows_seen == ntr, "h_{-1} rows: %lld vs %lld",
          (long long)zero_rows_seen, (long long)ntr);
    sp_trainer_free(tr3);

    /* Host edits in after_step persist (a mask on W_hh and its moments). */
    h.mask = 1;
    for (int e = 0; e < 9; e++)
        sp_trainer_run_epoch(tr, &st);
    sp_param *whh = &sp_trainer_model(tr)->p[SP_P_W_HH];
    int masked = 1;
    for (int j = 0; j < 10; j++)
        masked &= whh->data[j] == 0.0f && whh->exp_avg[j] == 0.0f &&
                  whh->exp_avg_sq[j] == 0.0f;
    CHECK(masked, "masked weights stay zero");
    sp_trainer_evaluate(tr, train, ntr, &ev);
    printf("synthetic: train loss %.4f -> %.4f, acc %.3f, running acc %.3f\n",
           ev0.loss, ev.loss, ev.acc, st.acc);
    CHECK(ev.loss < 0.5 * ev0.loss && ev.acc > 0.9, "learns: loss %.3f acc %.3f",
          ev.loss, ev.acc);
    sp_eval_result e1, e2;
    sp_trainer_evaluate(tr, test, nte, &e1);
    /* Evaluation does not depend on the evaluation batch size. */
    sp_train_options o2 = opt;
    o2.after_step = NULL;
    o2.observe = NULL;
    o2.eval_batch = 7;
    memset(&h, 0, sizeof h);
    CHECK(sp_trainer_create(&tr2, &o2, &ds, train, ntr) == SP_TRAIN_OK, "create 2");
    for (int k = 0; k < SP_NPARAMS; k++)
        memcpy(sp_trainer_model(tr2)->p[k].data, sp_trainer_model(tr)->p[k].data,
               (size_t)sp_trainer_model(tr)->p[k].size * sizeof(float));
    sp_trainer_evaluate(tr2, test, nte, &e2);
    CHECK(e1.correct == e2.correct && fabs(e1.loss - e2.loss) < 1e-5,
          "eval batch 128 vs 7: %lld/%lld, %.7f/%.7f", (long long)e1.correct,
          (long long)e2.correct, e1.loss, e2.loss);
    sp_trainer_free(tr2);

    /* Determinism: same seed -> identical weights; other seed differs. */
    sp_train_options od = opt;
    od.after_step = NULL;
    od.observe = NULL;
    sp_trainer *a, *b, *c;
    sp_trainer_create(&a, &od, &ds, train, ntr);
    sp_trainer_create(&b, &od, &ds, train, ntr);
    od.seed = 6;
    sp_trainer_create(&c, &od, &ds, train, ntr);
    for (int e = 0; e < 2; e++) {
        sp_trainer_run_epoch(a, NULL);
        sp_trainer_run_epoch(b, NULL);
        sp_trainer_run_epoch(c, NULL);
    }
    CHECK(same_weights(a, b), "same seed, same weights");
    CHECK(!same_weights(a, c), "other seed, other weights");
    /* Hooks off vs on (observe only) give the same training. */
    od.seed = 5;
    od.observe = observe_zero;
    sp_trainer *d;
    sp_trainer_create(&d, &od, &ds, train, ntr);
    sp_trainer_run_epoch(d, NULL);
    sp_trainer_run_epoch(d, NULL);
    CHECK(same_weights(a, d), "observe hook does not change training");
    sp_trainer_free(a);
    sp_trainer_free(b);
    sp_trainer_free(c);
    sp_trainer_free(d);

    test_before_update(&ds, train, ntr);

    /* Invalid arguments. */
    sp_trainer *bad;
    int64_t oob = NU;
    CHECK(sp_trainer_create(&bad, &opt, &ds, &oob, 1) == SP_TRAIN_E_INVALID &&
              bad == NULL,
          "out-of-range id");
    CHECK(sp_trainer_evaluate(tr, &oob, 1, &ev) == SP_TRAIN_E_INVALID, "eval id");
    sp_trainer_free(tr);
    sp_trainer_free(NULL);
    sp_dataset_free(&ds);
    printf("test_train: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
