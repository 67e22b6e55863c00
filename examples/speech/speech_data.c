/* speech_data.c - speech_demo's data: the directory (--data, else
 * $CSP_SPEECH_DATA, else <repo root>/../shared/data/fsdd, else spoken digits
 * synthesised once by espeak-ng into a cache under the build directory),
 * what it is (FSDD, the synthetic fallback or something else, with a
 * fingerprint), and the splits: official, leave-one-speaker-out, and their
 * validation splits (see speech_demo.h).
 *
 * The Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0) is
 * read where it lies, never copied into the repository.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "speech_demo.h"

#ifndef SP_ESPEAK_SCRIPT
#define SP_ESPEAK_SCRIPT "gen_espeak_digits.sh"
#endif
#ifndef SP_ESPEAK_CACHE
#define SP_ESPEAK_CACHE "espeak-cache"
#endif
#define SP_ESPEAK_MARKER "SYNTHETIC-ESPEAK.txt"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* Generate (once) and return the espeak-ng fallback directory. Several
 * processes may race: each writes its own temporary directory and renames
 * it into place; the first rename wins, the others use its result. */
static int espeak_fallback(const demo_options *o, char *out, size_t outlen)
{
    const char *cache = o->espeak_cache;
    if (!cache || !cache[0])
        cache = getenv("CSP_SPEECH_CACHE");
    if (!cache || !cache[0])
        cache = SP_ESPEAK_CACHE;
    if ((size_t)snprintf(out, outlen, "%s/espeak-digits-%lld", cache,
                         (long long)o->espeak_takes) >= outlen)
        return -1;
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/" SP_ESPEAK_MARKER, out);
    if (is_file(marker))
        return 0;
    if (o->no_generate) {
        fprintf(stderr, "no data found and --no-generate given\n");
        return -1;
    }
    if (mkdir_p(cache) != 0) {
        fprintf(stderr, "cannot create the cache directory %s: %s\n", cache, strerror(errno));
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", out, (long)getpid());
    remove_flat_dir(tmp);
    fprintf(stderr,
            "no FSDD found: synthesising spoken digits with espeak-ng into %s "
            "(once; %lld takes per digit and voice) ...\n",
            out, (long long)o->espeak_takes);
    char takes[32];
    snprintf(takes, sizeof takes, "%lld", (long long)o->espeak_takes);
    fflush(NULL);
    const double t0 = sd_now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("sh", "sh", SP_ESPEAK_SCRIPT, tmp, takes, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    char tmp_marker[4400];
    snprintf(tmp_marker, sizeof tmp_marker, "%s/" SP_ESPEAK_MARKER, tmp);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !is_file(tmp_marker)) {
        fprintf(stderr,
                "%s failed (exit %d); install espeak-ng and sox (sh tools/deps.sh demo) "
                "or give --data DIR\n",
                SP_ESPEAK_SCRIPT, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        remove_flat_dir(tmp);
        return -1;
    }
    if (rename(tmp, out) != 0) {
        remove_flat_dir(tmp); /* another process won the race */
        if (!is_file(marker)) {
            fprintf(stderr, "cannot move %s to %s: %s\n", tmp, out, strerror(errno));
            return -1;
        }
    }
    fprintf(stderr, "synthesised in %.1f s\n", sd_now() - t0);
    return 0;
}

int sd_resolve_data(const demo_options *o, data_info *di)
{
    memset(di, 0, sizeof *di);
    const char *env = getenv("CSP_SPEECH_DATA");
    if (o->data && o->data[0])
        di->source = "flag";
    else if (env && env[0])
        di->source = "env";
    else
        di->source = "repo";
    if (sp_dataset_find_dir(o->data, di->path, sizeof di->path) && is_dir(di->path)) {
        char *real = realpath(di->path, NULL); /* a clean path for the record */
        if (real && strlen(real) < sizeof di->path)
            strcpy(di->path, real);
        free(real);
        return 0;
    }
    if (strcmp(di->source, "repo")) {
        fprintf(stderr, "data directory %s (from %s) does not exist\n",
                o->data && o->data[0] ? o->data : env,
                strcmp(di->source, "flag") ? "$CSP_SPEECH_DATA" : "--data");
        return -1;
    }
    di->source = "espeak-fallback";
    return espeak_fallback(o, di->path, sizeof di->path);
}

void sd_classify_data(const sp_dataset *ds, data_info *di)
{
    static const char *const fsdd_speakers[] = {"george", "jackson", "lucas",
                                                "nicolas", "theo", "yweweler"};
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/" SP_ESPEAK_MARKER, di->path);
    if (is_file(marker)) {
        di->kind = "espeak";
    } else {
        int all = ds->n_speakers > 0;
        for (int s = 0; s < ds->n_speakers; s++) {
            int known = 0;
            for (size_t k = 0; k < sizeof fsdd_speakers / sizeof *fsdd_speakers; k++)
                known |= !strcmp(ds->speakers[s], fsdd_speakers[k]);
            all &= known;
        }
        di->kind = all ? "fsdd" : "other";
    }
    /* FNV-1a over the names and lengths, in the dataset's order. */
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < ds->n; i++) {
        for (const char *p = ds->utts[i].name; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        for (int b = 0; b < 8; b++)
            h = (h ^ (uint8_t)((uint64_t)ds->utts[i].samples >> (8 * b))) * 1099511628211ULL;
    }
    di->fingerprint = h;
}


const char *sd_kind_words(const char *kind)
{
    if (!strcmp(kind, "fsdd"))
        return "Free Spoken Digit Dataset (real recordings, CC BY-SA 4.0)";
    if (!strcmp(kind, "espeak"))
        return "SYNTHETIC spoken digits made by espeak-ng (not real speech)";
    return "an unrecognised set of {digit}_{speaker}_{index}.wav files";
}


/* Keep at most n of ids[0..*count), evenly strided (deterministic). */
static void subsample(int64_t *ids, int64_t *count, int64_t n)
{
    if (n <= 0 || *count <= n)
        return;
    for (int64_t i = 0; i < n; i++)
        ids[i] = ids[(int64_t)((double)i * (double)*count / (double)n)];
    *count = n;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The 5th lowest distinct recording index of ids[0..n), or the largest
 * when there are fewer; -1 when n is 0 or memory runs out. */
static int fifth_lowest_index(const sp_dataset *ds, const int64_t *ids, int64_t n)
{
    int *idx = (int *)malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx || n < 1) {
        free(idx);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        idx[i] = ds->utts[ids[i]].index;
    qsort(idx, (size_t)n, sizeof *idx, cmp_int);
    int distinct = 1, at = idx[0];
    for (int64_t i = 1; i < n && distinct < 5; i++)
        if (idx[i] != at) {
            at = idx[i];
            distinct++;
        }
    free(idx);
    return at;
}

int sd_carve_validation(const sp_dataset *ds, sp_split *split, int val_speaker)
{
    const int max_index =
        val_speaker >= 0 ? -1 : fifth_lowest_index(ds, split->train, split->n_train);
    int64_t *val = (int64_t *)malloc((size_t)(split->n_train + 1) * sizeof *val);
    int64_t *train = (int64_t *)malloc((size_t)(split->n_train + 1) * sizeof *train);
    int64_t n_val = 0, n_tr = 0;
    for (int64_t i = 0; val && train && i < split->n_train; i++) {
        const sp_utt *u = &ds->utts[split->train[i]];
        const int is_val = val_speaker >= 0 ? u->speaker == val_speaker : u->index <= max_index;
        if (is_val)
            val[n_val++] = split->train[i];
        else
            train[n_tr++] = split->train[i];
    }
    if (!val || !train || n_val < 1 || n_tr < 1) {
        free(val);
        free(train);
        return -1;
    }
    free(split->train);
    free(split->test);
    split->train = train;
    split->n_train = n_tr;
    split->test = val;
    split->n_test = n_val;
    return 0;
}

/* The base split of --eval (official or speaker:NAME). */
static int base_split(const demo_options *o, const sp_dataset *ds, sp_split *split,
                      split_info *si)
{
    if (!strcmp(o->eval, "official"))
        return sp_split_official(ds, split) == SP_DS_OK ? 0 : -1;
    if (strncmp(o->eval, "speaker:", 8)) {
        fprintf(stderr, "--eval takes official or speaker:NAME\n");
        return 2;
    }
    si->fold = o->eval + 8;
    const int sid = sp_dataset_speaker_id(ds, si->fold);
    if (sid < 0) {
        fprintf(stderr, "unknown speaker %s; the speakers are:", si->fold);
        for (int s = 0; s < ds->n_speakers; s++)
            fprintf(stderr, " %s", ds->speakers[s]);
        fprintf(stderr, "\n");
        return 2;
    }
    return sp_split_speaker(ds, sid, split) == SP_DS_OK ? 0 : -1;
}

int sd_make_split(const demo_options *o, const sp_dataset *ds, sp_split *split,
                  split_info *si)
{
    memset(split, 0, sizeof *split);
    memset(si, 0, sizeof *si);
    si->eval_set = "test";
    int rc = base_split(o, ds, split, si);
    if (rc == 0 && o->validate) {
        int vs = -1;
        if (si->fold) { /* the speaker after the held-out one, in name order */
            vs = (sp_dataset_speaker_id(ds, si->fold) + 1) % ds->n_speakers;
            si->val_speaker = ds->speakers[vs];
            si->val_rule = "the next speaker after the held-out one";
        } else {
            si->val_rule = "the 5 lowest recording indices of the training side";
        }
        si->eval_set = "validation";
        if (sd_carve_validation(ds, split, vs) != 0) {
            fprintf(stderr, "cannot carve a validation split (%s) from the %lld training "
                            "utterances of %s\n", si->val_rule, (long long)split->n_train,
                    o->eval);
            rc = -2;
        }
    }
    if (rc == 0) {
        subsample(split->train, &split->n_train, o->subset);
        subsample(split->test, &split->n_test, o->subset);
    }
    if (rc == 0 && (split->n_train < 1 || split->n_test < 1))
        rc = -1;
    if (rc == -1)
        fprintf(stderr, "cannot build the %s split (train %lld, %s %lld)\n", o->eval,
                (long long)split->n_train, si->eval_set, (long long)split->n_test);
    if (rc)
        sp_split_free(split);
    return rc == 2 ? 2 : rc ? -1 : 0;
}
