// sslc distill: SimCLRv2's distillation of a fine-tuned teacher into a
// student on unlabeled images (src/train/distill.h), then the student
// scored on the test set like any classifier, beside its teacher.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/cli/recipe_args.h"
#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/core/threads.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/eval/metrics.h"
#include "src/io/checkpoint.h"
#include "src/optim/schedule.h"
#include "src/train/distill.h"

typedef struct options {
    const char *teacher, *unlabeled, *init, *arch, *head_init, *out, *results, *name, *lr_scaling;
    sslc_cli_labels labels;
    int64_t width, seed, batch, labelled_batch, epochs, max_steps, threads, log_every, eval_batch;
    double tau, labelled_weight, minutes, lr, weight_decay, momentum, warmup_epochs;
    bool nesterov;
    sslc_recipe_overrides aug;
} options;

enum { MAX_ARGS = 96 };

static size_t make_args(sslc_arg *a, options *o)
{
    const sslc_arg list[] = {
        {"teacher", SSLC_ARG_STRING, &o->teacher, "the fine-tuned teacher: a model.h5 of sslc finetune / supervised, or its folder", NULL, 0, 0},
        {"unlabeled", SSLC_ARG_STRING, &o->unlabeled, "the images distilled on (labels, if any, are not used)", NULL, 0, 0},
        {"tau", SSLC_ARG_FLOAT, &o->tau, "temperature of the teacher's and the student's softmax (choose it on a validation split)", NULL, 1e-3, 100},
        {"labelled-weight", SSLC_ARG_FLOAT, &o->labelled_weight, "weight of the labelled cross-entropy beside the distillation loss (0: distillation only)", NULL, 0, 1000},
        {"labelled-batch", SSLC_ARG_INT, &o->labelled_batch, "labelled images per step with --labelled-weight (auto: a quarter of --batch)", NULL, 1, 1 << 20},
        {"init", SSLC_ARG_STRING, &o->init, "the student's encoder: a checkpoint (file or run folder; its encoder), or random", NULL, 0, 0},
        {"arch", SSLC_ARG_STRING, &o->arch, "student encoder with --init random: resnet18|resnet34|resnet50 (auto: the teacher's)", NULL, 0, 0},
        {"width", SSLC_ARG_INT, &o->width, "student base width with --init random (auto: the teacher's)", NULL, 1, 1024},
        {"head-init", SSLC_ARG_CHOICE, &o->head_init, "student classifier initialisation (zero: as fine-tuning)", "zero|default", 0, 0},
    };
    const sslc_arg common[] = {
        {"seed", SSLC_ARG_INT, &o->seed, "seed of the subset, initialisation, order and augmentation", NULL, 0, 1LL << 62},
        {"batch", SSLC_ARG_INT, &o->batch, "unlabeled images per step", NULL, 2, 1 << 20},
        {"epochs", SSLC_ARG_INT, &o->epochs, "epochs over the unlabeled images (auto: about 300k images, 1 to 200 epochs)", NULL, 1, 1000000},
        {"minutes", SSLC_ARG_FLOAT, &o->minutes, "time budget: stop after this many minutes, schedule fitted to it (0: off)", NULL, 0, 1e6},
        {"max-steps", SSLC_ARG_INT, &o->max_steps, "stop after this many steps (0: off)", NULL, 0, 1LL << 40},
        {"lr", SSLC_ARG_FLOAT, &o->lr, "base learning rate before scaling (auto: 0.1 from random, 0.05 from a checkpoint)", NULL, 0, 100},
        {"lr-scaling", SSLC_ARG_CHOICE, &o->lr_scaling, "peak lr = base * B/256 (linear), base * sqrt(B) (sqrt), or base", "linear|sqrt|none", 0, 0},
        {"warmup-epochs", SSLC_ARG_FLOAT, &o->warmup_epochs, "linear warmup (auto: 5% of the epochs from random, 0 from a checkpoint)", NULL, 0, 1e6},
        {"weight-decay", SSLC_ARG_FLOAT, &o->weight_decay, "weight decay on weights (auto: 5e-4 from random, 0 from a checkpoint)", NULL, 0, 1},
        {"momentum", SSLC_ARG_FLOAT, &o->momentum, "SGD momentum", NULL, 0, 0.9999},
        {"nesterov", SSLC_ARG_FLAG, &o->nesterov, "Nesterov momentum", NULL, 0, 0},
        {"eval-batch", SSLC_ARG_INT, &o->eval_batch, "test-set batch", NULL, 1, 1 << 20},
        {"threads", SSLC_ARG_INT, &o->threads, "threads (0: all cores)", NULL, 0, 1024},
        {"log-every", SSLC_ARG_INT, &o->log_every, "plain progress lines every N steps", NULL, 1, 1 << 30},
        {"out", SSLC_ARG_STRING, &o->out, "folder for model.h5 (student encoder + classifier), metrics.json, confusion.csv, config.txt (empty: none)", NULL, 0, 0},
        {"results", SSLC_ARG_STRING, &o->results, "append a JSON line with the result to this file", NULL, 0, 0},
        {"name", SSLC_ARG_STRING, &o->name, "a label for this result in --results", NULL, 0, 0},
    };
    size_t n = sizeof list / sizeof list[0];
    memcpy(a, list, sizeof list);
    n += sslc_cli_label_args(a + n, &o->labels);
    memcpy(a + n, common, sizeof common);
    n += sizeof common / sizeof common[0];
    return n + sslc_recipe_args(a + n, MAX_ARGS - n, &o->aug);
}

// Impossible or silently ignored combinations, refused before any work.
static sslc_status check_options(const options *o)
{
    if (!o->teacher[0])
        return sslc_error(SSLC_ERR_INVALID, "give --teacher MODEL (the model.h5 of sslc finetune, "
                                            "or its --out folder)");
    bool from_ckpt = strcmp(o->init, "random") != 0;
    if (!o->init[0])
        return sslc_error(SSLC_ERR_INVALID, "give --init CHECKPOINT (the student's encoder) or "
                                            "--init random");
    if (from_ckpt && (strcmp(o->arch, "auto") != 0 || o->width != SSLC_ARG_AUTO))
        return sslc_error(SSLC_ERR_INVALID, "--arch and --width shape a random student; with "
                                            "--init %s the checkpoint decides them",
                          o->init);
    const sslc_cli_labels def = SSLC_CLI_LABELS_DEFAULT;
    if (o->labelled_weight == 0.0 &&
        (o->labels.fraction != def.fraction || o->labels.per_class != def.per_class ||
         o->labels.subset[0] || o->labels.save_subset[0] || o->labelled_batch != SSLC_ARG_AUTO))
        return sslc_error(SSLC_ERR_INVALID, "--label-fraction, --per-class, --subset, "
                                            "--save-subset and --labelled-batch choose the "
                                            "labelled term: give --labelled-weight W > 0 too, or "
                                            "leave them out");
    return SSLC_OK;
}

// The teacher: encoder and classifier of one checkpoint. A folder is
// finetune's --out (its model.h5), else a run folder as for --ckpt.
static sslc_status load_teacher(sslc_encoder *enc, sslc_mlp *head, int64_t *image_size,
                                const char *spec)
{
    char path[4096];
    sslc_encoder_info info;
    struct stat sb;
    sslc_status st = SSLC_OK;
    int n = snprintf(path, sizeof path, "%s/model.h5", spec);
    if (!(n > 0 && (size_t)n < sizeof path && stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode) &&
          stat(path, &sb) == 0))
        st = sslc_ckpt_resolve(spec, path, sizeof path);
    if (!st && !(st = sslc_encoder_load(enc, &info, path, 0)) &&
        (st = sslc_classifier_load(head, path, enc->feature_dim)))
        sslc_encoder_destroy(enc);
    if (st)
        return sslc_error_prefix(st, "--teacher");
    *image_size = info.image_size;
    return SSLC_OK;
}

// Top-1 of each row of a against b: (count, K) scores each.
static double agreement(const float *a, const float *b, int64_t count, int64_t K)
{
    int64_t same = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t ia = 0, ib = 0;
        for (int64_t k = 1; k < K; k++) {
            ia = a[i * K + k] > a[i * K + ia] ? k : ia;
            ib = b[i * K + k] > b[i * K + ib] ? k : ib;
        }
        same += ia == ib;
    }
    return count > 0 ? (double)same / (double)count : 0.0;
}

int sslc_cmd_distill(int argc, char **argv)
{
    static const sslc_command_help help = {
        "distill", "sslc distill --teacher MODEL [options]",
        "SimCLRv2's distillation (Chen et al. 2020, sec. 2.2): a fine-tuned teacher (the\n"
        "model.h5 of sslc finetune) labels augmented views of unlabeled images with soft\n"
        "class probabilities softmax(logits / tau); a student encoder + linear classifier\n"
        "learns to match them on the same views with the soft cross-entropy, optionally\n"
        "plus --labelled-weight times the cross-entropy on a labelled subset. The student\n"
        "starts from random weights (--arch, --width: the teacher's by default) or from a\n"
        "pretrained encoder (--init CKPT). Views: crop + flip (the 'supervised' recipe);\n"
        "SGD (Nesterov) with warmup + cosine; then the student and the teacher are scored\n"
        "on --test. --out writes the student as model.h5 in finetune's format."};
    const char *cmd = "distill";
    options o = {.teacher = "", .unlabeled = "fashion-mnist:train", .init = "random",
                 .arch = "auto", .head_init = "zero", .out = "", .results = "", .name = "",
                 .lr_scaling = "linear", .labels = SSLC_CLI_LABELS_DEFAULT,
                 .width = SSLC_ARG_AUTO, .seed = 0, .batch = 128,
                 .labelled_batch = SSLC_ARG_AUTO, .epochs = SSLC_ARG_AUTO, .max_steps = 0,
                 .log_every = 20, .eval_batch = 512, .tau = 1.0, .labelled_weight = 0.0,
                 .minutes = 0, .lr = NAN, .weight_decay = NAN, .momentum = 0.9,
                 .warmup_epochs = NAN, .nesterov = true};
    sslc_recipe_overrides_init(&o.aug);
    sslc_arg args[MAX_ARGS];
    size_t n_args = make_args(args, &o);
    int st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st || (st = check_options(&o)))
        return sslc_cli_fail(cmd, st);
    sslc_set_threads((int)o.threads);
    sslc_dataset *unlabeled = NULL, *labelled = NULL, *test = NULL;
    sslc_encoder teacher = {0}, student = {0};
    sslc_mlp teacher_head = {0}, head = {0};
    sslc_subset subset = {0};
    sslc_metrics met = {0}, teacher_met = {0};
    float *scores = NULL, *teacher_scores = NULL;
    int64_t *labels = NULL, *teacher_labels = NULL;
    char *config_text = NULL;
    char method[64];
    const double start = sslc_now();
    const bool from_ckpt = strcmp(o.init, "random") != 0;

    // ---- models and data: the teacher decides channels, classes and view size ----
    int64_t size = 0, student_size = 0;
    if ((st = load_teacher(&teacher, &teacher_head, &size, o.teacher)))
        goto done;
    const int channels = (int)teacher.in_channels;
    const int64_t classes = teacher_head.out_dim;
    if ((st = sslc_cli_open_dataset(&unlabeled, o.unlabeled, channels, o.labels.strict))) {
        st = sslc_error_prefix(st, "--unlabeled");
        goto done;
    }
    if ((st = sslc_cli_open_labelled(&test, o.labels.test, channels, o.labels.strict, "--test")))
        goto done;
    if (sslc_dataset_num_classes(test) != classes) {
        st = sslc_error(SSLC_ERR_INVALID, "the teacher has %lld classes, --test %lld",
                        (long long)classes, (long long)sslc_dataset_num_classes(test));
        goto done;
    }
    if (o.labelled_weight > 0) {
        if (!strcmp(o.labels.train, o.unlabeled) && sslc_dataset_num_classes(unlabeled) >= 2)
            labelled = unlabeled; // the usual case: labels for a few of the same images
        else if ((st = sslc_cli_open_labelled(&labelled, o.labels.train, channels,
                                              o.labels.strict, "--train")))
            goto done;
        if (sslc_dataset_num_classes(labelled) != classes) {
            st = sslc_error(SSLC_ERR_INVALID, "the teacher has %lld classes, --train %lld",
                            (long long)classes, (long long)sslc_dataset_num_classes(labelled));
            goto done;
        }
    }
    if (size <= 0)
        size = sslc_cli_image_size(unlabeled);
    // A random student takes the teacher's shape unless told otherwise (a
    // ViT teacher: its patch, position embedding and image size).
    const sslc_encoder_config tc = sslc_encoder_config_of(&teacher);
    const bool vit_teacher = teacher.kind == SSLC_ENCODER_VIT;
    if (!from_ckpt) {
        if (!strcmp(o.arch, "auto"))
            o.arch = sslc_encoder_arch(&teacher);
        if (o.width == SSLC_ARG_AUTO)
            o.width = vit_teacher ? 32 : tc.resnet.width;
    }
    sslc_cli_encoder_args ea = {o.init, o.arch, o.width, vit_teacher || tc.resnet.cifar_stem,
                                (uint64_t)o.seed, NULL, tc.vit.patch,
                                tc.vit.pos == SSLC_VIT_POS_SINCOS ? "sincos" : "learned", size};
    if ((st = sslc_cli_encoder(&student, &student_size, method, sizeof method, &ea, channels))) {
        st = sslc_error_prefix(st, "--init");
        goto done;
    }
    char spec[32];
    snprintf(spec, sizeof spec, "linear:%lld", (long long)classes);
    if ((st = sslc_mlp_create(&head, student.feature_dim, spec)))
        goto done;
    sslc_mlp_init(&head, (uint64_t)o.seed + 1);
    if (!strcmp(o.head_init, "zero"))
        memset(head.params.values, 0, (size_t)head.params.n_values * sizeof(float));
    sslc_recipe recipe, eval_recipe;
    if ((st = sslc_cli_supervised_recipe(&recipe, size, channels)) ||
        (st = sslc_recipe_overrides_apply(&recipe, &o.aug)) ||
        (st = sslc_cli_eval_recipe(&eval_recipe, size, channels)))
        goto done;
    sslc_recipe_overrides_resolve(&o.aug, &recipe);
    memcpy(eval_recipe.mean, recipe.mean, sizeof recipe.mean);
    memcpy(eval_recipe.std, recipe.std, sizeof recipe.std);
    if (o.out[0] && (st = sslc_make_dir(o.out, "output folder")))
        goto done;
    if (labelled && (st = sslc_cli_subset(&subset, labelled, &o.labels, (uint64_t)o.seed, o.out)))
        goto done;

    // ---- resolve "auto" ----
    const int64_t n_unlabeled = sslc_dataset_count(unlabeled);
    if (o.epochs == SSLC_ARG_AUTO) {
        int64_t e = (300000 + n_unlabeled - 1) / n_unlabeled;
        o.epochs = e > 200 ? 200 : e;
    }
    if (o.labelled_batch == SSLC_ARG_AUTO)
        o.labelled_batch = o.batch / 4 > 2 ? o.batch / 4 : 2;
    if (isnan(o.lr))
        o.lr = from_ckpt ? 0.05 : 0.1;
    if (isnan(o.weight_decay))
        o.weight_decay = from_ckpt ? 0.0 : 5e-4;
    if (isnan(o.warmup_epochs))
        o.warmup_epochs = from_ckpt ? 0.0 : 0.05 * (double)o.epochs;
    sslc_lr_scaling scaling;
    if ((st = sslc_lr_scaling_parse(&scaling, o.lr_scaling)))
        goto done;
    if (!(config_text = sslc_args_format(args, n_args))) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_args_print_verbose(cmd, config_text);
    if (o.out[0] && (st = sslc_write_text(o.out, "config.txt", config_text)))
        goto done;
    char tshape[64], sshape[64];
    sslc_info("distill: teacher %s (%s, %s, %lld classes) -> %s student (%s, %s), "
              "%lld unlabeled images, tau %g, %lld epochs",
              o.teacher, sslc_encoder_arch(&teacher),
              sslc_cli_encoder_shape(tshape, sizeof tshape, &teacher), (long long)classes, method,
              sslc_encoder_arch(&student), sslc_cli_encoder_shape(sshape, sizeof sshape, &student),
              (long long)n_unlabeled, o.tau, (long long)o.epochs);
    if (labelled)
        sslc_info("distill: plus %g x cross-entropy on %lld labelled images, %lld per step",
                  o.labelled_weight, (long long)subset.n, (long long)o.labelled_batch);

    sslc_distill_config dc = {
        .batch = o.batch, .labelled_batch = o.labelled_batch, .epochs = o.epochs,
        .minutes = o.minutes, .max_steps = o.max_steps, .tau = o.tau,
        .labelled_weight = o.labelled_weight,
        .lr = sslc_schedule_scale_lr(o.lr, o.batch < n_unlabeled ? o.batch : n_unlabeled, scaling),
        .warmup_epochs = o.warmup_epochs, .momentum = o.momentum, .nesterov = o.nesterov,
        .weight_decay = o.weight_decay, .seed = (uint64_t)o.seed, .log_every = o.log_every};
    sslc_distill_result res;
    if ((st = sslc_distill(&dc, &teacher, &teacher_head, &student, &head, unlabeled, labelled,
                           subset.indices, subset.n, &recipe, &res)))
        goto done;
    sslc_info("distill: %lld steps (%lld epochs) in %.1f s, %.0f images/s, loss %.4f -> %.4f, "
              "agreement with the teacher %.2f%%",
              (long long)res.steps, (long long)res.epochs, res.seconds, res.images_per_s,
              res.first_loss, res.last_loss, 100.0 * res.last_agreement);

    // ---- the student on the test set, beside its teacher ----
    int64_t count, test_skipped, teacher_count, teacher_skipped;
    if ((st = sslc_classifier_scores(&scores, &labels, &count, &test_skipped, &student, &head, test,
                                     &eval_recipe, o.eval_batch)) ||
        (st = sslc_cli_check_rows(cmd, n_unlabeled - res.skipped, count)) ||
        (st = sslc_metrics_compute(&met, scores, labels, count, classes)) ||
        (st = sslc_classifier_scores(&teacher_scores, &teacher_labels, &teacher_count,
                                     &teacher_skipped, &teacher, &teacher_head, test, &eval_recipe,
                                     o.eval_batch)) ||
        (st = sslc_metrics_compute(&teacher_met, teacher_scores, teacher_labels, teacher_count,
                                   classes)))
        goto done;
    const char *names[1024] = {0};
    for (int64_t c = 0; c < classes && c < 1024; c++)
        names[c] = sslc_dataset_class_name(test, c);
    sslc_metrics_print(stdout, &met, names);
    const double agree = agreement(scores, teacher_scores, count, classes);
    double seconds = sslc_now() - start;
    char excluded[256];
    const int64_t ex_train = sslc_dataset_skipped(unlabeled) +
                             (labelled && labelled != unlabeled ? sslc_dataset_skipped(labelled) : 0) +
                             res.skipped;
    const int64_t ex_test = sslc_dataset_skipped(test) + test_skipped;
    sslc_cli_excluded_text(excluded, sizeof excluded, ex_train, ex_test);
    printf("distill %s: top-1 %.2f%% top-5 %.2f%% (teacher top-1 %.2f%%, agreement %.2f%%), "
           "%lld unlabeled images, %lld labels, %lld steps%s, in %.1f s\n",
           method, 100.0 * met.top1, 100.0 * met.top5, 100.0 * teacher_met.top1, 100.0 * agree,
           (long long)n_unlabeled, (long long)(labelled ? subset.n : 0), (long long)res.steps,
           excluded, seconds);
    char json[2048];
    snprintf(json, sizeof json,
             "{\"command\": \"distill\", \"name\": \"%s\", \"encoder\": \"%s\", \"ckpt\": \"%s\", "
             "\"teacher\": \"%s\", \"tau\": %g, \"labelled_weight\": %g, "
             "\"label_fraction\": %g, \"per_class\": %lld, \"labels\": %lld, \"unlabeled\": %lld, "
             "\"test\": %lld, \"excluded_train\": %lld, \"excluded_test\": %lld, \"top1\": %.4f, "
             "\"top5\": %.4f, \"teacher_top1\": %.4f, \"agreement\": %.4f, \"steps\": %lld, "
             "\"epochs\": %lld, \"train_seconds\": %.1f, \"seconds\": %.1f, "
             "\"images_per_s\": %.1f}",
             o.name, method, from_ckpt ? o.init : "", o.teacher, o.tau, o.labelled_weight,
             labelled ? o.labels.fraction : 0.0, (long long)(labelled ? o.labels.per_class : 0),
             (long long)(labelled ? subset.n : 0), (long long)n_unlabeled, (long long)count,
             (long long)ex_train, (long long)ex_test, met.top1, met.top5, teacher_met.top1, agree,
             (long long)res.steps, (long long)res.epochs, res.seconds, seconds, res.images_per_s);
    if (o.results[0] && (st = sslc_cli_append_json(o.results, json)))
        goto done;
    if (o.out[0]) {
        char path[4200];
        snprintf(path, sizeof path, "%s/model.h5", o.out);
        if ((st = sslc_encoder_save(path, &student, &head, "distill", config_text, size,
                                    (uint64_t)o.seed, res.steps, res.epochs)) ||
            (st = sslc_cli_write_results(o.out, &met, names, json)))
            goto done;
    }
done:
    if (labelled != unlabeled)
        sslc_dataset_destroy(labelled);
    sslc_dataset_destroy(unlabeled);
    sslc_dataset_destroy(test);
    sslc_encoder_destroy(&teacher);
    sslc_encoder_destroy(&student);
    sslc_mlp_destroy(&teacher_head);
    sslc_mlp_destroy(&head);
    sslc_subset_free(&subset);
    sslc_metrics_free(&met);
    sslc_metrics_free(&teacher_met);
    free(scores);
    free(labels);
    free(teacher_scores);
    free(teacher_labels);
    free(config_text);
    return st ? sslc_cli_fail(cmd, st) : 0;
}
