/* train_dense.c - trains the dense speech-digit LSTM on FSDD and prints, per
 * epoch: training loss, running training accuracy, test accuracy and time.
 *
 * Data: Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0),
 * never copied into the repository. Directory: --data DIR, else
 * $CSP_SPEECH_DATA, else <repo root>/../shared/data/fsdd. Without FSDD,
 * make a synthetic set with gen_espeak_digits.sh OUT_DIR and pass --data.
 *
 * Usage: train_dense [--data DIR] [--epochs N] [--seed S] [--hidden H]
 *                    [--batch B] [--bucket K] [--lr LR]
 *                    [--test-speaker NAME]   (leave-one-speaker-out fold;
 *                                             default: official split)
 * Measure single-threaded: OPENBLAS_NUM_THREADS=1 ./train_dense
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "train.h"

static double wall_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--data DIR] [--epochs N] [--seed S] [--hidden H] "
            "[--batch B] [--bucket K] [--lr LR] [--test-speaker NAME]\n",
            prog);
    return 2;
}

int main(int argc, char **argv)
{
    const char *data_flag = NULL, *test_speaker = NULL;
    int64_t epochs = 20;
    sp_train_options opt;
    sp_train_options_init(&opt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage(argv[0]);
        const char *v = argv[++i];
        if (!strcmp(a, "--data"))
            data_flag = v;
        else if (!strcmp(a, "--epochs"))
            epochs = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--hidden"))
            opt.hidden = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            opt.batch = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--bucket"))
            opt.bucket = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--lr"))
            opt.adam.lr = strtof(v, NULL);
        else if (!strcmp(a, "--test-speaker"))
            test_speaker = v;
        else
            return usage(argv[0]);
    }
    if (epochs < 0)
        return usage(argv[0]);

    char dirbuf[4096];
    const char *dir = sp_dataset_find_dir(data_flag, dirbuf, sizeof dirbuf);
    if (!dir) {
        fprintf(stderr,
                "no data: pass --data DIR or set CSP_SPEECH_DATA (FSDD not found "
                "at <repo>/../shared/data/fsdd). Without FSDD, synthesise digits:\n"
                "  examples/speech/gen_espeak_digits.sh build/espeak-digits\n"
                "  %s --data build/espeak-digits\n",
                argv[0]);
        return 1;
    }
    sp_dataset ds;
    char err[512];
    if (sp_dataset_load(&ds, dir, err, sizeof err) != SP_DS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sp_split split;
    int rc;
    if (test_speaker) {
        int sid = sp_dataset_speaker_id(&ds, test_speaker);
        if (sid < 0) {
            fprintf(stderr, "unknown speaker %s\n", test_speaker);
            sp_dataset_free(&ds);
            return 1;
        }
        rc = sp_split_speaker(&ds, sid, &split);
    } else {
        rc = sp_split_official(&ds, &split);
    }
    if (rc != SP_DS_OK || split.n_train < 1 || split.n_test < 1) {
        fprintf(stderr, "cannot build the split (train %lld, test %lld)\n",
                (long long)split.n_train, (long long)split.n_test);
        sp_split_free(&split);
        sp_dataset_free(&ds);
        return 1;
    }
    printf("data %s: %lld utterances, %d speakers, %lld frames (max %lld); "
           "train %lld, test %lld (%s)\n",
           dir, (long long)ds.n, ds.n_speakers, (long long)ds.total_frames,
           (long long)ds.max_frames, (long long)split.n_train,
           (long long)split.n_test, test_speaker ? "speaker fold" : "official split");

    sp_trainer *tr;
    if (sp_trainer_create(&tr, &opt, &ds, split.train, split.n_train) != SP_TRAIN_OK) {
        fprintf(stderr, "cannot create the trainer\n");
        sp_split_free(&split);
        sp_dataset_free(&ds);
        return 1;
    }
    printf("LSTM(40->%lld) mean-pool Linear(%lld->10), batch %lld, bucket %lld, "
           "seed %llu, %lld steps/epoch\n",
           (long long)opt.hidden, (long long)opt.hidden, (long long)opt.batch,
           (long long)opt.bucket, (unsigned long long)opt.seed,
           (long long)sp_trainer_steps_per_epoch(tr));
    printf("epoch  train_loss  train_acc  test_loss  test_acc  train_s  eval_s\n");
    double train_time = 0.0;
    sp_eval_result te = {0, 0, 0.0, 0.0};
    for (int64_t e = 0; e < epochs; e++) {
        sp_epoch_stats st;
        if (sp_trainer_run_epoch(tr, &st) != SP_TRAIN_OK) {
            fprintf(stderr, "training failed\n");
            rc = 1;
            break;
        }
        double e0 = wall_seconds();
        if (sp_trainer_evaluate(tr, split.test, split.n_test, &te) != SP_TRAIN_OK) {
            fprintf(stderr, "evaluation failed\n");
            rc = 1;
            break;
        }
        double eval_s = wall_seconds() - e0;
        train_time += st.seconds;
        printf("%5lld  %10.4f  %8.2f%%  %9.4f  %7.2f%%  %7.3f  %6.3f\n",
               (long long)e + 1, st.loss, 100.0 * st.acc, te.loss,
               100.0 * te.acc, st.seconds, eval_s);
        fflush(stdout);
    }
    if (epochs > 0)
        printf("final test accuracy %.2f%% (%lld/%lld), %.3f s/epoch training\n",
               100.0 * te.acc, (long long)te.correct, (long long)te.n,
               train_time / (double)epochs);
    sp_trainer_free(tr);
    sp_split_free(&split);
    sp_dataset_free(&ds);
    return rc ? 1 : 0;
}
