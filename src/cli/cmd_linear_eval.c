// sslc linear-eval: a linear probe on a frozen encoder (or on raw pixels).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/dist/dist.h"
#include "src/eval/logreg.h"
#include "src/eval/metrics.h"
#include "src/eval/probe.h"

typedef struct options {
    const char *ckpt, *adapter, *arch, *features, *solver, *out, *results, *name;
    sslc_cli_labels labels;
    int64_t width, seed, max_iter, epochs, sgd_batch, batch, threads, history;
    double l2, holdout, tol, lr, momentum;
    bool cifar_stem, nesterov, augment;
} options;

static size_t make_args(sslc_arg *a, options *o)
{
    const sslc_arg encoder[] = {
        {"ckpt", SSLC_ARG_STRING, &o->ckpt, "encoder: checkpoint file or run folder, or 'random' (random initialisation)", NULL, 0, 0},
        {"adapter", SSLC_ARG_STRING, &o->adapter, "adapter file (finetune --out DIR/adapter.h5) to fold into the --ckpt encoder, its base", NULL, 0, 0},
        {"features", SSLC_ARG_CHOICE, &o->features, "probe the encoder's pooled features, or the raw pixels", "encoder|pixels", 0, 0},
        {"arch", SSLC_ARG_CHOICE, &o->arch, "--ckpt random: encoder", "resnet18|resnet34|resnet50", 0, 0},
        {"width", SSLC_ARG_INT, &o->width, "--ckpt random: base width", NULL, 1, 1024},
        {"cifar-stem", SSLC_ARG_FLAG, &o->cifar_stem, "--ckpt random: 3x3 stem without max pool", NULL, 0, 0},
    };
    const sslc_arg probe[] = {
        {"seed", SSLC_ARG_INT, &o->seed, "seed of the subset, the held-out split and SGD", NULL, 0, 1LL << 62},
        {"solver", SSLC_ARG_CHOICE, &o->solver, "full-batch L-BFGS or mini-batch SGD (Nesterov, cosine)", "lbfgs|sgd", 0, 0},
        {"l2", SSLC_ARG_FLOAT, &o->l2, "L2 strength on the weights (auto: chosen on a held-out part of the subset)", NULL, 0, 100},
        {"holdout", SSLC_ARG_FLOAT, &o->holdout, "fraction of each class held out to choose --l2", NULL, 0.01, 0.5},
        {"max-iter", SSLC_ARG_INT, &o->max_iter, "L-BFGS iterations", NULL, 1, 1000000},
        {"tol", SSLC_ARG_FLOAT, &o->tol, "L-BFGS: stop when max |gradient| is below this", NULL, 0, 1},
        {"history", SSLC_ARG_INT, &o->history, "L-BFGS correction pairs", NULL, 1, 1000},
        {"epochs", SSLC_ARG_INT, &o->epochs, "SGD epochs", NULL, 1, 1000000},
        {"lr", SSLC_ARG_FLOAT, &o->lr, "SGD peak learning rate (cosine to 0)", NULL, 0, 100},
        {"momentum", SSLC_ARG_FLOAT, &o->momentum, "SGD momentum", NULL, 0, 0.9999},
        {"nesterov", SSLC_ARG_FLAG, &o->nesterov, "SGD Nesterov momentum", NULL, 0, 0},
        {"sgd-batch", SSLC_ARG_INT, &o->sgd_batch, "SGD mini-batch", NULL, 1, 1 << 24},
        {"augment", SSLC_ARG_FLAG, &o->augment, "MoCo's protocol: fresh crop + flip features every SGD epoch (implies --solver sgd)", NULL, 0, 0},
        {"batch", SSLC_ARG_INT, &o->batch, "feature-extraction batch", NULL, 1, 1 << 20},
        {"threads", SSLC_ARG_INT, &o->threads, "threads (0: all cores)", NULL, 0, 1024},
        {"out", SSLC_ARG_STRING, &o->out, "folder for metrics.json, confusion.csv, subset.txt (empty: none)", NULL, 0, 0},
        {"results", SSLC_ARG_STRING, &o->results, "append a JSON line with the result to this file", NULL, 0, 0},
        {"name", SSLC_ARG_STRING, &o->name, "a label for this result in --results", NULL, 0, 0},
    };
    size_t n = sizeof encoder / sizeof encoder[0];
    memcpy(a, encoder, sizeof encoder);
    n += sslc_cli_label_args(a + n, &o->labels);
    memcpy(a + n, probe, sizeof probe);
    return n + sizeof probe / sizeof probe[0];
}

int sslc_cmd_linear_eval(int argc, char **argv)
{
    static const sslc_command_help help = {
        "linear-eval", "sslc linear-eval --ckpt CKPT [options]",
        "Linear evaluation of a frozen encoder (SimCLR / MoCo protocol): pooled features\n"
        "of a class-balanced labelled subset, extracted once in eval mode (batch-norm\n"
        "running statistics, never updated: checked unchanged at the end), standardised;\n"
        "a multinomial logistic regression whose L2 strength is chosen on a held-out 10%\n"
        "of the subset, refitted on all of it; top-1 / top-5, per-class accuracy and the\n"
        "confusion matrix on the test set. --ckpt random probes a randomly initialised\n"
        "encoder, --features pixels the raw pixels (the baselines of the results table)."};
    options o = {.ckpt = "", .adapter = "", .arch = "resnet18", .features = "encoder", .solver = "lbfgs",
                 .out = "", .results = "", .name = "", .labels = SSLC_CLI_LABELS_DEFAULT,
                 .width = 32, .seed = 0, .max_iter = 1000, .epochs = 100,
                 .sgd_batch = 256, .batch = 512, .history = 10, .l2 = NAN,
                 .holdout = 0.1, .tol = 1e-5, .lr = 0.1, .momentum = 0.9, .cifar_stem = true,
                 .nesterov = true};
    sslc_arg args[48];
    size_t n_args = make_args(args, &o);
    int st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st)
        return sslc_cli_fail("linear-eval", st);
    sslc_set_threads((int)o.threads);
    bool pixels = !strcmp(o.features, "pixels");
    if (o.augment)
        o.solver = "sgd";
    sslc_dataset *train = NULL, *test = NULL;
    sslc_encoder enc = {0};
    sslc_params snapshot = {0};
    sslc_subset subset = {0};
    sslc_logreg lr = {0};
    sslc_metrics met = {0};
    sslc_features ftr = {0}, fte = {0};
    float *scores = NULL;
    char *config_text = NULL;
    char method[64] = "pixels";
    const double start = sslc_now();

    sslc_cli_encoder_args ea = {o.ckpt, o.arch, o.width, o.cifar_stem, (uint64_t)o.seed, o.adapter, 0, NULL, 0};
    int64_t size;
    if ((st = sslc_cli_setup(&train, &test, pixels ? NULL : &enc, &size, method, sizeof method,
                             &o.labels, &ea)))
        goto done;
    const int channels = sslc_dataset_channels(train);
    const int64_t classes = sslc_dataset_num_classes(train);
    if (!pixels && (st = sslc_params_clone(&snapshot, enc.params)))
        goto done;
    sslc_recipe eval_recipe, aug_recipe;
    if ((st = sslc_cli_eval_recipe(&eval_recipe, size, channels)) ||
        (st = sslc_cli_supervised_recipe(&aug_recipe, size, channels)))
        goto done;
    const bool writer = sslc_dist_rank() == 0; // under mpirun, rank 0 writes
    if ((o.out[0] && writer && (st = sslc_make_dir(o.out, "output folder"))) ||
        (st = sslc_cli_subset(&subset, train, &o.labels, (uint64_t)o.seed, o.out)))
        goto done;
    if (!(config_text = sslc_args_format(args, n_args))) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_args_print_verbose("linear-eval", config_text);
    if (o.out[0] && writer && (st = sslc_write_text(o.out, "config.txt", config_text)))
        goto done;
    sslc_info("linear-eval: %s features of %lld labelled images (%lld classes), test %lld",
              pixels ? "pixel" : method, (long long)subset.n, (long long)classes,
              (long long)sslc_dataset_count(test));

    // ---- features, once, in eval mode ----
    double ips_test = 0;
    double t0 = sslc_now();
    if ((st = sslc_probe_features(&ftr, pixels ? NULL : &enc, train, subset.indices, subset.n,
                                  &eval_recipe, o.batch, 0, 0, NULL)) ||
        (st = sslc_probe_features(&fte, pixels ? NULL : &enc, test, NULL,
                                  sslc_dataset_count(test), &eval_recipe, o.batch, 0, 0,
                                  &ips_test)) ||
        (st = sslc_cli_check_rows("linear-eval", ftr.n, fte.n)))
        goto done;
    double extract_s = sslc_now() - t0;
    if (!pixels)
        sslc_info("features: %lld + %lld images in %.1f s (encoder forward %.0f images/s)",
                  (long long)ftr.n, (long long)fte.n, extract_s, ips_test);

    // ---- the probe ----
    if ((st = sslc_logreg_create(&lr, ftr.dim, classes)))
        goto done;
    sslc_probe_config pc = {.l2 = isnan(o.l2) ? -1.0 : o.l2, .grid = sslc_logreg_default_grid,
                            .n_grid = SSLC_LOGREG_GRID, .holdout = o.holdout,
                            .seed = (uint64_t)o.seed};
    sslc_logreg_options_default(&pc.solver);
    pc.solver.solver = !strcmp(o.solver, "sgd") ? SSLC_LOGREG_SGD : SSLC_LOGREG_LBFGS;
    pc.solver.max_iter = o.max_iter;
    pc.solver.tol = o.tol;
    pc.solver.history = o.history;
    pc.solver.epochs = o.epochs;
    pc.solver.batch = o.sgd_batch;
    pc.solver.lr = o.lr;
    pc.solver.momentum = o.momentum;
    pc.solver.nesterov = o.nesterov;
    pc.solver.seed = (uint64_t)o.seed;
    sslc_probe_result pr;
    if ((st = sslc_probe_fit(&lr, &pr, ftr.x, ftr.labels, ftr.n, &pc)))
        goto done;
    if (pc.l2 < 0) {
        fprintf(stderr, "held-out top-1 by l2 (%lld fit / %lld held out):", (long long)pr.n_fit,
                (long long)pr.n_val);
        for (int i = 0; i < pr.n_grid; i++)
            fprintf(stderr, " %g:%.1f%%", pc.grid[i], 100.0 * pr.val_top1[i]);
        fprintf(stderr, "\n");
    }
    sslc_info("probe: l2 %g, %s %lld %s, loss %.4f%s (%.1f s)", pr.l2, o.solver,
              (long long)pr.fit.iterations, pc.solver.solver == SSLC_LOGREG_SGD ? "steps" : "iterations",
              pr.fit.loss, pc.solver.solver == SSLC_LOGREG_LBFGS && !pr.fit.converged ? " (not converged: raise --max-iter)" : "",
              pr.seconds);
    if (o.augment) {
        if (pixels) {
            st = sslc_error(SSLC_ERR_INVALID, "--augment needs --features encoder");
            goto done;
        }
        if ((st = sslc_probe_fit_augmented(&lr, &enc, train, subset.indices, subset.n,
                                           &aug_recipe, o.batch, pr.l2, &pc.solver)))
            goto done;
    }
    scores = sslc_malloc((size_t)(fte.n * classes) * sizeof(float));
    if (!scores) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_logreg_standardize(&lr, fte.x, fte.x, fte.n);
    sslc_logreg_scores(&lr, scores, fte.x, fte.n);
    if ((st = sslc_metrics_compute(&met, scores, fte.labels, fte.n, classes)))
        goto done;

    // ---- the encoder must be exactly as loaded ----
    if (!pixels &&
        (memcmp(snapshot.values, enc.params->values, (size_t)enc.params->n_values * sizeof(float)) ||
         memcmp(snapshot.buffers, enc.params->buffers,
                (size_t)enc.params->n_buffers * sizeof(float)))) {
        st = sslc_error(SSLC_ERR_INTERNAL, "linear-eval: the frozen encoder changed (a bug)");
        goto done;
    }
    const char *names[1024] = {0};
    for (int64_t c = 0; c < classes && c < 1024; c++)
        names[c] = sslc_dataset_class_name(test, c);
    sslc_metrics_print(stdout, &met, names);
    double seconds = sslc_now() - start;
    char excluded[256];
    const int64_t ex_train = sslc_dataset_skipped(train) + ftr.skipped;
    const int64_t ex_test = sslc_dataset_skipped(test) + fte.skipped;
    sslc_cli_excluded_text(excluded, sizeof excluded, ex_train, ex_test);
    printf("linear-eval %s: top-1 %.2f%% top-5 %.2f%% with %lld labels (l2 %g%s) in %.1f s\n",
           pixels ? "pixels" : method, 100.0 * met.top1, 100.0 * met.top5, (long long)ftr.n,
           pr.l2, excluded, seconds);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"command\": \"linear-eval\", \"name\": \"%s\", \"encoder\": \"%s\", \"ckpt\": \"%s\", "
             "\"label_fraction\": %g, \"per_class\": %lld, \"labels\": %lld, \"test\": %lld, "
             "\"excluded_train\": %lld, \"excluded_test\": %lld, \"top1\": %.4f, "
             "\"top5\": %.4f, \"l2\": %g, \"solver\": \"%s\", \"augment\": %s, \"seconds\": %.1f, "
             "\"extract_images_per_s\": %.1f}",
             o.name, pixels ? "pixels" : method, pixels ? "" : o.ckpt, o.labels.fraction,
             (long long)o.labels.per_class, (long long)ftr.n, (long long)fte.n,
             (long long)ex_train, (long long)ex_test, met.top1, met.top5, pr.l2, o.solver,
             o.augment ? "true" : "false", seconds, ips_test);
    if (o.results[0] && (st = sslc_cli_append_json(o.results, json)))
        goto done;
    if (o.out[0] && (st = sslc_cli_write_results(o.out, &met, names, json)))
        goto done;
done:
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
    sslc_encoder_destroy(&enc);
    sslc_params_free(&snapshot);
    sslc_subset_free(&subset);
    sslc_logreg_destroy(&lr);
    sslc_metrics_free(&met);
    sslc_features_free(&ftr);
    sslc_features_free(&fte);
    free(scores);
    free(config_text);
    return st ? sslc_cli_fail("linear-eval", st) : 0;
}
