// sslc knn: weighted kNN accuracy of an encoder's features, no training.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/core/log.h"
#include "src/core/threads.h"
#include "src/eval/knn.h"
#include "src/eval/probe.h"

int sslc_cmd_knn(int argc, char **argv)
{
    static const sslc_command_help help = {
        "knn", "sslc knn --ckpt CKPT [options]",
        "A quick check of an encoder without training: features of a labelled bank and of\n"
        "the test images (eval mode), L2-normalised; each test image's k most similar bank\n"
        "images vote with weight exp(similarity / tau) (InstDisc, MoCo's kNN monitor).\n"
        "The bank is the --train images, or the class-balanced subset the label options\n"
        "choose."};
    const char *ckpt = "", *adapter = "", *arch = "resnet18", *results = "", *name = "";
    sslc_cli_labels labels = SSLC_CLI_LABELS_DEFAULT; // the bank: --train, --label-fraction ...
    int64_t width = 32, k = 200, seed = 0, batch = 512, threads = 0;
    double tau = 0.1;
    bool cifar_stem = true;
    const sslc_arg encoder[] = {
        {"ckpt", SSLC_ARG_STRING, &ckpt, "encoder: checkpoint file or run folder, or 'random'", NULL, 0, 0},
        {"adapter", SSLC_ARG_STRING, &adapter, "adapter file (finetune --out DIR/adapter.h5) to fold into the --ckpt encoder, its base", NULL, 0, 0},
        {"arch", SSLC_ARG_CHOICE, &arch, "--ckpt random: encoder", "resnet18|resnet34|resnet50", 0, 0},
        {"width", SSLC_ARG_INT, &width, "--ckpt random: base width", NULL, 1, 1024},
        {"cifar-stem", SSLC_ARG_FLAG, &cifar_stem, "--ckpt random: 3x3 stem without max pool", NULL, 0, 0},
    };
    const sslc_arg knn[] = {
        {"seed", SSLC_ARG_INT, &seed, "seed of the bank subset", NULL, 0, 1LL << 62},
        {"k", SSLC_ARG_INT, &k, "neighbours", NULL, 1, 1 << 24},
        {"tau", SSLC_ARG_FLOAT, &tau, "vote temperature", NULL, 1e-4, 100},
        {"batch", SSLC_ARG_INT, &batch, "feature-extraction batch", NULL, 1, 1 << 20},
        {"threads", SSLC_ARG_INT, &threads, "threads (0: all cores)", NULL, 0, 1024},
        {"results", SSLC_ARG_STRING, &results, "append a JSON line with the result to this file", NULL, 0, 0},
        {"name", SSLC_ARG_STRING, &name, "a label for this result in --results", NULL, 0, 0},
    };
    enum { N_ENCODER = sizeof encoder / sizeof encoder[0], N_KNN = sizeof knn / sizeof knn[0] };
    sslc_arg args[N_ENCODER + SSLC_CLI_LABEL_ARGS + N_KNN];
    memcpy(args, encoder, sizeof encoder);
    size_t n_args = N_ENCODER + sslc_cli_label_args(args + N_ENCODER, &labels);
    memcpy(args + n_args, knn, sizeof knn);
    n_args += N_KNN;
    int st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st)
        return sslc_cli_fail("knn", st);
    sslc_set_threads((int)threads);
    sslc_dataset *train = NULL, *test = NULL;
    sslc_encoder enc = {0};
    sslc_subset bank = {0};
    sslc_features fb = {0}, fq = {0};
    void *ws = NULL;
    char method[64];
    const double start = sslc_now();
    sslc_cli_encoder_args ea = {ckpt, arch, width, cifar_stem, (uint64_t)seed, adapter, 0, NULL, 0};
    int64_t size;
    if ((st = sslc_cli_setup(&train, &test, &enc, &size, method, sizeof method, &labels, &ea)))
        goto done;
    const int channels = sslc_dataset_channels(train);
    const int64_t classes = sslc_dataset_num_classes(train);
    sslc_recipe eval_recipe;
    if ((st = sslc_cli_eval_recipe(&eval_recipe, size, channels)) ||
        (st = sslc_cli_subset(&bank, train, &labels, (uint64_t)seed, NULL)))
        goto done;
    double ips = 0;
    if ((st = sslc_probe_features(&fb, &enc, train, bank.indices, bank.n, &eval_recipe, batch, 0,
                                  0, NULL)) ||
        (st = sslc_probe_features(&fq, &enc, test, NULL, sslc_dataset_count(test), &eval_recipe,
                                  batch, 0, 0, &ips)))
        goto done;
    if ((st = sslc_cli_check_rows("knn", fb.n, fq.n)))
        goto done;
    sslc_knn_normalize(fb.x, fb.n, fb.dim);
    sslc_knn_normalize(fq.x, fq.n, fq.dim);
    ws = sslc_aligned_alloc(sslc_knn_workspace_size(fb.n, classes, k));
    double top1 = 0;
    if (!ws) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    if ((st = sslc_knn_classify(NULL, &top1, ws, fq.x, fq.labels, fb.x, fb.labels, fq.n, fb.n,
                                fb.dim, classes, k, (float)tau)))
        goto done;
    double seconds = sslc_now() - start;
    char excluded[256];
    const int64_t ex_train = sslc_dataset_skipped(train) + fb.skipped;
    const int64_t ex_test = sslc_dataset_skipped(test) + fq.skipped;
    sslc_cli_excluded_text(excluded, sizeof excluded, ex_train, ex_test);
    printf("knn %s: top-1 %.2f%% (k %lld, tau %g, bank %lld images, %lld test%s) in %.1f s, "
           "encoder forward %.0f images/s\n",
           method, 100.0 * top1, (long long)k, tau, (long long)fb.n, (long long)fq.n, excluded,
           seconds, ips);
    if (results[0]) {
        char json[768];
        snprintf(json, sizeof json,
                 "{\"command\": \"knn\", \"name\": \"%s\", \"encoder\": \"%s\", \"ckpt\": \"%s\", "
                 "\"label_fraction\": %g, \"labels\": %lld, \"test\": %lld, "
                 "\"excluded_train\": %lld, \"excluded_test\": %lld, \"k\": %lld, "
                 "\"top1\": %.4f, \"seconds\": %.1f, \"extract_images_per_s\": %.1f}",
                 name, method, ckpt, labels.fraction, (long long)fb.n, (long long)fq.n,
                 (long long)ex_train, (long long)ex_test, (long long)k, top1, seconds, ips);
        st = sslc_cli_append_json(results, json);
    }
done:
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
    sslc_encoder_destroy(&enc);
    sslc_subset_free(&bank);
    sslc_features_free(&fb);
    sslc_features_free(&fq);
    free(ws);
    return st ? sslc_cli_fail("knn", st) : 0;
}
