/* rnnt_data.c - connected-digit corpus, see rnnt_data.h. */
#define _POSIX_C_SOURCE 200809L
#include "rnnt_data.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "logmel.h"
#include "rng.h"
#include "wav.h"

#define MARKER "COMPLETE-RNNT-ESPEAK.txt"
#define NSETS 3

typedef struct rec {
    int speaker, index;          /* speaker id, recording/string index */
    int n_digits;                /* 1 for FSDD */
    int digits[RN_MAX_DIGITS];
    int set;                     /* rn_set it belongs to */
    int64_t n;                   /* samples */
    int64_t off;                 /* into pool */
} rec;

struct rn_corpus {
    rn_data_options o;
    int synthetic;
    char dir[4096];
    int n_speakers;
    char speakers[SP_DS_MAX_SPEAKERS][SP_DS_SPEAKER_MAX];
    int64_t n_recs;
    rec *recs;
    float *pool;
    /* FSDD: the recordings of (set, speaker, digit) are
     * by_key[key_off[k] .. key_off[k] + key_cnt[k]) */
    int64_t *by_key, *key_off, *key_cnt;
    int spk_of_set[NSETS][SP_DS_MAX_SPEAKERS], n_spk_of_set[NSETS];
    /* fallback: the strings of each set */
    int64_t *set_recs[NSETS], n_set_recs[NSETS];
    int64_t size[NSETS];
    int F;
    float *mean, *inv_std;
    sp_fbank fb;
    char desc[1024];
};

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void rn_data_options_default(rn_data_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->eval = RN_EVAL_OFFICIAL;
    o->seed = 1;
    o->min_digits = 1;
    o->max_digits = RN_MAX_DIGITS;
    o->n_train = 2000;
    o->fresh_each_epoch = 1;
    o->n_valid = 300;
    o->n_test = 500;
    o->pause_min_ms = 50;
    o->pause_max_ms = 300;
    o->snr_min_db = 10.0;
    o->snr_max_db = 30.0;
    o->gain_min_db = -12.0;
    o->gain_max_db = 0.0;
    o->stack = 3;
    o->stride = 3;
    o->norm_utts = 400;
}

const char *rn_data_strerror(int status)
{
    switch (status) {
    case RN_DATA_OK: return "ok";
    case RN_DATA_E_NULL: return "a required pointer is NULL";
    case RN_DATA_E_RANGE: return "an option, set, index or count is out of range";
    case RN_DATA_E_NOMEM: return "out of memory";
    case RN_DATA_E_IO: return "data not found or unreadable";
    case RN_DATA_E_FORMAT: return "a recording has the wrong format";
    default: return "unknown status";
    }
}

static int check_options(const rn_data_options *o, char *err, size_t errlen)
{
    if (o->min_digits < 1 || o->max_digits > RN_MAX_DIGITS || o->min_digits > o->max_digits ||
        o->n_train < 1 || o->n_valid < 1 || o->n_test < 1 || o->pause_min_ms < 0 ||
        o->pause_max_ms < o->pause_min_ms || o->pause_max_ms > 10000 ||
        !(o->snr_min_db <= o->snr_max_db) || !(o->gain_min_db <= o->gain_max_db) ||
        o->gain_max_db > 20.0 || o->stack < 1 || o->stack > 16 || o->stride < 1 ||
        o->stride > 16 || o->norm_utts < 1 ||
        (o->eval != RN_EVAL_OFFICIAL && o->eval != RN_EVAL_SPEAKER) || o->test_speaker < 0 ||
        (o->fresh_each_epoch != 0 && o->fresh_each_epoch != 1)) {
        set_err(err, errlen, "rn_corpus_open: an option is out of range");
        return RN_DATA_E_RANGE;
    }
    return RN_DATA_OK;
}

/* Fallback names: {digits}_{voice}_{index}.wav with 1..RN_MAX_DIGITS digits. */
static int parse_string_name(const char *name, int *digits, int *nd, char *voice,
                             int *index)
{
    int k = 0;
    while (name[k] >= '0' && name[k] <= '9')
        k++;
    if (k < 1 || k > RN_MAX_DIGITS || name[k] != '_')
        return 0;
    /* "{d}_{voice}_{index}.wav" has the FSDD form: reuse its parser. */
    char tmp[SP_DS_NAME_MAX];
    if (strlen(name + k - 1) >= sizeof tmp)
        return 0;
    strcpy(tmp, name + k - 1);
    int d0;
    if (!sp_dataset_parse_name(tmp, &d0, voice, index))
        return 0;
    for (int i = 0; i < k; i++)
        digits[i] = name[i] - '0';
    *nd = k;
    return 1;
}

static int set_of(const rn_data_options *o, int synthetic, int speaker, int index)
{
    int k = synthetic ? index % 10 : index;
    if (o->eval == RN_EVAL_SPEAKER) {
        if (speaker == o->test_speaker)
            return RN_SET_TEST;
        return (synthetic ? k == 0 : k < 5) ? RN_SET_VALID : RN_SET_TRAIN;
    }
    if (synthetic)
        return k == 0 ? RN_SET_TEST : k == 1 ? RN_SET_VALID : RN_SET_TRAIN;
    return k < 5 ? RN_SET_TEST : k < 10 ? RN_SET_VALID : RN_SET_TRAIN;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Read every data file of c->dir into c->recs / c->pool. */
static int load_dir(rn_corpus *c, char *err, size_t errlen)
{
    DIR *d = opendir(c->dir);
    if (!d) {
        set_err(err, errlen, "rn_corpus_open: cannot open %s: %s", c->dir, strerror(errno));
        return RN_DATA_E_IO;
    }
    char(*names)[SP_DS_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = RN_DATA_OK;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) >= SP_DS_NAME_MAX || !strstr(de->d_name, ".wav"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            void *p = realloc(names, cap * sizeof *names);
            if (!p) {
                rc = RN_DATA_E_NOMEM;
                break;
            }
            names = p;
        }
        strcpy(names[n++], de->d_name);
    }
    closedir(d);
    if (rc == RN_DATA_OK && n > 0)
        qsort(names, n, sizeof *names, cmp_name); /* order independent of the listing */
    c->recs = rc == RN_DATA_OK ? calloc(n ? n : 1, sizeof *c->recs) : NULL;
    if (!c->recs) {
        free(names);
        set_err(err, errlen, "rn_corpus_open: out of memory");
        return RN_DATA_E_NOMEM;
    }
    size_t pool_n = 0, pool_cap = 0;
    char spk[SP_DS_SPEAKER_MAX], path[4096 + SP_DS_NAME_MAX + 2];
    for (size_t i = 0; i < n && rc == RN_DATA_OK; i++) {
        rec r = {0};
        int digit = 0;
        int ok = c->synthetic
                     ? parse_string_name(names[i], r.digits, &r.n_digits, spk, &r.index)
                     : sp_dataset_parse_name(names[i], &digit, spk, &r.index);
        if (!ok)
            continue;
        if (!c->synthetic) {
            r.n_digits = 1;
            r.digits[0] = digit;
        }
        int s = 0;
        while (s < c->n_speakers && strcmp(c->speakers[s], spk) != 0)
            s++;
        if (s == c->n_speakers) {
            if (s == SP_DS_MAX_SPEAKERS) {
                set_err(err, errlen, "rn_corpus_open: more than %d speakers in %s",
                        SP_DS_MAX_SPEAKERS, c->dir);
                rc = RN_DATA_E_FORMAT;
                break;
            }
            strcpy(c->speakers[c->n_speakers++], spk);
        }
        r.speaker = s;
        snprintf(path, sizeof path, "%s/%s", c->dir, names[i]);
        sp_wav w;
        sp_wav_status st = sp_wav_read(path, &w);
        if (st != SP_WAV_OK || w.sample_rate != SP_FEAT_RATE || w.n < 1) {
            set_err(err, errlen, "rn_corpus_open: %s: %s", path,
                    st != SP_WAV_OK ? sp_wav_strerror(st) : "not 8 kHz or empty");
            if (st == SP_WAV_OK)
                sp_wav_free(&w);
            rc = st == SP_WAV_E_NOMEM ? RN_DATA_E_NOMEM : RN_DATA_E_FORMAT;
            break;
        }
        if (pool_n + (size_t)w.n > pool_cap) {
            size_t nc = pool_cap ? pool_cap : (size_t)1 << 20;
            while (nc < pool_n + (size_t)w.n)
                nc *= 2;
            float *p = realloc(c->pool, nc * sizeof *p);
            if (!p) {
                sp_wav_free(&w);
                set_err(err, errlen, "rn_corpus_open: out of memory");
                rc = RN_DATA_E_NOMEM;
                break;
            }
            c->pool = p;
            pool_cap = nc;
        }
        memcpy(c->pool + pool_n, w.samples, (size_t)w.n * sizeof *w.samples);
        r.off = (int64_t)pool_n;
        r.n = w.n;
        pool_n += (size_t)w.n;
        sp_wav_free(&w);
        c->recs[c->n_recs++] = r;
    }
    free(names);
    if (rc == RN_DATA_OK && c->n_recs == 0) {
        set_err(err, errlen, "rn_corpus_open: no %s files in %s",
                c->synthetic ? "{digits}_{voice}_{index}.wav" : "{digit}_{speaker}_{index}.wav",
                c->dir);
        rc = RN_DATA_E_IO;
    }
    return rc;
}

/* Speakers sorted by name: renumber the recordings. */
static void sort_speakers(rn_corpus *c)
{
    char old[SP_DS_MAX_SPEAKERS][SP_DS_SPEAKER_MAX];
    int map[SP_DS_MAX_SPEAKERS];
    memcpy(old, c->speakers, sizeof old);
    qsort(c->speakers, (size_t)c->n_speakers, SP_DS_SPEAKER_MAX, cmp_name);
    for (int s = 0; s < c->n_speakers; s++)
        for (int t = 0; t < c->n_speakers; t++)
            if (strcmp(old[s], c->speakers[t]) == 0)
                map[s] = t;
    for (int64_t i = 0; i < c->n_recs; i++)
        c->recs[i].speaker = map[c->recs[i].speaker];
}

/* Assign sets and build the look-up tables. */
static int index_sets(rn_corpus *c, char *err, size_t errlen)
{
    const rn_data_options *o = &c->o;
    if (o->eval == RN_EVAL_SPEAKER && o->test_speaker >= c->n_speakers) {
        set_err(err, errlen, "rn_corpus_open: test_speaker %d, but %d speakers",
                o->test_speaker, c->n_speakers);
        return RN_DATA_E_RANGE;
    }
    size_t nkeys = (size_t)NSETS * SP_DS_MAX_SPEAKERS * 10;
    c->key_off = calloc(nkeys, sizeof *c->key_off);
    c->key_cnt = calloc(nkeys, sizeof *c->key_cnt);
    c->by_key = malloc((size_t)c->n_recs * sizeof *c->by_key);
    for (int s = 0; s < NSETS; s++)
        c->set_recs[s] = malloc((size_t)c->n_recs * sizeof *c->set_recs[s]);
    if (!c->key_off || !c->key_cnt || !c->by_key || !c->set_recs[0] || !c->set_recs[1] ||
        !c->set_recs[2]) {
        set_err(err, errlen, "rn_corpus_open: out of memory");
        return RN_DATA_E_NOMEM;
    }
#define KEY(set, spk, dig) (((size_t)(set) * SP_DS_MAX_SPEAKERS + (size_t)(spk)) * 10 + (size_t)(dig))
    for (int64_t i = 0; i < c->n_recs; i++) {
        rec *r = &c->recs[i];
        r->set = set_of(o, c->synthetic, r->speaker, r->index);
        c->set_recs[r->set][c->n_set_recs[r->set]++] = i;
        c->key_cnt[KEY(r->set, r->speaker, r->digits[0])]++;
    }
    int64_t acc = 0;
    for (size_t k = 0; k < nkeys; k++) {
        c->key_off[k] = acc;
        acc += c->key_cnt[k];
        c->key_cnt[k] = 0;
    }
    for (int64_t i = 0; i < c->n_recs; i++) {
        size_t k = KEY(c->recs[i].set, c->recs[i].speaker, c->recs[i].digits[0]);
        c->by_key[c->key_off[k] + c->key_cnt[k]++] = i;
    }
    /* FSDD: a speaker serves a set when it has every digit there. */
    for (int set = 0; set < NSETS; set++) {
        for (int s = 0; s < c->n_speakers; s++) {
            int all = 1;
            for (int dg = 0; dg < 10; dg++)
                all = all && c->key_cnt[KEY(set, s, dg)] > 0;
            if (all)
                c->spk_of_set[set][c->n_spk_of_set[set]++] = s;
        }
        int empty = c->synthetic ? c->n_set_recs[set] == 0 : c->n_spk_of_set[set] == 0;
        if (empty) {
            set_err(err, errlen, "rn_corpus_open: the %s set of %s is empty",
                    set == RN_SET_TRAIN ? "training" : set == RN_SET_VALID ? "validation" : "test",
                    c->dir);
            return RN_DATA_E_FORMAT;
        }
    }
#undef KEY
    if (c->synthetic) {
        for (int set = 0; set < NSETS; set++)
            c->size[set] = c->n_set_recs[set];
    } else {
        c->size[RN_SET_TRAIN] = o->n_train;
        c->size[RN_SET_VALID] = o->n_valid;
        c->size[RN_SET_TEST] = o->n_test;
    }
    return RN_DATA_OK;
}

static uint64_t mix64(uint64_t h, uint64_t v)
{
    uint64_t x = h ^ (v + UINT64_C(0x9E3779B97F4A7C15) + (h << 6) + (h >> 2));
    return sp_splitmix64(&x);
}

/* The generator of one utterance (stream 0: what it is; 1: its noise). */
static void utt_rng(const rn_corpus *c, rn_set set, int epoch, int64_t index, int stream,
                    sp_rng *r)
{
    int e = set == RN_SET_TRAIN && c->o.fresh_each_epoch ? epoch : 0;
    uint64_t h = mix64(c->o.seed, (uint64_t)set + 1);
    h = mix64(h, (uint64_t)(int64_t)e);
    h = mix64(h, (uint64_t)index);
    h = mix64(h, (uint64_t)stream);
    sp_rng_seed(r, h);
}

static double uni(sp_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(sp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0));
}

static int uni_int(sp_rng *r, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)sp_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* Chosen recordings (indices into c->recs) go to recs_out. */
static void make_info(const rn_corpus *c, rn_set set, int epoch, int64_t index,
                      rn_utt_info *in, int64_t *recs_out)
{
    const rn_data_options *o = &c->o;
    sp_rng r;
    utt_rng(c, set, epoch, index, 0, &r);
    memset(in, 0, sizeof *in);
    int64_t samples = 0;
    if (c->synthetic) {
        int64_t ri = c->set_recs[set][index % c->n_set_recs[set]];
        const rec *rc = &c->recs[ri];
        in->n_digits = rc->n_digits;
        in->speaker = rc->speaker;
        for (int k = 0; k < RN_MAX_DIGITS; k++) {
            in->digits[k] = k < rc->n_digits ? rc->digits[k] : 0;
            in->recording[k] = -1;
        }
        in->recording[0] = rc->index;
        recs_out[0] = ri;
        in->pause_ms[0] = uni_int(&r, o->pause_min_ms, o->pause_max_ms);
        in->pause_ms[rc->n_digits] = uni_int(&r, o->pause_min_ms, o->pause_max_ms);
        samples = rc->n;
    } else {
        in->speaker = c->spk_of_set[set][sp_rng_below(&r, (uint64_t)c->n_spk_of_set[set])];
        in->n_digits = uni_int(&r, o->min_digits, o->max_digits);
        for (int k = 0; k < in->n_digits; k++) {
            int dg = (int)sp_rng_below(&r, 10);
            size_t key = ((size_t)set * SP_DS_MAX_SPEAKERS + (size_t)in->speaker) * 10 + (size_t)dg;
            int64_t ri = c->by_key[c->key_off[key] + (int64_t)sp_rng_below(&r, (uint64_t)c->key_cnt[key])];
            in->digits[k] = dg;
            in->recording[k] = c->recs[ri].index;
            recs_out[k] = ri;
            samples += c->recs[ri].n;
        }
        for (int k = in->n_digits; k < RN_MAX_DIGITS; k++)
            in->recording[k] = -1;
        for (int k = 0; k <= in->n_digits; k++)
            in->pause_ms[k] = uni_int(&r, o->pause_min_ms, o->pause_max_ms);
    }
    for (int k = 0; k <= in->n_digits; k++)
        samples += (int64_t)in->pause_ms[k] * (SP_FEAT_RATE / 1000);
    in->samples = samples;
    in->snr_db = uni(&r, o->snr_min_db, o->snr_max_db);
    in->gain_db = uni(&r, o->gain_min_db, o->gain_max_db);
}

static int check_utt(const rn_corpus *c, rn_set set, int64_t index)
{
    if (!c)
        return RN_DATA_E_NULL;
    if ((int)set < 0 || (int)set >= NSETS || index < 0 || index >= c->size[set])
        return RN_DATA_E_RANGE;
    return RN_DATA_OK;
}

int rn_corpus_info(const rn_corpus *c, rn_set set, int epoch, int64_t index,
                   rn_utt_info *info)
{
    int rc = check_utt(c, set, index);
    if (rc)
        return rc;
    if (!info)
        return RN_DATA_E_NULL;
    int64_t recs[RN_MAX_DIGITS];
    make_info(c, set, epoch, index, info, recs);
    return RN_DATA_OK;
}

void rn_audio_free(rn_audio *a)
{
    if (!a)
        return;
    free(a->speech);
    free(a->noise);
    memset(a, 0, sizeof *a);
}

/* Speech and noise of one utterance into speech[], noise[] (info->samples). */
static void render_into(const rn_corpus *c, rn_set set, int epoch, int64_t index,
                        const rn_utt_info *in, const int64_t *recs, float *speech,
                        float *noise)
{
    int64_t n = in->samples, pos = 0, active = 0;
    double gain = pow(10.0, in->gain_db / 20.0), ps = 0.0;
    memset(speech, 0, (size_t)n * sizeof *speech);
    int pieces = c->synthetic ? 1 : in->n_digits;
    for (int k = 0; k < pieces; k++) {
        pos += (int64_t)in->pause_ms[k] * (SP_FEAT_RATE / 1000);
        const rec *r = &c->recs[recs[k]];
        const float *x = c->pool + r->off;
        for (int64_t i = 0; i < r->n; i++) {
            speech[pos + i] = (float)(gain * x[i]);
            ps += (double)speech[pos + i] * speech[pos + i];
        }
        pos += r->n;
        active += r->n;
    }
    ps /= (double)(active > 0 ? active : 1);
    /* Coloured noise: white Gaussian through a random one-pole low-pass. */
    sp_rng r;
    utt_rng(c, set, epoch, index, 1, &r);
    double a = uni(&r, 0.0, 0.95), y = 0.0, pn = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double u1 = uni(&r, 1e-300, 1.0), u2 = uni(&r, 0.0, 1.0);
        double g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        y = a * y + g;
        noise[i] = (float)y;
        pn += y * y;
    }
    pn /= (double)n;
    double scale = pn > 0.0 ? sqrt(ps / pn * pow(10.0, -in->snr_db / 10.0)) : 0.0;
    for (int64_t i = 0; i < n; i++)
        noise[i] = (float)(scale * noise[i]);
}

int rn_corpus_render(const rn_corpus *c, rn_set set, int epoch, int64_t index, rn_audio *a)
{
    int rc = check_utt(c, set, index);
    if (rc)
        return rc;
    if (!a)
        return RN_DATA_E_NULL;
    memset(a, 0, sizeof *a);
    int64_t recs[RN_MAX_DIGITS];
    make_info(c, set, epoch, index, &a->info, recs);
    a->n = a->info.samples;
    a->speech = malloc((size_t)a->n * sizeof *a->speech);
    a->noise = malloc((size_t)a->n * sizeof *a->noise);
    if (!a->speech || !a->noise) {
        rn_audio_free(a);
        return RN_DATA_E_NOMEM;
    }
    render_into(c, set, epoch, index, &a->info, recs, a->speech, a->noise);
    return RN_DATA_OK;
}

static int64_t out_frames(const rn_corpus *c, int64_t samples)
{
    int64_t nf = sp_feat_num_frames(samples);
    return (nf + c->o.stride - 1) / c->o.stride;
}

/* Unnormalised stacked features of one utterance into out (out_frames x F).
 * work holds 2 x samples floats + raw log-mel frames. */
static int utt_features(const rn_corpus *c, rn_set set, int epoch, int64_t index, float *out,
                        rn_utt_info *info)
{
    int64_t recs[RN_MAX_DIGITS];
    make_info(c, set, epoch, index, info, recs);
    int64_t n = info->samples, nf = sp_feat_num_frames(n);
    float *speech = malloc((size_t)n * sizeof *speech);
    float *noise = malloc((size_t)n * sizeof *noise);
    float *raw = malloc((size_t)nf * SP_FEAT_NMEL * sizeof *raw);
    if (!speech || !noise || !raw) {
        free(speech);
        free(noise);
        free(raw);
        return RN_DATA_E_NOMEM;
    }
    render_into(c, set, epoch, index, info, recs, speech, noise);
    for (int64_t i = 0; i < n; i++) {
        float v = speech[i] + noise[i];
        speech[i] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
    }
    sp_feat_logmel(&c->fb, speech, n, raw);
    int64_t T = out_frames(c, n);
    for (int64_t j = 0; j < T; j++) {
        for (int k = 0; k < c->o.stack; k++) {
            int64_t src = j * c->o.stride + k;
            if (src >= nf)
                src = nf - 1;
            memcpy(out + (j * c->F) + k * SP_FEAT_NMEL, raw + src * SP_FEAT_NMEL,
                   SP_FEAT_NMEL * sizeof *raw);
        }
    }
    free(speech);
    free(noise);
    free(raw);
    return RN_DATA_OK;
}

/* Mean and 1/std per feature over the first norm_utts TRAIN utterances of
 * epoch 0 (never VALID or TEST). */
static int fit_norm(rn_corpus *c)
{
    int64_t m = c->o.norm_utts < c->size[RN_SET_TRAIN] ? c->o.norm_utts : c->size[RN_SET_TRAIN];
    double *s1 = calloc((size_t)c->F, sizeof *s1), *s2 = calloc((size_t)c->F, sizeof *s2);
    c->mean = malloc((size_t)c->F * sizeof *c->mean);
    c->inv_std = malloc((size_t)c->F * sizeof *c->inv_std);
    int rc = s1 && s2 && c->mean && c->inv_std ? RN_DATA_OK : RN_DATA_E_NOMEM;
    int64_t frames = 0;
    for (int64_t i = 0; i < m && rc == RN_DATA_OK; i++) {
        rn_utt_info in;
        int64_t recs[RN_MAX_DIGITS];
        make_info(c, RN_SET_TRAIN, 0, i, &in, recs);
        int64_t T = out_frames(c, in.samples);
        float *f = malloc((size_t)T * (size_t)c->F * sizeof *f);
        rc = f ? utt_features(c, RN_SET_TRAIN, 0, i, f, &in) : RN_DATA_E_NOMEM;
        for (int64_t j = 0; j < T && rc == RN_DATA_OK; j++)
            for (int k = 0; k < c->F; k++) {
                double v = f[j * c->F + k];
                s1[k] += v;
                s2[k] += v * v;
            }
        frames += T;
        free(f);
    }
    for (int k = 0; k < c->F && rc == RN_DATA_OK; k++) {
        double mu = s1[k] / (double)frames, var = s2[k] / (double)frames - mu * mu;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        c->mean[k] = (float)mu;
        c->inv_std[k] = (float)(sd < 1e-6 ? 1e6 : 1.0 / sd);
    }
    free(s1);
    free(s2);
    return rc;
}

static int file_exists(const char *dir, const char *name)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* Choose FSDD or the fallback (running the script once when needed). */
static int choose_dir(rn_corpus *c, char *err, size_t errlen)
{
    const rn_data_options *o = &c->o;
    char buf[4096];
    const char *fsdd = NULL;
    if (!o->force_espeak)
        fsdd = sp_dataset_find_dir(o->data_dir && o->data_dir[0] ? o->data_dir : NULL, buf,
                                   sizeof buf);
    struct stat st;
    if (fsdd && stat(fsdd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(c->dir, sizeof c->dir, "%s", fsdd);
        c->synthetic = 0;
        return RN_DATA_OK;
    }
    if (!o->espeak_cache || !o->espeak_cache[0]) {
        set_err(err, errlen, "rn_corpus_open: no FSDD directory found (data_dir, "
                             "CSP_SPEECH_DATA or ../shared/data/fsdd) and no espeak_cache");
        return RN_DATA_E_IO;
    }
    snprintf(c->dir, sizeof c->dir, "%s", o->espeak_cache);
    c->synthetic = 1;
    if (file_exists(c->dir, MARKER))
        return RN_DATA_OK;
    if (!o->espeak_script) {
        set_err(err, errlen, "rn_corpus_open: %s holds no complete espeak-ng set", c->dir);
        return RN_DATA_E_IO;
    }
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' >&2", o->espeak_script, c->dir);
    fprintf(stderr, "rnnt data: no FSDD; synthesising the espeak-ng fallback into %s\n", c->dir);
    if (strchr(o->espeak_script, '\'') || strchr(c->dir, '\'') || system(cmd) != 0 ||
        !file_exists(c->dir, MARKER)) {
        set_err(err, errlen, "rn_corpus_open: %s failed (needs espeak-ng and sox)",
                o->espeak_script);
        return RN_DATA_E_IO;
    }
    return RN_DATA_OK;
}

static void describe(rn_corpus *c)
{
    const rn_data_options *o = &c->o;
    char ev[160];
    if (o->eval == RN_EVAL_SPEAKER)
        snprintf(ev, sizeof ev, "leave-one-speaker-out (test speaker %s, valid %s of the others)",
                 c->speakers[o->test_speaker], c->synthetic ? "strings i%10==0" : "recordings 0-4");
    else
        snprintf(ev, sizeof ev, "official split (%s)",
                 c->synthetic ? "strings i%10==0 test, ==1 valid, rest train"
                              : "recordings 0-4 test, 5-9 valid, 10-49 train");
    snprintf(c->desc, sizeof c->desc,
             "%s at %.400s: %d speakers, %s; %lld train strings%s, %lld valid, %lld test; "
             "pauses %d-%d ms, SNR %g-%g dB, gain %g-%g dB, seed %llu; log-mel x%d stride %d",
             c->synthetic ? "SYNTHETIC espeak-ng digit strings (not real speech)"
                          : "FSDD (Free Spoken Digit Dataset, CC BY-SA 4.0) connected digits",
             c->dir, c->n_speakers, ev, (long long)c->size[RN_SET_TRAIN],
             o->fresh_each_epoch ? " (fresh each epoch)" : " (fixed pool)",
             (long long)c->size[RN_SET_VALID], (long long)c->size[RN_SET_TEST], o->pause_min_ms,
             o->pause_max_ms, o->snr_min_db, o->snr_max_db, o->gain_min_db, o->gain_max_db,
             (unsigned long long)o->seed, o->stack, o->stride);
}

int rn_corpus_open(const rn_data_options *o, rn_corpus **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!o || !out) {
        set_err(err, errlen, "rn_corpus_open: NULL argument");
        return RN_DATA_E_NULL;
    }
    int rc = check_options(o, err, errlen);
    if (rc)
        return rc;
    rn_corpus *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "rn_corpus_open: out of memory");
        return RN_DATA_E_NOMEM;
    }
    c->o = *o;
    c->F = SP_FEAT_NMEL * o->stack;
    sp_fbank_init(&c->fb);
    rc = choose_dir(c, err, errlen);
    c->o.data_dir = c->o.espeak_cache = c->o.espeak_script = NULL; /* not kept */
    if (!rc)
        rc = load_dir(c, err, errlen);
    if (!rc) {
        sort_speakers(c);
        rc = index_sets(c, err, errlen);
    }
    if (!rc && (rc = fit_norm(c)) != 0)
        set_err(err, errlen, "rn_corpus_open: out of memory");
    if (rc) {
        rn_corpus_close(c);
        return rc;
    }
    describe(c);
    *out = c;
    return RN_DATA_OK;
}

void rn_corpus_close(rn_corpus *c)
{
    if (!c)
        return;
    free(c->recs);
    free(c->pool);
    free(c->by_key);
    free(c->key_off);
    free(c->key_cnt);
    for (int s = 0; s < NSETS; s++)
        free(c->set_recs[s]);
    free(c->mean);
    free(c->inv_std);
    free(c);
}

int64_t rn_corpus_size(const rn_corpus *c, rn_set set)
{
    if (!c || (int)set < 0 || (int)set >= NSETS)
        return -1;
    return c->size[set];
}

int rn_corpus_feat_dim(const rn_corpus *c) { return c ? c->F : -1; }

const char *rn_corpus_describe(const rn_corpus *c)
{
    return c ? c->desc : "(no corpus)";
}

int rn_corpus_is_synthetic(const rn_corpus *c) { return c ? c->synthetic : -1; }

int rn_corpus_n_speakers(const rn_corpus *c) { return c ? c->n_speakers : -1; }

const char *rn_corpus_speaker(const rn_corpus *c, int i)
{
    return c && i >= 0 && i < c->n_speakers ? c->speakers[i] : NULL;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    void *q = realloc(*p, need * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = need;
    return 0;
}

int rn_corpus_batch_idx(const rn_corpus *c, rn_set set, int epoch, const int64_t *idx,
                        int count, rn_batch *b)
{
    if (!c || !idx || !b)
        return RN_DATA_E_NULL;
    if (count < 1)
        return RN_DATA_E_RANGE;
    int maxT = 1, maxU = 1;
    for (int i = 0; i < count; i++) {
        int rc = check_utt(c, set, idx[i]);
        if (rc)
            return rc;
        rn_utt_info in;
        int64_t recs[RN_MAX_DIGITS];
        make_info(c, set, epoch, idx[i], &in, recs);
        int64_t T = out_frames(c, in.samples);
        if (T > maxT)
            maxT = (int)T;
        if (in.n_digits > maxU)
            maxU = in.n_digits;
    }
    size_t cb = b->cap_b;
    if (grow((void **)&b->feat, &b->cap_feat, (size_t)count * maxT * c->F, sizeof *b->feat) ||
        grow((void **)&b->labels, &b->cap_labels, (size_t)count * maxU, sizeof *b->labels) ||
        grow((void **)&b->t_len, &cb, (size_t)count, sizeof *b->t_len) ||
        grow((void **)&b->u_len, &b->cap_b, (size_t)count, sizeof *b->u_len))
        return RN_DATA_E_NOMEM;
    b->B = count;
    b->T = maxT;
    b->F = c->F;
    b->U = maxU;
    memset(b->feat, 0, (size_t)count * maxT * c->F * sizeof *b->feat);
    memset(b->labels, 0, (size_t)count * maxU * sizeof *b->labels);
    for (int i = 0; i < count; i++) {
        rn_utt_info in;
        float *f = b->feat + (size_t)i * maxT * c->F;
        int rc = utt_features(c, set, epoch, idx[i], f, &in);
        if (rc)
            return rc;
        int T = (int)out_frames(c, in.samples);
        for (int j = 0; j < T; j++)
            for (int k = 0; k < c->F; k++)
                f[j * c->F + k] = (f[j * c->F + k] - c->mean[k]) * c->inv_std[k];
        b->t_len[i] = T;
        b->u_len[i] = in.n_digits;
        for (int k = 0; k < in.n_digits; k++)
            b->labels[(size_t)i * maxU + k] = in.digits[k] + 1;
    }
    return RN_DATA_OK;
}

int rn_corpus_batch(const rn_corpus *c, rn_set set, int epoch, int64_t first, int count,
                    rn_batch *b)
{
    if (!c || !b)
        return RN_DATA_E_NULL;
    if (count < 1 || count > 1 << 20)
        return RN_DATA_E_RANGE;
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    if (!idx)
        return RN_DATA_E_NOMEM;
    for (int i = 0; i < count; i++)
        idx[i] = first + i;
    int rc = rn_corpus_batch_idx(c, set, epoch, idx, count, b);
    free(idx);
    return rc;
}

void rn_batch_free(rn_batch *b)
{
    if (!b)
        return;
    free(b->feat);
    free(b->t_len);
    free(b->labels);
    free(b->u_len);
    memset(b, 0, sizeof *b);
}
