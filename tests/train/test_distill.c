// src/train/distill and sslc distill end to end on a tiny generated
// labelled folder (tests/eval/classes.h): the teacher is left bit for bit
// as it was, the first loss is what a zero-initialised student head must
// score (log K, plus the labelled term's log K times its weight), the loss
// falls and the student learns to agree with its teacher; the CLI writes a
// student that loads like a fine-tuned model, and refuses a teacher without
// a classifier (a pretraining checkpoint) and options that would be ignored.
// The loss itself: tests/losses/ and tests/gradcheck/.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/recipe.h"
#include "data/subset.h"
#include "src/core/threads.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/eval/metrics.h"
#include "src/train/distill.h"
#include "src/train/finetune.h"
#include "tests/eval/classes.h"
#include "tests/harness.h"

static void make_net(sslc_encoder *enc, sslc_mlp *head, uint64_t seed, bool zero_head)
{
    sslc_encoder_config cfg = {.resnet = {.depth = 18, .in_channels = 1, .width = 4, .cifar_stem = true}};
    assert_int_equal(sslc_encoder_create(enc, &cfg), SSLC_OK);
    sslc_encoder_init(enc, seed);
    assert_int_equal(sslc_mlp_create(head, enc->feature_dim, "linear:3"), SSLC_OK);
    sslc_mlp_init(head, seed + 1);
    if (zero_head)
        memset(head->params.values, 0, (size_t)head->params.n_values * sizeof(float));
}

static void recipes(sslc_recipe *eval, sslc_recipe *train)
{
    assert_int_equal(sslc_recipe_defaults(eval, "eval", 16, 1), SSLC_OK);
    eval->eval_resize = 16;
    assert_int_equal(sslc_recipe_finalize(eval), SSLC_OK);
    assert_int_equal(sslc_recipe_defaults(train, "simclr", 16, 1), SSLC_OK);
    train->crop_scale_min = 0.5;
    train->jitter_p = train->jitter_strength = train->gray_p = train->blur_p = 0;
    assert_int_equal(sslc_recipe_finalize(train), SSLC_OK);
}

// Top-1 of enc + head on ds, and (agree_with given) how often its top class
// is agree_with's.
static double top1(sslc_encoder *enc, sslc_mlp *head, const sslc_dataset *ds,
                   const sslc_recipe *eval, sslc_encoder *other, sslc_mlp *other_head, double *agree)
{
    float *scores, *theirs;
    int64_t *labels, count, skipped;
    assert_int_equal(sslc_classifier_scores(&scores, &labels, &count, &skipped, enc, head, ds, eval, 16),
                     SSLC_OK);
    sslc_metrics m;
    assert_int_equal(sslc_metrics_compute(&m, scores, labels, count, head->out_dim), SSLC_OK);
    double t = m.top1;
    sslc_metrics_free(&m);
    free(labels);
    if (other) {
        assert_int_equal(sslc_classifier_scores(&theirs, &labels, &count, &skipped, other,
                                                other_head, ds, eval, 16),
                         SSLC_OK);
        const int64_t K = head->out_dim;
        int64_t same = 0;
        for (int64_t i = 0; i < count; i++) {
            int64_t a = 0, b = 0;
            for (int64_t k = 1; k < K; k++) {
                a = scores[i * K + k] > scores[i * K + a] ? k : a;
                b = theirs[i * K + k] > theirs[i * K + b] ? k : b;
            }
            same += a == b;
        }
        *agree = (double)same / (double)count;
        free(theirs), free(labels);
    }
    free(scores);
    return t;
}

static void distill_learns_from_a_fixed_teacher(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("distill", 40, 20);
    sslc_dataset *train = tc_open_ds(dir, "train"), *test = tc_open_ds(dir, "test");
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_subset all;
    assert_int_equal(sslc_subset_from_dataset(&all, train, 1.0, 0, 0), SSLC_OK);
    // The teacher: supervised on every label (as supervised_baseline_learns).
    sslc_encoder teacher;
    sslc_mlp teacher_head;
    make_net(&teacher, &teacher_head, 6, false);
    sslc_finetune_config fc = {.mode = SSLC_PEFT_FULL, .batch = 24, .epochs = 25, .lr = 0.1,
                               .warmup_epochs = 1, .momentum = 0.9, .nesterov = true,
                               .weight_decay = 5e-4, .seed = 2};
    sslc_finetune_result fr;
    assert_int_equal(sslc_finetune(&fc, &teacher, &teacher_head, train, all.indices, all.n, &aug,
                                   &fr),
                     SSLC_OK);
    double teacher_top1 = top1(&teacher, &teacher_head, test, &eval, NULL, NULL, NULL);
    sslc_params before, before_head;
    assert_int_equal(sslc_params_clone(&before, teacher.params), SSLC_OK);
    assert_int_equal(sslc_params_clone(&before_head, &teacher_head.params), SSLC_OK);

    // Distillation only, the student from scratch with a zero head: its
    // first predictions are uniform, so the first step scores log 3 exactly.
    sslc_encoder student;
    sslc_mlp head;
    make_net(&student, &head, 11, true);
    sslc_distill_config dc = {.batch = 24, .labelled_batch = 6, .epochs = 25, .tau = 1.0,
                              .lr = 0.1, .warmup_epochs = 1, .momentum = 0.9, .nesterov = true,
                              .weight_decay = 5e-4, .seed = 3, .log_every = 1};
    sslc_distill_result res;
    assert_int_equal(sslc_distill(&dc, &teacher, &teacher_head, &student, &head, train, NULL,
                                  NULL, 0, &aug, &res),
                     SSLC_OK);
    double agree, student_top1 = top1(&student, &head, test, &eval, &teacher, &teacher_head, &agree);
    printf("  distill on 3 generated classes: teacher top-1 %.1f%%, student %.1f%%, agreement "
           "%.1f%%, loss %.4f -> %.4f (%lld steps)\n",
           100 * teacher_top1, 100 * student_top1, 100 * agree, res.first_loss, res.last_loss,
           (long long)res.steps);
    assert_int_equal(res.steps, 25 * (120 / 24));
    assert_true(fabs(res.first_loss - log(3.0)) < 1e-5);
    assert_true(res.last_loss < res.first_loss - 0.2);
    assert_true(agree > 0.8 && res.last_agreement > 0.8);
    assert_true(student_top1 > 0.7); // chance is 1/3
    // The teacher ran in eval mode without gradients: nothing of it moved,
    // batch-norm running statistics included.
    assert_memory_equal(before.values, teacher.params->values,
                        (size_t)teacher.params->n_values * sizeof(float));
    assert_memory_equal(before.buffers, teacher.params->buffers,
                        (size_t)teacher.params->n_buffers * sizeof(float));
    assert_memory_equal(before_head.values, teacher_head.params.values,
                        (size_t)teacher_head.params.n_values * sizeof(float));
    sslc_encoder_destroy(&student);
    sslc_mlp_destroy(&head);

    // Plus the labelled term at weight 0.5 on 3 images per class: the zero
    // head scores log 3 on both, 1.5 log 3 in all.
    sslc_subset few;
    assert_int_equal(sslc_subset_from_dataset(&few, train, 0, 3, 0), SSLC_OK);
    make_net(&student, &head, 11, true);
    dc.labelled_weight = 0.5;
    dc.max_steps = 2;
    assert_int_equal(sslc_distill(&dc, &teacher, &teacher_head, &student, &head, train, train,
                                  few.indices, few.n, &aug, &res),
                     SSLC_OK);
    assert_int_equal(res.steps, 2);
    assert_true(fabs(res.first_loss - 1.5 * log(3.0)) < 1e-5);
    // A teacher of other classes is refused before any work.
    sslc_mlp four;
    assert_int_equal(sslc_mlp_create(&four, teacher.feature_dim, "linear:4"), SSLC_OK);
    assert_int_equal(sslc_distill(&dc, &teacher, &four, &student, &head, train, NULL, NULL, 0,
                                  &aug, &res),
                     SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "4 classes"));
    sslc_mlp_destroy(&four);
    sslc_subset_free(&few);
    sslc_encoder_destroy(&student);
    sslc_mlp_destroy(&head);
    sslc_params_free(&before);
    sslc_params_free(&before_head);
    sslc_encoder_destroy(&teacher);
    sslc_mlp_destroy(&teacher_head);
    sslc_subset_free(&all);
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
}

static void run_ok(const char *cmd, const char *log, char *out, size_t cap)
{
    int rc = sslc_test_run_cmd(cmd, log, out, cap);
    if (rc != 0)
        fail_msg("exit %d from %s:\n%s", rc, cmd, out);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    static char buf[1 << 14];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void cli_distill(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("distill-cli", 20, 10);
    static char out[1 << 16];
    char cmd[8000], log[1400], res[1400], path[1600], d[3000];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(res, sizeof res, "%s/results.jsonl", dir);
    snprintf(d, sizeof d, "--unlabeled imagefolder:%s/train --test imagefolder:%s/test", dir, dir);

    // A tiny teacher: the supervised baseline writes the same model.h5
    // (encoder + classifier) as finetune.
    snprintf(cmd, sizeof cmd, "'%s' supervised --width 4 --train imagefolder:%s/train "
             "--test imagefolder:%s/test --max-steps 20 --batch 20 --out '%s/teacher'",
             SSLC_EXE, dir, dir, dir);
    run_ok(cmd, log, out, sizeof out);

    // Distillation only, from scratch: the first step of a zero head scores
    // log 3 = 1.0986.
    snprintf(cmd, sizeof cmd, "'%s' distill --teacher '%s/teacher' %s --max-steps 4 --batch 12 "
             "--log-every 1 --out '%s/student' --results '%s' --name tiny", SSLC_EXE, dir, d, dir,
             res);
    run_ok(cmd, log, out, sizeof out);
    assert_non_null(strstr(out, "loss 1.0986"));
    assert_non_null(strstr(out, "distill random-init: top-1"));
    assert_non_null(strstr(out, "teacher top-1"));
    assert_non_null(strstr(out, "confusion matrix"));
    // The student is a classifier like finetune's: encoder + classifier.
    snprintf(path, sizeof path, "%s/student/model.h5", dir);
    sslc_encoder enc;
    sslc_mlp head;
    sslc_encoder_info info;
    assert_int_equal(sslc_encoder_load(&enc, &info, path, 0), SSLC_OK);
    assert_string_equal(info.method, "distill");
    assert_int_equal(info.step, 4);
    assert_int_equal(enc.net.resnet.config.width, 4); // the teacher's, by default
    assert_int_equal(sslc_classifier_load(&head, path, enc.feature_dim), SSLC_OK);
    assert_int_equal(head.out_dim, 3);
    sslc_mlp_destroy(&head);
    sslc_encoder_destroy(&enc);
    snprintf(path, sizeof path, "%s/student/config.txt", dir);
    assert_non_null(strstr(read_text(path), "--tau=1"));
    snprintf(path, sizeof path, "%s/student/metrics.json", dir);
    char *metrics = read_text(path);
    assert_non_null(strstr(metrics, "\"command\": \"distill\""));
    assert_non_null(strstr(metrics, "\"teacher_top1\": "));
    assert_non_null(strstr(metrics, "\"unlabeled\": 60"));
    snprintf(cmd, sizeof cmd, "'%s' info '%s/student/model.h5'", SSLC_EXE, dir);
    run_ok(cmd, log, out, sizeof out);
    assert_non_null(strstr(out, "classifier"));

    // Self-distillation from the teacher's own encoder, plus the labelled
    // term on 3 images per class.
    snprintf(cmd, sizeof cmd, "'%s' distill --teacher '%s/teacher/model.h5' %s "
             "--train imagefolder:%s/train --init '%s/teacher/model.h5' --tau 0.5 "
             "--labelled-weight 1 --per-class 3 --labelled-batch 6 --max-steps 3 --batch 12 "
             "--results '%s'", SSLC_EXE, dir, d, dir, dir, res);
    run_ok(cmd, log, out, sizeof out);
    assert_non_null(strstr(out, "distill supervised: top-1"));
    assert_non_null(strstr(out, "9 labelled images"));
    char *lines = read_text(res);
    assert_non_null(strstr(lines, "\"name\": \"tiny\""));
    assert_non_null(strstr(lines, "\"labels\": 9"));
    assert_non_null(strstr(lines, "\"tau\": 0.5"));

    // A pretraining checkpoint has no classifier to learn from.
    snprintf(cmd, sizeof cmd, "'%s' pretrain --data imagefolder:%s/train --out '%s/pre' "
             "--width 4 --batch 8 --max-steps 1 --knn-bank none", SSLC_EXE, dir, dir);
    run_ok(cmd, log, out, sizeof out);
    snprintf(cmd, sizeof cmd, "'%s' distill --teacher '%s/pre' %s --max-steps 1", SSLC_EXE, dir, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 1);
    assert_non_null(strstr(out, "sslc distill: --teacher"));
    assert_non_null(strstr(out, "has no classifier"));
    assert_non_null(strstr(out, "/pre/"));
    // Options that would be ignored, or that contradict each other.
    const char *refused[][2] = {
        {"--label-fraction 0.1", "--labelled-weight"},
        {"--init '%s/teacher/model.h5' --width 8", "--arch and --width"},
        {"--tau 0", "tau"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char extra[2000];
        snprintf(extra, sizeof extra, refused[i][0], dir);
        snprintf(cmd, sizeof cmd, "'%s' distill --teacher '%s/teacher' %s %s", SSLC_EXE, dir, d,
                 extra);
        assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
        if (!strstr(out, refused[i][1]))
            fail_msg("%s: no mention of %s:\n%s", extra, refused[i][1], out);
    }
    snprintf(cmd, sizeof cmd, "'%s' distill %s", SSLC_EXE, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
    assert_non_null(strstr(out, "give --teacher"));
    snprintf(cmd, sizeof cmd, "'%s' distill --help", SSLC_EXE);
    run_ok(cmd, log, out, sizeof out);
    assert_non_null(strstr(out, "--labelled-weight"));
}

int main(int argc, char **argv)
{
    sslc_set_threads(2);
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(distill_learns_from_a_fixed_teacher),
        cmocka_unit_test(cli_distill),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 1);
}
