/* speech_demo.c - trains the speech-digit LSTM (40 log-mel -> LSTM(H) ->
 * mean-pool -> Linear(10)) and prunes it during training with libcsp:
 * csp_step() after every optimizer update prunes W_ih, W_hh and W_out (not
 * the biases) and zeroes their Adam moments (registered as companions).
 *
 * Data: the Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0),
 * never copied into the repository: --data DIR, else $CSP_SPEECH_DATA, else
 * <repo root>/../shared/data/fsdd. Without it, spoken digits synthesised by
 * espeak-ng (gen_espeak_digits.sh) into a cache directory under the build
 * directory, generated once. Every run says which data it used.
 *
 * Output: a line per epoch, a summary, and one machine-readable line
 * `RESULT {json}` for the comparison driver (compare.py).
 * Run `speech_demo --help` for the flags.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <csp/csp.h>

#include "dataset.h"
#include "lstm.h"
#include "speech_methods.h"

#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>
#include "train.h"

#ifndef SP_ESPEAK_SCRIPT
#define SP_ESPEAK_SCRIPT "gen_espeak_digits.sh"
#endif
#ifndef SP_ESPEAK_CACHE
#define SP_ESPEAK_CACHE "espeak-cache"
#endif
#define SP_ESPEAK_MARKER "SYNTHETIC-ESPEAK.txt"

/* The prunable parameters, in the order they are added to the pruner. */
static const int prunable[3] = {SP_P_W_IH, SP_P_W_HH, SP_P_W_OUT};
#define N_PRUNABLE 3

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- options */

typedef struct demo_options {
    const char *method;
    double sparsity;
    double begin_frac, end_frac, exponent, initial_sparsity;
    int64_t frequency, events;
    int64_t epochs;
    int64_t subset;
    int32_t threads;
    const char *data;
    const char *eval;
    const char *espeak_cache;
    int64_t espeak_takes;
    int no_generate;
    int list_methods, print_data, quiet;
    sm_overrides csp;
    sp_train_options train;
} demo_options;

static void usage(FILE *f, const char *prog)
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
            "  --seed S             model init, shuffling and libcsp seed (1)\n"
            "  --epochs N           training epochs (20)\n"
            "  --threads N          libcsp worker threads (1); BLAS: OPENBLAS_NUM_THREADS\n"
            "  --data DIR           data directory (else $CSP_SPEECH_DATA, else\n"
            "                       <repo>/../shared/data/fsdd, else espeak-ng fallback)\n"
            "  --eval E             official | speaker:NAME (leave NAME out) (official)\n"
            "  --hidden H --batch B --lr LR --bucket K   trainer (128, 32, 1e-3, 8)\n"
            "  --subset N           at most N train and N test utterances (0 = all)\n"
            "  --espeak-cache DIR   fallback cache (else $CSP_SPEECH_CACHE, else the build\n"
            "                       directory's)\n"
            "  --espeak-takes N     fallback takes per digit and voice (50)\n"
            "  --no-generate        never synthesise the fallback\n"
            "  --list-methods       print the methods (METHOD {json} lines) and exit\n"
            "  --print-data         resolve the data (generate the fallback if needed),\n"
            "                       print DATA {json} and exit\n"
            "  --quiet              no per-epoch lines (and no per-epoch evaluation)\n",
            prog);
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

static int parse_args(int argc, char **argv, demo_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = "gmp";
    o->sparsity = 0.95;
    o->begin_frac = 0.1;
    o->end_frac = 0.6;
    o->exponent = 3.0;
    o->events = 50;
    o->epochs = 20;
    o->threads = 1;
    o->eval = "official";
    o->espeak_takes = 50;
    sm_overrides_init(&o->csp);
    sp_train_options_init(&o->train);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, argv[0]);
            exit(0);
        }
        if (!strcmp(a, "--list-methods")) {
            o->list_methods = 1;
            continue;
        }
        if (!strcmp(a, "--print-data")) {
            o->print_data = 1;
            continue;
        }
        if (!strcmp(a, "--no-generate")) {
            o->no_generate = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", argv[0], a);
            return -1;
        }
        const char *v = argv[++i];
        int64_t x = 0;
        int bad = 0;
        if (!strcmp(a, "--method"))
            o->method = v;
        else if (!strcmp(a, "--csp")) {
            char err[256];
            if (sm_parse_overrides(v, &o->csp, err, sizeof err) != 0) {
                fprintf(stderr, "%s: %s\n", argv[0], err);
                return -1;
            }
        }
        else if (!strcmp(a, "--sparsity"))
            bad = parse_double(v, &o->sparsity);
        else if (!strcmp(a, "--begin"))
            bad = parse_double(v, &o->begin_frac);
        else if (!strcmp(a, "--end"))
            bad = parse_double(v, &o->end_frac);
        else if (!strcmp(a, "--exponent"))
            bad = parse_double(v, &o->exponent);
        else if (!strcmp(a, "--initial-sparsity"))
            bad = parse_double(v, &o->initial_sparsity);
        else if (!strcmp(a, "--frequency"))
            bad = parse_i64(v, &o->frequency) || o->frequency < 0;
        else if (!strcmp(a, "--events"))
            bad = parse_i64(v, &o->events) || o->events < 1;
        else if (!strcmp(a, "--seed"))
            bad = parse_i64(v, &x) || x < 0, o->train.seed = (uint64_t)x;
        else if (!strcmp(a, "--epochs"))
            bad = parse_i64(v, &o->epochs) || o->epochs < 1;
        else if (!strcmp(a, "--threads"))
            bad = parse_i64(v, &x) || x < 1 || x > CSP_MAX_THREADS, o->threads = (int32_t)x;
        else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--eval"))
            o->eval = v;
        else if (!strcmp(a, "--hidden"))
            bad = parse_i64(v, &o->train.hidden) || o->train.hidden < 1;
        else if (!strcmp(a, "--batch"))
            bad = parse_i64(v, &o->train.batch) || o->train.batch < 1;
        else if (!strcmp(a, "--bucket"))
            bad = parse_i64(v, &o->train.bucket) || o->train.bucket < 0;
        else if (!strcmp(a, "--lr")) {
            double lr = 0;
            bad = parse_double(v, &lr) || lr <= 0;
            o->train.adam.lr = (float)lr;
        } else if (!strcmp(a, "--subset"))
            bad = parse_i64(v, &o->subset) || o->subset < 0;
        else if (!strcmp(a, "--espeak-cache"))
            o->espeak_cache = v;
        else if (!strcmp(a, "--espeak-takes"))
            bad = parse_i64(v, &o->espeak_takes) || o->espeak_takes < 5;
        else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "%s: bad value for %s: %s\n", argv[0], a, v);
            return -1;
        }
    }
    if (!(o->sparsity >= 0.0 && o->sparsity < 1.0) ||
        !(o->initial_sparsity >= 0.0 && o->initial_sparsity <= o->sparsity) ||
        !(o->begin_frac >= 0.0 && o->begin_frac < o->end_frac && o->end_frac <= 1.0) ||
        !(o->exponent > 0.0)) {
        fprintf(stderr, "%s: need 0 <= initial-sparsity <= sparsity < 1, "
                        "0 <= begin < end <= 1, exponent > 0\n", argv[0]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ JSON */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* ------------------------------------------------------------------ data */

typedef struct data_info {
    char path[4096];
    const char *kind;   /* "fsdd", "espeak" or "other" */
    const char *source; /* "flag", "env", "repo", "espeak-fallback" */
    uint64_t fingerprint;
} data_info;

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
    const double t0 = now_seconds();
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
    fprintf(stderr, "synthesised in %.1f s\n", now_seconds() - t0);
    return 0;
}

static int resolve_data(const demo_options *o, data_info *di)
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

static void classify_data(const sp_dataset *ds, data_info *di)
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

static const char *kind_words(const char *kind)
{
    if (!strcmp(kind, "fsdd"))
        return "Free Spoken Digit Dataset (real recordings, CC BY-SA 4.0)";
    if (!strcmp(kind, "espeak"))
        return "SYNTHETIC spoken digits made by espeak-ng (not real speech)";
    return "an unrecognised set of {digit}_{speaker}_{index}.wav files";
}

static void print_data_json(FILE *f, const sp_dataset *ds, const data_info *di)
{
    fputs("{\"path\":", f);
    json_str(f, di->path);
    fprintf(f, ",\"kind\":\"%s\",\"source\":\"%s\",\"files\":%lld,\"fingerprint\":\"%016llx\","
               "\"speakers\":[",
            di->kind, di->source, (long long)ds->n, (unsigned long long)di->fingerprint);
    for (int s = 0; s < ds->n_speakers; s++) {
        if (s)
            fputc(',', f);
        json_str(f, ds->speakers[s]);
    }
    fputs("]}", f);
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

/* --------------------------------------------------------- pruning state */

/* What the step callback records of a tensor's CSP statistics: the last
 * event that removed weights (the cubic schedule's last events often remove
 * none, and their errors read 0), and sums over such events. */
typedef struct csp_record {
    double weight_error, sensing_error; /* at the last event that removed weights */
    int64_t last_step;                  /* its step, -1 before any */
    double sum_weight_error, sum_sensing_error;
    int64_t changing_events;            /* events that removed weights */
    int64_t iterations, damped, not_converged; /* summed over all events */
} csp_record;

typedef struct demo_state {
    const sm_method *method;
    const sm_overrides *ov;
    csp_status (*observe_fn)(csp_pruner *, int32_t, const float *, int64_t, int64_t);
    csp_context *ctx;
    csp_pruner *pruner;
    sp_model *model;
    int32_t index_of[SP_NPARAMS]; /* pruner index of a parameter, or -1 */
    double t_step, t_event, t_observe;
    int64_t calls, events;
    int64_t want_step;            /* step whose csp_pruner_wants_observe() is cached */
    int32_t want;
    int64_t observed_passes;      /* forward passes observed */
    csp_record rec[N_PRUNABLE];
    csp_status error;
    int64_t error_step;
} demo_state;

/* Step callback: after each event, the CSP statistics of every tensor. */
static csp_status record_event(void *user, const csp_pruner *pruner, int64_t step,
                               csp_status status, int32_t event)
{
    demo_state *s = (demo_state *)user;
    if (!event || status != CSP_PRUNED)
        return CSP_OK;
    for (int k = 0; k < N_PRUNABLE; k++) {
        csp_tensor_stats ts;
        csp_tensor_stats_init(&ts, sizeof ts);
        if (csp_pruner_tensor_stats(pruner, s->index_of[prunable[k]], &ts) != CSP_OK)
            continue;
        csp_record *r = &s->rec[k];
        r->iterations += ts.solver_iterations;
        r->damped += ts.rows_damped;
        r->not_converged += ts.rows_not_converged;
        if (ts.last_event == step && ts.weight_error > 0.0) {
            r->weight_error = ts.weight_error;
            r->sensing_error = ts.sensing_error;
            r->last_step = step;
            r->sum_weight_error += ts.weight_error;
            r->sum_sensing_error += ts.sensing_error;
            r->changing_events++;
        }
    }
    return CSP_OK;
}

static void after_step(void *user, int64_t step)
{
    demo_state *s = (demo_state *)user;
    if (!s->pruner || s->error)
        return;
    const double t0 = now_seconds();
    /* The pruning step is the number of optimizer updates done. */
    csp_status st = csp_step(s->pruner, step + 1);
    const double dt = now_seconds() - t0;
    s->t_step += dt;
    s->calls++;
    if (st == CSP_PRUNED) {
        s->events++;
        s->t_event += dt;
    } else if (st < 0) {
        s->error = st;
        s->error_step = step + 1;
    }
}

static void observe(void *user, int which, const float *x, int64_t rows, int64_t cols)
{
    demo_state *s = (demo_state *)user;
    if (!s->pruner || s->error || which < 0 || which >= SP_NPARAMS || s->index_of[which] < 0)
        return;
    const double t0 = now_seconds();
    /* This forward pass is followed by update number calls + 1, and by
     * csp_step(pruner, calls + 1): observe only when the pruner wants it. */
    const int64_t step = s->calls + 1;
    csp_status st = CSP_OK;
    if (s->want_step != step) {
        st = csp_pruner_wants_observe(s->pruner, step, &s->want);
        s->want_step = step;
        s->observed_passes += st == CSP_OK && s->want;
    }
    if (st == CSP_OK && s->want)
        st = s->observe_fn(s->pruner, s->index_of[which], x, rows, cols);
    s->t_observe += now_seconds() - t0;
    if (st < 0) {
        s->error = st;
        s->error_step = step;
    }
}

/* Sparsity of the three pruned matrices, from the weights themselves. */
static double weight_sparsity(const sp_model *m, int64_t *nnz_out, int64_t *numel_out)
{
    int64_t nnz = 0, numel = 0;
    for (int k = 0; k < N_PRUNABLE; k++) {
        const sp_param *p = &m->p[prunable[k]];
        for (int64_t i = 0; i < p->size; i++)
            nnz += p->data[i] != 0.0f;
        numel += p->size;
    }
    if (nnz_out)
        *nnz_out = nnz;
    if (numel_out)
        *numel_out = numel;
    return numel ? 1.0 - (double)nnz / (double)numel : 0.0;
}

static int64_t round_half_even(double x) { return (int64_t)nearbyint(x); }

static int setup_pruner(demo_state *s, const demo_options *o, int64_t total_steps,
                        csp_schedule_options *so, int64_t *n_events, csp_tensor **tensors)
{
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = o->train.seed;
    co.num_threads = o->threads;
    csp_status st = csp_context_create(&s->ctx, &co);
    if (st != CSP_OK) {
        fprintf(stderr, "csp_context_create: %s\n", csp_status_str(st));
        return -1;
    }
    csp_schedule_options_init(so, sizeof *so);
    so->kind = CSP_SCHEDULE_POLYNOMIAL;
    so->initial_sparsity = o->initial_sparsity;
    so->final_sparsity = o->sparsity;
    so->exponent = o->exponent;
    so->begin_step = (int64_t)llround(o->begin_frac * (double)total_steps);
    so->end_step = (int64_t)llround(o->end_frac * (double)total_steps);
    if (so->end_step > total_steps)
        so->end_step = total_steps;
    if (so->begin_step >= so->end_step)
        so->begin_step = so->end_step - 1;
    if (so->begin_step < 0) {
        fprintf(stderr, "too few training steps (%lld) for a schedule\n", (long long)total_steps);
        return -1;
    }
    so->frequency = o->frequency;
    if (so->frequency == 0) {
        so->frequency = (int64_t)llround((double)(so->end_step - so->begin_step) /
                                         (double)o->events);
        if (so->frequency < 1)
            so->frequency = 1;
    }
    csp_schedule *sched = NULL;
    sm_config cfg;
    csp_pruner_options_init(&cfg.po, sizeof cfg.po);
    if ((st = csp_schedule_create(&sched, s->ctx, so)) != CSP_OK ||
        (st = sm_configure_pruner(s->method, s->ov, &cfg)) != CSP_OK ||
        (st = csp_pruner_create(&s->pruner, s->ctx, sched, &cfg.po)) != CSP_OK ||
        (st = sm_apply_experimental(s->pruner, -1, &cfg.x)) != CSP_OK) {
        fprintf(stderr, "pruner setup: %s: %s\n", csp_status_name(st),
                csp_context_last_error(s->ctx));
        csp_schedule_free(sched);
        return -1;
    }
    *n_events = 0;
    for (int64_t e = -1;;) {
        if (csp_schedule_next_event(sched, e, &e) != CSP_OK || e < 0 || e > total_steps)
            break;
        ++*n_events;
    }
    csp_schedule_free(sched);
    for (int k = 0; k < N_PRUNABLE; k++) {
        sp_param *p = &s->model->p[prunable[k]];
        int64_t shape[2] = {p->rows, p->cols};
        float *bufs[3] = {p->data, p->exp_avg, p->exp_avg_sq};
        csp_pruner_tensor_options to;
        sm_experimental tx;
        csp_pruner_tensor_options_init(&to, sizeof to, s->pruner);
        for (int b = 0; b < 3; b++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", p->name,
                     b == 0 ? "" : b == 1 ? ".exp_avg" : ".exp_avg_sq");
            st = csp_tensor_create(&tensors[3 * k + b], s->ctx, bufs[b], CSP_DTYPE_F32, 2,
                                   shape, 0, name);
            if (st != CSP_OK)
                goto fail;
        }
        if ((st = sm_configure_tensor(s->method, s->ov, prunable[k], &to, &tx)) != CSP_OK)
            goto fail;
        int32_t index = -1;
        if ((st = csp_pruner_add_tensor(s->pruner, tensors[3 * k], &to, &index)) != CSP_OK ||
            (st = sm_apply_experimental(s->pruner, index, &tx)) != CSP_OK ||
            (st = csp_pruner_add_companion(s->pruner, index, tensors[3 * k + 1])) != CSP_OK ||
            (st = csp_pruner_add_companion(s->pruner, index, tensors[3 * k + 2])) != CSP_OK)
            goto fail;
        s->index_of[prunable[k]] = index;
    }
    if ((st = csp_pruner_set_callback(s->pruner, record_event, s)) != CSP_OK)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "pruner setup: %s: %s\n", csp_status_name(st),
            csp_context_last_error(s->ctx));
    return -1;
}

/* ------------------------------------------------------------ final stats */

typedef struct tensor_report {
    const char *name;
    int64_t rows, cols, numel, nnz, expected_nnz; /* expected -1: not checked */
    int64_t nonzero;                               /* nonzero weight values */
    int64_t cols_used; /* columns (inputs) that some kept weight still reads */
    int mask_ok;      /* every pruned position: weight and both moments 0 */
    int64_t dense_bytes, csr_bytes, bitmap_bytes;
    int export_ok;    /* the CSR export decodes back to the weights, bit for bit */
} tensor_report;

static int64_t expected_nnz(int32_t gran, int64_t rows, int64_t cols, double s)
{
    switch (gran) {
    case CSP_GRANULARITY_TENSOR:
        return rows * cols - round_half_even(s * (double)(rows * cols));
    case CSP_GRANULARITY_ROW:
        return rows * (cols - round_half_even(s * (double)cols));
    default:
        return -1;
    }
}

/* Compressed bytes of an unpruned (dense) run, which has no pruner to
 * export: CSR = int32 row pointers (rows + 1), uint16 column indices when
 * cols < 65536 (else int32), float32 values; bitmap = 1 bit per weight
 * (rounded up to bytes) + float32 values. libcsp's exports add a small
 * header to these. */
static void dense_sizes(tensor_report *r)
{
    const int64_t idx = r->cols < 65536 ? 2 : 4;
    r->csr_bytes = 4 * (r->rows + 1) + (idx + 4) * r->nnz;
    r->bitmap_bytes = (r->numel + 7) / 8 + 4 * r->nnz;
    r->export_ok = 1;
}

/* Compressed bytes from libcsp's exports (CSR and bitmap), and a round trip:
 * the CSR export decodes back to the host's weights bit for bit. */
static int export_sizes(const csp_pruner *pruner, csp_context *ctx, int32_t idx,
                        const sp_param *p, tensor_report *r)
{
    csp_export_options eo;
    csp_export_stats es;
    csp_export_options_init(&eo, sizeof eo);
    csp_export_stats_init(&es, sizeof es);
    eo.format = CSP_EXPORT_BITMAP;
    if (csp_pruner_export_stats(pruner, idx, &eo, &es) != CSP_OK)
        return -1;
    r->bitmap_bytes = es.bytes;
    eo.format = CSP_EXPORT_CSR;
    int64_t size = 0;
    if (csp_pruner_export(pruner, idx, &eo, NULL, 0, &size) != CSP_OK)
        return -1;
    void *buf = malloc((size_t)size);
    float *back = (float *)malloc((size_t)p->size * sizeof *back);
    int rc = -1;
    if (buf && back &&
        csp_pruner_export(pruner, idx, &eo, buf, size, &size) == CSP_OK &&
        csp_export_decode(ctx, buf, size, back, CSP_DTYPE_F32, p->cols,
                          p->size * (int64_t)sizeof *back) == CSP_OK) {
        r->csr_bytes = size;
        r->export_ok = memcmp(back, p->data, (size_t)p->size * sizeof *back) == 0;
        rc = 0;
    }
    free(buf);
    free(back);
    return rc;
}

static int report_tensors(const demo_state *s, const demo_options *o, tensor_report *rep)
{
    for (int k = 0; k < N_PRUNABLE; k++) {
        const sp_param *p = &s->model->p[prunable[k]];
        tensor_report *r = &rep[k];
        memset(r, 0, sizeof *r);
        r->name = p->name;
        r->rows = p->rows;
        r->cols = p->cols;
        r->numel = p->size;
        r->mask_ok = 1;
        for (int64_t i = 0; i < p->size; i++)
            r->nonzero += p->data[i] != 0.0f;
        if (!s->pruner) {
            r->nnz = r->numel;
            r->expected_nnz = r->numel;
            r->cols_used = r->cols;
        } else {
            int32_t idx = s->index_of[prunable[k]];
            uint8_t *mask = (uint8_t *)malloc((size_t)p->size);
            if (!mask)
                return -1;
            if (csp_pruner_nnz(s->pruner, idx, &r->nnz) != CSP_OK ||
                csp_pruner_mask_bytes(s->pruner, idx, mask, p->size) != CSP_OK) {
                free(mask);
                return -1;
            }
            for (int64_t i = 0; i < p->size; i++)
                if (!mask[i] && (p->data[i] != 0.0f || p->exp_avg[i] != 0.0f ||
                                 p->exp_avg_sq[i] != 0.0f))
                    r->mask_ok = 0;
            for (int64_t c = 0; c < p->cols; c++) {
                int used = 0;
                for (int64_t q = 0; q < p->rows && !used; q++)
                    used = mask[q * p->cols + c];
                r->cols_used += used;
            }
            free(mask);
            r->expected_nnz = expected_nnz(sm_granularity(s->method, s->ov, prunable[k]), p->rows,
                                           p->cols, o->sparsity);
        }
        r->dense_bytes = 4 * r->numel;
        if (!s->pruner)
            dense_sizes(r);
        else if (export_sizes(s->pruner, s->ctx, s->index_of[prunable[k]], p, r) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- CSP stats */

static const char *sensing_name(int32_t k)
{
    switch (k) {
    case CSP_SENSING_IDENTITY: return "identity";
    case CSP_SENSING_GAUSSIAN: return "gaussian";
    case CSP_SENSING_RADEMACHER: return "rademacher";
    case CSP_SENSING_ACTIVATIONS: return "activations";
    case CSP_SENSING_GRAM: return "gram";
    default: return "?";
    }
}

static const char *solver_name(int32_t k)
{
    return k == CSP_SOLVER_OMP     ? "omp"
           : k == CSP_SOLVER_ISTA  ? "ista"
           : k == CSP_SOLVER_FISTA ? "fista"
                                   : "?";
}

static const char *correction_name(int32_t k)
{
    return k == CSP_CORRECTION_NONE    ? "none"
           : k == CSP_CORRECTION_FULL  ? "full"
           : k == CSP_CORRECTION_BLEND ? "blend"
                                       : "?";
}

/* The CSP statistics: printed (json 0) or as the RESULT member "csp". */
static void print_csp_stats(FILE *f, const demo_state *s, int json)
{
    csp_step_stats ss;
    csp_step_stats_init(&ss, sizeof ss);
    if (!s->pruner || csp_pruner_step_stats(s->pruner, &ss) != CSP_OK)
        return;
    if (json) {
        fprintf(f, "\"csp\":{\"overrides\":");
        json_str(f, s->ov->text);
        fprintf(f, ",\"events\":%lld,\"event_s\":%.6g,\"last_event_s\":%.6g,"
                   "\"step_total_s\":%.6g,\"observe_s\":%.6g,\"observed_passes\":%lld,"
                   "\"tensors\":[",
                (long long)ss.events, ss.event_seconds, ss.last_event_seconds,
                ss.total_seconds, s->t_observe, (long long)s->observed_passes);
    } else {
        fprintf(f, "csp_step: %lld events in %.3f s (last %.4f s); observing %.3f s over %lld "
                   "forward passes\n",
                (long long)ss.events, ss.event_seconds, ss.last_event_seconds, s->t_observe,
                (long long)s->observed_passes);
    }
    for (int k = 0; k < N_PRUNABLE; k++) {
        csp_tensor_stats ts;
        csp_tensor_stats_init(&ts, sizeof ts);
        if (csp_pruner_tensor_stats(s->pruner, s->index_of[prunable[k]], &ts) != CSP_OK)
            continue;
        const csp_record *r = &s->rec[k];
        const double n = r->changing_events > 0 ? (double)r->changing_events : 1.0;
        const char *name = s->model->p[prunable[k]].name;
        if (json) {
            fprintf(f, "%s{\"name\":\"%s\",\"sensing\":\"%s\",\"solver\":\"%s\","
                       "\"correction\":\"%s\",\"weight_error\":%.6g,\"sensing_error\":%.6g,"
                       "\"error_step\":%lld,\"mean_weight_error\":%.6g,"
                       "\"mean_sensing_error\":%.6g,\"changing_events\":%lld,"
                       "\"iterations\":%lld,\"rows_damped\":%lld,\"rows_not_converged\":%lld,"
                       "\"event_s\":%.6g,\"total_event_s\":%.6g}",
                    k ? "," : "", name, sensing_name(ts.sensing), solver_name(ts.solver),
                    correction_name(ts.correction), r->weight_error, r->sensing_error,
                    (long long)r->last_step, r->sum_weight_error / n,
                    r->sum_sensing_error / n, (long long)r->changing_events,
                    (long long)r->iterations, (long long)r->damped,
                    (long long)r->not_converged, ts.event_seconds, ts.total_seconds);
        } else {
            fprintf(f, "  %-18s %s/%s/%s: last removing event (step %lld): weight error "
                       "%.4f, sensing error %.4g; mean over %lld such events %.4f / %.4g; "
                       "solver iterations %lld, damped rows %lld; %.3f s in events\n",
                    name, sensing_name(ts.sensing), solver_name(ts.solver),
                    correction_name(ts.correction), (long long)r->last_step, r->weight_error,
                    r->sensing_error, (long long)r->changing_events, r->sum_weight_error / n,
                    r->sum_sensing_error / n, (long long)r->iterations, (long long)r->damped,
                    ts.total_seconds);
        }
    }
    if (json)
        fprintf(f, "]},");
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    demo_options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr, argv[0]);
        return 2;
    }
    if (CSP_CHECK_VERSION() != CSP_OK) {
        fprintf(stderr, "libcsp %s does not match the header %s\n", csp_version_string(),
                CSP_VERSION_STRING);
        return 1;
    }
    if (o.list_methods) {
        for (int i = 0; i < sm_count(); i++) {
            const sm_method *m = sm_at(i);
            printf("METHOD {\"name\":");
            json_str(stdout, m->name);
            printf(",\"prunes\":%s,\"is_csp\":%s,\"available\":%s,\"grid\":%s,\"summary\":",
                   m->prunes ? "true" : "false", m->is_csp ? "true" : "false",
                   m->available ? "true" : "false", m->grid ? "true" : "false");
            json_str(stdout, m->summary);
            printf("}\n");
        }
        return 0;
    }
    const sm_method *method = sm_find(o.method);
    if (!method) {
        fprintf(stderr, "unknown method %s (--list-methods)\n", o.method);
        return 2;
    }
    if (!method->available) {
        fprintf(stderr, "method %s is not available in this libcsp: %s\n", method->name,
                method->summary);
        return 3;
    }
    const double t_start = now_seconds();

    /* Data. */
    data_info di;
    if (resolve_data(&o, &di) != 0)
        return 1;
    sp_dataset ds;
    char err[512];
    if (sp_dataset_load(&ds, di.path, err, sizeof err) != SP_DS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    classify_data(&ds, &di);
    if (o.print_data) {
        printf("DATA ");
        print_data_json(stdout, &ds, &di);
        printf("\n");
        sp_dataset_free(&ds);
        return 0;
    }
    sp_split split;
    int rc;
    const char *fold = NULL;
    if (!strncmp(o.eval, "speaker:", 8)) {
        fold = o.eval + 8;
        int sid = sp_dataset_speaker_id(&ds, fold);
        if (sid < 0) {
            fprintf(stderr, "unknown speaker %s; the speakers are:", fold);
            for (int s = 0; s < ds.n_speakers; s++)
                fprintf(stderr, " %s", ds.speakers[s]);
            fprintf(stderr, "\n");
            sp_dataset_free(&ds);
            return 2;
        }
        rc = sp_split_speaker(&ds, sid, &split);
    } else if (!strcmp(o.eval, "official")) {
        rc = sp_split_official(&ds, &split);
    } else {
        fprintf(stderr, "--eval takes official or speaker:NAME\n");
        sp_dataset_free(&ds);
        return 2;
    }
    if (rc == SP_DS_OK) {
        subsample(split.train, &split.n_train, o.subset);
        subsample(split.test, &split.n_test, o.subset);
    }
    if (rc != SP_DS_OK || split.n_train < 1 || split.n_test < 1) {
        fprintf(stderr, "cannot build the split (train %lld, test %lld)\n",
                (long long)split.n_train, (long long)split.n_test);
        sp_split_free(&split);
        sp_dataset_free(&ds);
        return 1;
    }
    printf("data: %s\n      %s: %lld files, %d speakers; %s: train %lld, test %lld\n",
           kind_words(di.kind), di.path, (long long)ds.n, ds.n_speakers,
           fold ? "leave-one-speaker-out" : "official split", (long long)split.n_train,
           (long long)split.n_test);

    /* Trainer and pruner. */
    demo_state s;
    memset(&s, 0, sizeof s);
    s.method = method;
    s.ov = &o.csp;
    s.observe_fn = method->observe ? method->observe : sm_observe_activations;
    s.want_step = -1;
    for (int k = 0; k < SP_NPARAMS; k++)
        s.index_of[k] = -1;
    for (int k = 0; k < N_PRUNABLE; k++)
        s.rec[k].last_step = -1;
    o.train.after_step = method->prunes ? after_step : NULL;
    o.train.observe = sm_needs_observe(method, &o.csp) ? observe : NULL;
    o.train.user = &s;
    sp_trainer *tr = NULL;
    if (sp_trainer_create(&tr, &o.train, &ds, split.train, split.n_train) != SP_TRAIN_OK) {
        fprintf(stderr, "cannot create the trainer\n");
        sp_split_free(&split);
        sp_dataset_free(&ds);
        return 1;
    }
    s.model = sp_trainer_model(tr);
    const int64_t spe = sp_trainer_steps_per_epoch(tr);
    const int64_t total_steps = spe * o.epochs;
    csp_tensor *tensors[3 * N_PRUNABLE] = {NULL};
    csp_schedule_options so;
    memset(&so, 0, sizeof so);
    int64_t n_events = 0;
    rc = 0;
    if (method->prunes && setup_pruner(&s, &o, total_steps, &so, &n_events, tensors) != 0)
        rc = 1;
    const char *blas_threads = getenv("OPENBLAS_NUM_THREADS");
    printf("model: LSTM(40->%lld) mean-pool Linear(%lld->10); batch %lld, %lld steps/epoch, "
           "%lld epochs, seed %llu\n",
           (long long)o.train.hidden, (long long)o.train.hidden, (long long)o.train.batch,
           (long long)spe, (long long)o.epochs, (unsigned long long)o.train.seed);
    printf("method: %s - %s\n", method->name, method->summary);
    if (o.csp.text[0])
        printf("        with --csp %s\n", o.csp.text);
    if (method->prunes && !rc)
        printf("schedule: polynomial^%g %g -> %g over steps %lld..%lld every %lld "
               "(%lld events) of %lld; W_ih, W_hh, W_out pruned, Adam moments zeroed\n",
               so.exponent, so.initial_sparsity, so.final_sparsity, (long long)so.begin_step,
               (long long)so.end_step, (long long)so.frequency, (long long)n_events,
               (long long)total_steps);
    printf("libcsp %s, %d thread(s); OPENBLAS_NUM_THREADS=%s\n", csp_version_string(),
           (int)o.threads, blas_threads ? blas_threads : "(unset)");
    if (!o.quiet)
        printf("epoch    loss  train_acc  test_acc  sparsity  csp_ms  csp_share  epoch_s\n");

    double train_s = 0.0, eval_s = 0.0, last_loss = 0.0, last_train_acc = 0.0;
    sp_eval_result te;
    memset(&te, 0, sizeof te);
    for (int64_t e = 0; e < o.epochs && !rc; e++) {
        const double csp_before = s.t_step + s.t_observe;
        sp_epoch_stats st;
        if (sp_trainer_run_epoch(tr, &st) != SP_TRAIN_OK) {
            fprintf(stderr, "training failed\n");
            rc = 1;
            break;
        }
        if (s.error) {
            fprintf(stderr, "csp_step(%lld): %s: %s\n", (long long)s.error_step,
                    csp_status_name(s.error), csp_context_last_error(s.ctx));
            rc = 1;
            break;
        }
        train_s += st.seconds;
        last_loss = st.loss;
        last_train_acc = st.acc;
        if (o.quiet && e + 1 < o.epochs)
            continue; /* --quiet evaluates only after the last epoch */
        const double e0 = now_seconds();
        if (sp_trainer_evaluate(tr, split.test, split.n_test, &te) != SP_TRAIN_OK) {
            fprintf(stderr, "evaluation failed\n");
            rc = 1;
            break;
        }
        eval_s += now_seconds() - e0;
        if (!o.quiet) {
            const double csp_epoch = s.t_step + s.t_observe - csp_before;
            printf("%5lld  %6.4f   %6.2f%%   %6.2f%%   %7.4f  %6.1f   %6.2f%%  %7.3f\n",
                   (long long)e + 1, st.loss, 100.0 * st.acc, 100.0 * te.acc,
                   weight_sparsity(s.model, NULL, NULL), 1e3 * csp_epoch,
                   st.seconds > 0 ? 100.0 * csp_epoch / st.seconds : 0.0, st.seconds);
            fflush(stdout);
        }
    }

    tensor_report rep[N_PRUNABLE];
    if (!rc && report_tensors(&s, &o, rep) != 0) {
        fprintf(stderr, "cannot read the masks\n");
        rc = 1;
    }
    if (!rc) {
        int64_t nnz = 0, numel = 0, expect = 0, dense_b = 0, csr_b = 0, bitmap_b = 0;
        int exact = 1, mask_ok = 1, export_ok = 1;
        int64_t bias_bytes = 0;
        for (int k = 0; k < SP_NPARAMS; k++)
            if (!s.model->p[k].prunable)
                bias_bytes += 4 * s.model->p[k].size;
        printf("final: test accuracy %.2f%% (%lld/%lld), error rate %.2f%%\n", 100.0 * te.acc,
               (long long)te.correct, (long long)te.n, 100.0 * (1.0 - te.acc));
        for (int k = 0; k < N_PRUNABLE; k++) {
            const tensor_report *r = &rep[k];
            nnz += r->nnz;
            numel += r->numel;
            dense_b += r->dense_bytes;
            csr_b += r->csr_bytes;
            bitmap_b += r->bitmap_bytes;
            if (r->expected_nnz >= 0) {
                expect += r->expected_nnz;
                exact &= r->nnz == r->expected_nnz;
            } else {
                expect = -1;
            }
            mask_ok &= r->mask_ok;
            export_ok &= r->export_ok;
            printf("  %-20s %4lld x %-4lld nnz %6lld / %6lld  sparsity %.4f%s; inputs read "
                   "%lld/%lld\n",
                   r->name, (long long)r->rows, (long long)r->cols, (long long)r->nnz,
                   (long long)r->numel, 1.0 - (double)r->nnz / (double)r->numel,
                   r->expected_nnz < 0               ? ""
                   : r->nnz == r->expected_nnz ? "  (exact)"
                                               : "  (NOT the expected count)",
                   (long long)r->cols_used, (long long)r->cols);
        }
        if (expect < 0)
            exact = -1;
        printf("  %-20s             nnz %6lld / %6lld  sparsity %.4f; masked weights and "
               "moments zero: %s\n",
               "total", (long long)nnz, (long long)numel, 1.0 - (double)nnz / (double)numel,
               mask_ok ? "yes" : "NO");
        printf("compressed size of the 3 matrices (%s), biases (%lld B) dense:\n"
               "  dense float32            %8lld B\n"
               "  CSR (u16 col, i32 rowptr, f32)  %8lld B  (%.2f%% of dense)\n"
               "  bitmap + f32 values      %8lld B  (%.2f%% of dense)\n",
               s.pruner ? (export_ok ? "libcsp's exports; the CSR export decodes back to the "
                                       "weights bit for bit"
                                     : "libcsp's exports; the CSR round trip DIFFERS")
                        : "unpruned: computed by speech_demo",
               (long long)bias_bytes, (long long)dense_b, (long long)csr_b,
               100.0 * (double)csr_b / (double)dense_b, (long long)bitmap_b,
               100.0 * (double)bitmap_b / (double)dense_b);
        const double total_s = now_seconds() - t_start;
        const double csp_s = s.t_step + s.t_observe;
        printf("time: %.2f s in all, training %.2f s, evaluation %.2f s; csp_step %.3f s "
               "(%.2f%% of training; %lld events %.3f s, %lld mask re-applies %.3f s)\n",
               total_s, train_s, eval_s, csp_s, train_s > 0 ? 100.0 * csp_s / train_s : 0.0,
               (long long)s.events, s.t_event, (long long)(s.calls - s.events),
               s.t_step - s.t_event);
        print_csp_stats(stdout, &s, 0);
        printf("data used: %s (%s)\n", kind_words(di.kind), di.path);
        uint64_t digest = 0;
        if (s.pruner)
            csp_pruner_digest(s.pruner, &digest);

        printf("RESULT {\"method\":");
        json_str(stdout, method->name);
        printf(",\"is_csp\":%s,\"sparsity\":%.17g,\"seed\":%llu,\"eval\":",
               method->is_csp ? "true" : "false", method->prunes ? o.sparsity : 0.0,
               (unsigned long long)o.train.seed);
        json_str(stdout, o.eval);
        printf(",\"epochs\":%lld,\"hidden\":%lld,\"batch\":%lld,\"subset\":%lld,"
               "\"steps\":%lld,\"test_n\":%lld,\"test_correct\":%lld,\"test_acc\":%.17g,"
               "\"test_err\":%.17g,\"test_loss\":%.17g,\"train_loss\":%.17g,\"train_acc\":%.17g,",
               (long long)o.epochs, (long long)o.train.hidden, (long long)o.train.batch,
               (long long)o.subset, (long long)total_steps, (long long)te.n,
               (long long)te.correct, te.acc, 1.0 - te.acc, te.loss, last_loss, last_train_acc);
        printf("\"schedule\":{\"begin_step\":%lld,\"end_step\":%lld,\"frequency\":%lld,"
               "\"events\":%lld,\"exponent\":%g,\"initial_sparsity\":%g},",
               (long long)so.begin_step, (long long)so.end_step, (long long)so.frequency,
               (long long)n_events, so.exponent, so.initial_sparsity);
        printf("\"tensors\":[");
        for (int k = 0; k < N_PRUNABLE; k++) {
            const tensor_report *r = &rep[k];
            printf("%s{\"name\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"numel\":%lld,\"nnz\":%lld,"
                   "\"expected_nnz\":%lld,\"nonzero_values\":%lld,\"cols_used\":%lld,"
                   "\"mask_ok\":%s,\"csr_bytes\":%lld,\"bitmap_bytes\":%lld}",
                   k ? "," : "", r->name, (long long)r->rows, (long long)r->cols,
                   (long long)r->numel, (long long)r->nnz, (long long)r->expected_nnz,
                   (long long)r->nonzero, (long long)r->cols_used, r->mask_ok ? "true" : "false",
                   (long long)r->csr_bytes, (long long)r->bitmap_bytes);
        }
        printf("],\"nnz\":%lld,\"numel\":%lld,\"expected_nnz\":%lld,\"sparsity_achieved\":%.17g,"
               "\"sparsity_exact\":%s,\"mask_ok\":%s,",
               (long long)nnz, (long long)numel, (long long)expect,
               1.0 - (double)nnz / (double)numel,
               exact < 0 ? "null" : exact ? "true" : "false", mask_ok ? "true" : "false");
        printf("\"bytes\":{\"dense\":%lld,\"csr\":%lld,\"bitmap\":%lld,\"biases\":%lld,"
               "\"source\":\"%s\",\"export_roundtrip\":%s},",
               (long long)dense_b, (long long)csr_b, (long long)bitmap_b, (long long)bias_bytes,
               s.pruner ? "libcsp" : "speech_demo", export_ok ? "true" : "false");
        printf("\"time\":{\"total_s\":%.6g,\"train_s\":%.6g,\"eval_s\":%.6g,\"csp_s\":%.6g,"
               "\"csp_event_s\":%.6g,\"csp_share\":%.6g,\"events\":%lld,\"csp_calls\":%lld},",
               total_s, train_s, eval_s, csp_s, s.t_event, train_s > 0 ? csp_s / train_s : 0.0,
               (long long)s.events, (long long)s.calls);
        print_csp_stats(stdout, &s, 1);
        printf("\"digest\":\"%016llx\",\"libcsp\":\"%s\",\"threads\":%d,\"blas_threads\":",
               (unsigned long long)digest, csp_version_string(), (int)o.threads);
        json_str(stdout, blas_threads ? blas_threads : "");
        printf(",\"data\":");
        print_data_json(stdout, &ds, &di);
        printf("}\n");
    }

    csp_pruner_free(s.pruner);
    for (int k = 0; k < 3 * N_PRUNABLE; k++)
        csp_tensor_free(tensors[k]);
    csp_context_free(s.ctx);
    sp_trainer_free(tr);
    sp_split_free(&split);
    sp_dataset_free(&ds);
    return rc;
}
