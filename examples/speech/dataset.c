/* dataset.c - FSDD loader and splits, see dataset.h. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logmel.h"
#include "wav.h"

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

int sp_dataset_parse_name(const char *name, int *digit, char *speaker,
                          int *index)
{
    if (!name || name[0] < '0' || name[0] > '9' || name[1] != '_')
        return 0;
    const char *s = name + 2;
    size_t k = 0;
    while ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
           (s[k] >= '0' && s[k] <= '9') || s[k] == '-')
        k++;
    if (k == 0 || k >= SP_DS_SPEAKER_MAX || s[k] != '_')
        return 0;
    const char *p = s + k + 1;
    long idx = 0;
    size_t nd = 0;
    while (p[nd] >= '0' && p[nd] <= '9') {
        if (nd >= 6)
            return 0; /* absurdly large index */
        idx = idx * 10 + (p[nd] - '0');
        nd++;
    }
    if (nd == 0 || strcmp(p + nd, ".wav") != 0)
        return 0;
    if (digit)
        *digit = name[0] - '0';
    if (speaker) {
        memcpy(speaker, s, k);
        speaker[k] = '\0';
    }
    if (index)
        *index = (int)idx;
    return 1;
}

typedef struct {
    char name[SP_DS_NAME_MAX];
    char speaker[SP_DS_SPEAKER_MAX];
    int digit, index;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = (const entry *)a, *y = (const entry *)b;
    if (x->digit != y->digit)
        return x->digit < y->digit ? -1 : 1;
    int c = strcmp(x->speaker, y->speaker);
    if (c != 0)
        return c;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

void sp_dataset_free(sp_dataset *ds)
{
    if (!ds)
        return;
    free(ds->utts);
    free(ds->pool);
    memset(ds, 0, sizeof *ds);
}

int sp_dataset_speaker_id(const sp_dataset *ds, const char *name)
{
    for (int i = 0; i < ds->n_speakers; i++)
        if (strcmp(ds->speakers[i], name) == 0)
            return i;
    return -1;
}

int sp_dataset_load(sp_dataset *ds, const char *dir, char *err, size_t errlen)
{
    if (!ds || !dir) {
        set_err(err, errlen, "invalid argument");
        return SP_DS_E_INVALID;
    }
    memset(ds, 0, sizeof *ds);
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open data directory %s: %s", dir,
                strerror(errno));
        return SP_DS_E_IO;
    }
    entry *ents = NULL;
    size_t n = 0, cap = 0;
    int64_t skipped = 0;
    int rc = SP_DS_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        entry e;
        if (strlen(de->d_name) >= SP_DS_NAME_MAX ||
            !sp_dataset_parse_name(de->d_name, &e.digit, e.speaker, &e.index)) {
            if (de->d_name[0] != '.')
                skipped++;
            continue;
        }
        strcpy(e.name, de->d_name);
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            entry *ne = (entry *)realloc(ents, nc * sizeof *ne);
            if (!ne) {
                rc = SP_DS_E_NOMEM;
                break;
            }
            ents = ne;
            cap = nc;
        }
        ents[n++] = e;
    }
    closedir(d);
    if (rc == SP_DS_OK && n == 0) {
        set_err(err, errlen, "no {digit}_{speaker}_{index}.wav files in %s", dir);
        rc = SP_DS_E_EMPTY;
    }
    if (rc != SP_DS_OK) {
        if (rc == SP_DS_E_NOMEM)
            set_err(err, errlen, "out of memory");
        free(ents);
        return rc;
    }
    qsort(ents, n, sizeof *ents, cmp_entry);

    /* Speakers: distinct names, sorted. */
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (int s = 0; s < ds->n_speakers && !found; s++)
            found = strcmp(ds->speakers[s], ents[i].speaker) == 0;
        if (found)
            continue;
        if (ds->n_speakers == SP_DS_MAX_SPEAKERS) {
            set_err(err, errlen, "more than %d speakers in %s",
                    SP_DS_MAX_SPEAKERS, dir);
            free(ents);
            memset(ds, 0, sizeof *ds);
            return SP_DS_E_FORMAT;
        }
        strcpy(ds->speakers[ds->n_speakers++], ents[i].speaker);
    }
    qsort(ds->speakers, (size_t)ds->n_speakers, SP_DS_SPEAKER_MAX, cmp_str);

    ds->utts = (sp_utt *)calloc(n, sizeof *ds->utts);
    sp_fbank *fb = (sp_fbank *)malloc(sizeof *fb);
    size_t dlen = strlen(dir);
    char *path = (char *)malloc(dlen + SP_DS_NAME_MAX + 2);
    int64_t *offs = (int64_t *)malloc(n * sizeof *offs);
    size_t pool_cap = 0;
    if (!ds->utts || !fb || !path || !offs) {
        set_err(err, errlen, "out of memory");
        rc = SP_DS_E_NOMEM;
        goto done;
    }
    sp_fbank_init(fb);
    for (size_t i = 0; i < n && rc == SP_DS_OK; i++) {
        sp_utt *u = &ds->utts[i];
        strcpy(u->name, ents[i].name);
        u->label = ents[i].digit;
        u->index = ents[i].index;
        u->speaker = sp_dataset_speaker_id(ds, ents[i].speaker);
        sprintf(path, "%s/%s", dir, u->name);
        sp_wav w;
        sp_wav_status st = sp_wav_read(path, &w);
        if (st != SP_WAV_OK) {
            set_err(err, errlen, "%s: %s", path, sp_wav_strerror(st));
            rc = st == SP_WAV_E_NOMEM ? SP_DS_E_NOMEM : SP_DS_E_WAV;
            break;
        }
        if (w.sample_rate != SP_FEAT_RATE) {
            set_err(err, errlen, "%s: sample rate %d Hz, need %d Hz", path,
                    (int)w.sample_rate, SP_FEAT_RATE);
            sp_wav_free(&w);
            rc = SP_DS_E_FORMAT;
            break;
        }
        u->samples = w.n;
        u->frames = sp_feat_num_frames(w.n);
        size_t need = (size_t)(ds->total_frames + u->frames) * SP_FEAT_NMEL;
        if (need > pool_cap) {
            size_t nc = pool_cap ? pool_cap : (size_t)1 << 16;
            while (nc < need)
                nc *= 2;
            float *np = (float *)realloc(ds->pool, nc * sizeof *np);
            if (!np) {
                sp_wav_free(&w);
                set_err(err, errlen, "out of memory");
                rc = SP_DS_E_NOMEM;
                break;
            }
            ds->pool = np;
            pool_cap = nc;
        }
        offs[i] = ds->total_frames;
        sp_feat_logmel(fb, w.samples, w.n,
                       ds->pool + ds->total_frames * SP_FEAT_NMEL);
        ds->total_frames += u->frames;
        if (u->frames > ds->max_frames)
            ds->max_frames = u->frames;
        sp_wav_free(&w);
    }
    if (rc == SP_DS_OK) {
        ds->n = (int64_t)n;
        ds->n_skipped = skipped;
        for (size_t i = 0; i < n; i++)
            ds->utts[i].feat = ds->pool + offs[i] * SP_FEAT_NMEL;
    }
done:
    free(offs);
    free(path);
    free(fb);
    free(ents);
    if (rc != SP_DS_OK)
        sp_dataset_free(ds);
    return rc;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *sp_dataset_find_dir(const char *flag, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return NULL;
    const char *src = NULL;
    if (flag && flag[0])
        src = flag;
    else {
        const char *env = getenv("CSP_SPEECH_DATA");
        if (env && env[0])
            src = env;
    }
    if (src) {
        if (strlen(src) >= buflen)
            return NULL;
        strcpy(buf, src);
        return buf;
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    for (;;) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.git", cwd);
        struct stat st;
        if (stat(probe, &st) == 0) {
            snprintf(probe, sizeof probe, "%s/../shared/data/fsdd", cwd);
            if (is_dir(probe) && strlen(probe) < buflen) {
                strcpy(buf, probe);
                return buf;
            }
            return NULL;
        }
        char *slash = strrchr(cwd, '/');
        if (!slash || slash == cwd)
            return NULL;
        *slash = '\0';
    }
}

static int split_alloc(const sp_dataset *ds, sp_split *sp)
{
    memset(sp, 0, sizeof *sp);
    size_t m = ds->n > 0 ? (size_t)ds->n : 1;
    sp->train = (int64_t *)malloc(m * sizeof *sp->train);
    sp->test = (int64_t *)malloc(m * sizeof *sp->test);
    if (!sp->train || !sp->test) {
        sp_split_free(sp);
        return SP_DS_E_NOMEM;
    }
    return SP_DS_OK;
}

int sp_split_official(const sp_dataset *ds, sp_split *sp)
{
    if (!ds || !sp)
        return SP_DS_E_INVALID;
    int rc = split_alloc(ds, sp);
    if (rc)
        return rc;
    for (int64_t i = 0; i < ds->n; i++) {
        if (ds->utts[i].index < 5)
            sp->test[sp->n_test++] = i;
        else
            sp->train[sp->n_train++] = i;
    }
    return SP_DS_OK;
}

int sp_split_speaker(const sp_dataset *ds, int test_speaker, sp_split *sp)
{
    if (!ds || !sp || test_speaker < 0 || test_speaker >= ds->n_speakers)
        return SP_DS_E_INVALID;
    int rc = split_alloc(ds, sp);
    if (rc)
        return rc;
    for (int64_t i = 0; i < ds->n; i++) {
        if (ds->utts[i].speaker == test_speaker)
            sp->test[sp->n_test++] = i;
        else
            sp->train[sp->n_train++] = i;
    }
    return SP_DS_OK;
}

void sp_split_free(sp_split *sp)
{
    if (!sp)
        return;
    free(sp->train);
    free(sp->test);
    memset(sp, 0, sizeof *sp);
}
