// src/eval, data/subset and losses/xent: label subsets (balanced,
// deterministic, nested, disjoint from the test set, saved and reloaded),
// cross-entropy against PyTorch, the logistic regression probe (PyTorch's
// optimum, separable features, regularisation choice), metrics, and end to
// end: a linear probe leaves the encoder bit-identical, fine-tuning changes
// it, the supervised baseline learns a tiny generated labelled folder, and
// the CLI commands run and fail clearly. The gradients of cross-entropy and
// of the probe's objective: tests/gradcheck/.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/subset.h"
#include "losses/xent.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/eval/loader.h"
#include "src/eval/logreg.h"
#include "src/eval/metrics.h"
#include "src/eval/probe.h"
#include "src/train/finetune.h"
#include "tests/eval/classes.h"
#include "tests/harness.h"

// ---------------------------------------------------------------- subsets

static void subset_balanced_deterministic_nested(void **state)
{
    (void)state;
    const int64_t n = 5000, classes = 10;
    int64_t *labels = malloc((size_t)n * sizeof(int64_t));
    sslc_rng r = sslc_rng_make(5, 0, 0, 0, 0);
    for (int64_t i = 0; i < n; i++) // unequal class sizes
        labels[i] = (int64_t)sslc_rng_below(&r, (uint64_t)classes);
    sslc_subset a, b, c, big;
    assert_int_equal(sslc_subset_balanced(&a, labels, n, classes, 30, 0), SSLC_OK);
    assert_int_equal(sslc_subset_balanced(&b, labels, n, classes, 30, 0), SSLC_OK);
    assert_int_equal(sslc_subset_balanced(&c, labels, n, classes, 30, 1), SSLC_OK);
    assert_int_equal(sslc_subset_balanced(&big, labels, n, classes, 300, 0), SSLC_OK);
    assert_int_equal(a.n, 300);
    assert_memory_equal(a.indices, b.indices, (size_t)a.n * sizeof(int64_t)); // same seed, same images
    int64_t count[10] = {0}, same = 0;
    for (int64_t i = 0; i < a.n; i++) {
        if (i > 0)
            assert_true(a.indices[i] > a.indices[i - 1]); // sorted, no repeats
        count[labels[a.indices[i]]]++;
        for (int64_t j = 0; j < c.n; j++)
            same += c.indices[j] == a.indices[i];
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(count[k], 30);
    assert_true(same < 100); // another seed picks mostly other images
    for (int64_t i = 0; i < a.n; i++) { // 30 per class within 300 per class
        bool found = false;
        for (int64_t j = 0; j < big.n && !found; j++)
            found = big.indices[j] == a.indices[i];
        assert_true(found);
    }
    // A class with too few images is refused by name.
    sslc_subset bad;
    assert_int_equal(sslc_subset_balanced(&bad, labels, n, classes, 100000, 0), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "class 0 has"));
    // The held-out split: balanced, disjoint, covering.
    sslc_subset fit, val;
    assert_int_equal(sslc_subset_split(&fit, &val, &big, labels, classes, 0.1, 3), SSLC_OK);
    assert_int_equal(fit.n + val.n, big.n);
    assert_int_equal(val.n, 300);
    int64_t vc[10] = {0};
    for (int64_t i = 0; i < val.n; i++) {
        vc[labels[val.indices[i]]]++;
        for (int64_t j = 0; j < fit.n; j++)
            assert_true(fit.indices[j] != val.indices[i]);
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(vc[k], 30);
    sslc_subset_free(&a), sslc_subset_free(&b), sslc_subset_free(&c), sslc_subset_free(&big);
    sslc_subset_free(&fit), sslc_subset_free(&val);
    free(labels);
}

static void subset_files_and_test_set(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("subset-files", 20, 10);
    sslc_dataset *train = tc_open_ds(dir, "train"), *test = tc_open_ds(dir, "test");
    sslc_subset s, t, back;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 0.25, 0, 0), SSLC_OK);
    assert_int_equal(s.n, 15); // round(0.25 * 60 / 3) = 5 per class
    assert_int_equal(sslc_subset_from_dataset(&t, train, 0, 4, 0), SSLC_OK);
    assert_int_equal(t.n, 12);
    sslc_subset_free(&t);
    // Disjoint from the test set: no subset image is a test image.
    char a[1024], b[1024];
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t j = 0; j < sslc_dataset_count(test); j++)
            assert_string_not_equal(sslc_dataset_name(train, s.indices[i], a, sizeof a),
                                    sslc_dataset_name(test, j, b, sizeof b));
    char path[1400];
    snprintf(path, sizeof path, "%s/subset.txt", dir);
    assert_int_equal(sslc_subset_save(&s, train, path), SSLC_OK);
    assert_int_equal(sslc_subset_load(&back, train, path), SSLC_OK);
    assert_int_equal(back.n, s.n);
    assert_memory_equal(back.indices, s.indices, (size_t)s.n * sizeof(int64_t));
    sslc_subset_free(&back);
    // The list names train images: applied to the test set it is refused.
    assert_int_equal(sslc_subset_load(&back, test, path), SSLC_ERR_FORMAT);
    assert_non_null(strstr(sslc_error_message(), "another dataset"));
    // 100% takes everything; unlabeled data is refused.
    assert_int_equal(sslc_subset_from_dataset(&t, train, 1.0, 0, 0), SSLC_OK);
    assert_int_equal(t.n, 60);
    sslc_subset_free(&t);
    char spec[1400];
    snprintf(spec, sizeof spec, "folder:%s/train", dir);
    sslc_dataset *unl = NULL;
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    assert_int_equal(sslc_dataset_open(&unl, spec, &opt), SSLC_OK);
    assert_int_equal(sslc_subset_from_dataset(&t, unl, 0.1, 0, 0), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "no labels"));
    sslc_dataset_destroy(unl);
    sslc_subset_free(&s);
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
}

// ---------------------------------------------------------------- cross-entropy

static void xent_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "eval_logreg.h5";
    size_t nl, nlab, ng, n1;
    float *logits = sslc_fixture_floats(file, "xent/logits", &nl);
    float *labf = sslc_fixture_floats(file, "xent/labels", &nlab);
    float *grad = sslc_fixture_floats(file, "xent/grad", &ng);
    float *loss_ref = sslc_fixture_floats(file, "xent/loss", &n1);
    const int64_t N = (int64_t)nlab, K = (int64_t)(nl / nlab);
    int64_t *labels = malloc((size_t)N * sizeof(int64_t));
    for (int64_t i = 0; i < N; i++)
        labels[i] = (int64_t)labf[i];
    float *probs = malloc(nl * sizeof(float)), *d = calloc(nl, sizeof(float));
    double loss;
    int64_t correct;
    assert_int_equal(sslc_xent_forward(&loss, &correct, probs, logits, labels, N, K), SSLC_OK);
    assert_true(fabs(loss - loss_ref[0]) < 1e-5);
    sslc_xent_backward(d, probs, labels, 1.0f, N, K);
    sslc_assert_close("xent grad", d, grad, ng, 1e-6, 1e-4);
    // Accumulates: a second backward doubles it.
    sslc_xent_backward(d, probs, labels, 1.0f, N, K);
    for (size_t i = 0; i < ng; i++)
        grad[i] *= 2;
    sslc_assert_close("xent grad accumulated", d, grad, ng, 1e-6, 1e-4);
    labels[0] = K; // out of range
    assert_int_equal(sslc_xent_forward(&loss, NULL, probs, logits, labels, N, K), SSLC_ERR_INVALID);
    free(logits), free(labf), free(grad), free(loss_ref), free(labels), free(probs), free(d);
}

// ---------------------------------------------------------------- logistic regression

static float *fixture_logreg(sslc_logreg *m, int64_t **y, int64_t *n, double *l2)
{
    const char *file = "eval_logreg.h5";
    size_t nx, ny, nw, one;
    float *x = sslc_fixture_floats(file, "logreg/x", &nx);
    float *yf = sslc_fixture_floats(file, "logreg/y", &ny);
    float *w = sslc_fixture_floats(file, "logreg/w", &nw);
    float *l2f = sslc_fixture_floats(file, "logreg/l2", &one);
    *n = (int64_t)ny;
    int64_t D = (int64_t)(nx / ny), K = (int64_t)(nw / (size_t)D);
    *y = malloc(ny * sizeof(int64_t));
    for (size_t i = 0; i < ny; i++)
        (*y)[i] = (int64_t)yf[i];
    *l2 = l2f[0];
    assert_int_equal(sslc_logreg_create(m, D, K), SSLC_OK);
    free(yf), free(w), free(l2f);
    return x;
}

static void logreg_reaches_pytorch_optimum(void **state)
{
    (void)state;
    sslc_logreg m;
    int64_t *y, n;
    double l2;
    float *x = fixture_logreg(&m, &y, &n, &l2);
    size_t nw, nb, one;
    float *w = sslc_fixture_floats("eval_logreg.h5", "logreg/w", &nw);
    float *b = sslc_fixture_floats("eval_logreg.h5", "logreg/b", &nb);
    float *obj = sslc_fixture_floats("eval_logreg.h5", "logreg/objective", &one);
    for (int solver = 0; solver < 2; solver++) {
        sslc_logreg_options o;
        sslc_logreg_options_default(&o);
        o.solver = solver ? SSLC_LOGREG_SGD : SSLC_LOGREG_LBFGS;
        o.epochs = 400;
        o.batch = 32;
        o.lr = 0.2;
        memset(m.w, 0, nw * sizeof(float));
        memset(m.b, 0, nb * sizeof(float));
        sslc_logreg_fit_info info;
        assert_int_equal(sslc_logreg_fit(&m, x, y, n, l2, &o, &info), SSLC_OK);
        printf("  %s: %lld iterations, final loss %.8f (PyTorch objective %.8f)\n", solver ? "sgd" : "lbfgs",
               (long long)info.iterations, info.loss, (double)obj[0]);
        // The bias is defined up to a common shift: compare centred.
        float bc[16], rc[16];
        double mb = 0, mr = 0;
        for (size_t k = 0; k < nb; k++)
            mb += m.b[k], mr += b[k];
        for (size_t k = 0; k < nb; k++)
            bc[k] = m.b[k] - (float)(mb / nb), rc[k] = b[k] - (float)(mr / nb);
        double tol = solver ? 3e-2 : 2e-3; // SGD ends at the noise of its last steps
        sslc_assert_close(solver ? "sgd W" : "lbfgs W", m.w, w, nw, tol, tol);
        sslc_assert_close(solver ? "sgd b" : "lbfgs b", bc, rc, nb, tol, tol);
        if (!solver) {
            assert_true(info.converged);
            assert_true(fabs(info.loss - obj[0]) < 1e-5);
        }
    }
    free(w), free(b), free(obj), free(x), free(y);
    sslc_logreg_destroy(&m);
}

// Separable clusters: the probe classifies them (nearly) perfectly, and the
// whole protocol (standardise, choose l2 on held-out, refit) works.
static void probe_separable_features(void **state)
{
    (void)state;
    const int64_t n = 600, nt = 1000, D = 32, K = 10;
    float *centre = malloc((size_t)(K * D) * sizeof(float));
    float *x = malloc((size_t)(n * D) * sizeof(float)), *xt = malloc((size_t)(nt * D) * sizeof(float));
    int64_t *y = malloc((size_t)n * sizeof(int64_t)), *yt = malloc((size_t)nt * sizeof(int64_t));
    sslc_rng r = sslc_rng_make(21, 0, 0, 0, 0);
    for (int64_t i = 0; i < K * D; i++)
        centre[i] = (float)(3.0 * sslc_rng_normal(&r));
    for (int64_t i = 0; i < n + nt; i++) {
        int64_t c = i % K;
        float *row = i < n ? x + i * D : xt + (i - n) * D;
        *(i < n ? &y[i] : &yt[i - n]) = c;
        for (int64_t d = 0; d < D; d++) // offset and scale so standardisation matters
            row[d] = 50.0f + 10.0f * (centre[c * D + d] + (float)sslc_rng_normal(&r));
    }
    sslc_logreg m;
    assert_int_equal(sslc_logreg_create(&m, D, K), SSLC_OK);
    sslc_probe_config c = {.l2 = -1, .grid = sslc_logreg_default_grid,
                           .n_grid = SSLC_LOGREG_GRID, .holdout = 0.1, .seed = 0};
    sslc_logreg_options_default(&c.solver);
    sslc_probe_result res;
    assert_int_equal(sslc_probe_fit(&m, &res, x, y, n, &c), SSLC_OK);
    assert_int_equal(res.n_val, 60);
    float *scores = malloc((size_t)(nt * K) * sizeof(float));
    sslc_logreg_standardize(&m, xt, xt, nt);
    sslc_logreg_scores(&m, scores, xt, nt);
    sslc_metrics met;
    assert_int_equal(sslc_metrics_compute(&met, scores, yt, nt, K), SSLC_OK);
    printf("  separable: top-1 %.2f%%, l2 %g\n", 100 * met.top1, res.l2);
    assert_true(met.top1 > 0.99);
    // Labels shuffled: nothing to learn, the held-out choice goes to chance.
    for (int64_t i = 0; i < nt; i++)
        yt[i] = (yt[i] + 1 + (int64_t)sslc_rng_below(&r, K - 1)) % K;
    sslc_metrics_free(&met);
    assert_int_equal(sslc_metrics_compute(&met, scores, yt, nt, K), SSLC_OK);
    assert_true(met.top1 < 0.05);
    sslc_metrics_free(&met);
    sslc_logreg_destroy(&m);
    free(centre), free(x), free(xt), free(y), free(yt), free(scores);
}

static void metrics_by_hand(void **state)
{
    (void)state;
    // 4 images, 6 classes.
    const float s[] = {
        9, 1, 2, 3, 4, 5, // label 0: top-1
        1, 0, 3, 4, 5, 9, // label 1: five classes above it (not top-5)
        0, 0, 5, 0, 0, 0, // label 3: tie with classes 0,1,4,5 -> rank 2 with lower classes first
        1, 1, 1, 1, 1, 1, // label 5: all tied -> argmax 0, rank 6
    };
    const int64_t y[] = {0, 1, 3, 5};
    sslc_metrics m;
    assert_int_equal(sslc_metrics_compute(&m, s, y, 4, 6), SSLC_OK);
    assert_true(fabs(m.top1 - 0.25) < 1e-12);
    // image 2: classes ranked above 3: 2 (5>0), 0, 1 (ties, lower) -> rank 4, in top-5.
    assert_true(fabs(m.top5 - 0.5) < 1e-12); // images 0 and 2
    assert_int_equal(m.confusion[0 * 6 + 0], 1);
    assert_int_equal(m.confusion[1 * 6 + 5], 1);
    assert_int_equal(m.confusion[3 * 6 + 2], 1);
    assert_int_equal(m.confusion[5 * 6 + 0], 1);
    assert_true(isnan(m.per_class[2]));
    assert_true(m.per_class[0] == 1.0 && m.per_class[1] == 0.0);
    sslc_metrics_free(&m);
}

// ---------------------------------------------------------------- e2e on a tiny encoder

static void make_encoder(sslc_encoder *enc, uint64_t seed)
{
    sslc_encoder_config cfg = {.resnet = {.depth = 18, .in_channels = 1, .width = 4, .cifar_stem = true}};
    assert_int_equal(sslc_encoder_create(enc, &cfg), SSLC_OK);
    sslc_encoder_init(enc, seed);
    // Non-trivial running statistics, so "unchanged" means something.
    sslc_rng r = sslc_rng_make(seed, 1, 0, 0, 0);
    for (int64_t i = 0; i < enc->params->n_buffers; i++)
        enc->params->buffers[i] += (float)(0.1 * sslc_rng_uniform(&r));
}

// The encoder of make_encoder(8), saved as dir/enc.h5 (path into ckpt), as
// the CLI tests give it to the commands.
static void save_encoder(sslc_encoder *enc, const char *dir, char *ckpt, size_t cap)
{
    snprintf(ckpt, cap, "%s/enc.h5", dir);
    make_encoder(enc, 8);
    assert_int_equal(sslc_encoder_save(ckpt, enc, NULL, "simclr", "", 16, 0, 0, 0), SSLC_OK);
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

static void linear_eval_leaves_encoder_bit_identical(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("probe-frozen", 30, 10);
    sslc_dataset *train = tc_open_ds(dir, "train");
    sslc_encoder enc;
    make_encoder(&enc, 4);
    sslc_params before;
    assert_int_equal(sslc_params_clone(&before, enc.params), SSLC_OK);
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_subset s;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 0.5, 0, 0), SSLC_OK);
    sslc_features f, fa;
    double ips;
    // Batch 7: several batches and a partial last one.
    assert_int_equal(sslc_probe_features(&f, &enc, train, s.indices, s.n, &eval, 7, 0, 0, &ips),
                     SSLC_OK);
    assert_int_equal(f.dim, enc.feature_dim);
    assert_int_equal(f.n, s.n);
    // Augmented features (MoCo's protocol) do not touch it either.
    assert_int_equal(sslc_probe_features(&fa, &enc, train, s.indices, s.n, &aug, 7, 3, 0, NULL),
                     SSLC_OK);
    sslc_logreg m;
    assert_int_equal(sslc_logreg_create(&m, f.dim, 3), SSLC_OK);
    sslc_probe_config c = {.l2 = -1, .grid = sslc_logreg_default_grid, .n_grid = 5,
                           .holdout = 0.2, .seed = 0};
    sslc_logreg_options_default(&c.solver);
    sslc_probe_result res;
    assert_int_equal(sslc_probe_fit(&m, &res, f.x, f.labels, s.n, &c), SSLC_OK);
    assert_memory_equal(before.values, enc.params->values, (size_t)enc.params->n_values * sizeof(float));
    assert_memory_equal(before.buffers, enc.params->buffers,
                        (size_t)enc.params->n_buffers * sizeof(float));
    // Labels come through in subset order.
    for (int64_t i = 0; i < s.n; i++)
        assert_int_equal(f.labels[i], sslc_dataset_label(train, s.indices[i]));
    sslc_features_free(&f);
    sslc_features_free(&fa);
    sslc_logreg_destroy(&m);
    sslc_subset_free(&s);
    sslc_params_free(&before);
    sslc_encoder_destroy(&enc);
    sslc_dataset_destroy(train);
}

static double test_accuracy(sslc_encoder *enc, sslc_mlp *head, const sslc_dataset *test,
                            const sslc_recipe *eval)
{
    float *scores;
    int64_t *labels, count, skipped;
    assert_int_equal(
        sslc_classifier_scores(&scores, &labels, &count, &skipped, enc, head, test, eval, 16),
        SSLC_OK);
    sslc_metrics m;
    assert_int_equal(sslc_metrics_compute(&m, scores, labels, count, head->out_dim), SSLC_OK);
    double top1 = m.top1;
    sslc_metrics_free(&m);
    free(scores), free(labels);
    return top1;
}

static void finetune_changes_encoder(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("finetune", 10, 4);
    sslc_dataset *train = tc_open_ds(dir, "train");
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_subset s;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 1.0, 0, 0), SSLC_OK);
    for (int mode = 0; mode < 2; mode++) {
        sslc_encoder enc;
        make_encoder(&enc, 5);
        sslc_mlp head;
        assert_int_equal(sslc_mlp_create(&head, enc.feature_dim, "linear:3"), SSLC_OK);
        memset(head.params.values, 0, (size_t)head.params.n_values * sizeof(float));
        sslc_params before;
        assert_int_equal(sslc_params_clone(&before, enc.params), SSLC_OK);
        sslc_finetune_config fc = {.mode = mode ? SSLC_PEFT_BN_HEAD : SSLC_PEFT_FULL,
                                   .batch = 10, .epochs = 2, .lr = 0.05, .momentum = 0.9,
                                   .nesterov = true, .weight_decay = 1e-4, .seed = 1};
        sslc_finetune_result res;
        assert_int_equal(sslc_finetune(&fc, &enc, &head, train, s.indices, s.n, &aug, &res), SSLC_OK);
        assert_int_equal(res.steps, 6);
        // BN running statistics move in both modes (training-mode forward).
        assert_memory_not_equal(before.buffers, enc.params->buffers,
                                (size_t)enc.params->n_buffers * sizeof(float));
        for (int64_t t = 0; t < enc.params->count; t++) {
            const sslc_tensor *x = &enc.params->tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            bool bn = x->flags & SSLC_TENSOR_NO_DECAY;
            bool changed = memcmp(sslc_params_data(&before, &before.tensors[t]),
                                  sslc_params_data(enc.params, x),
                                  (size_t)x->numel * sizeof(float)) != 0;
            if (mode == 0 || bn)
                assert_true(changed);
            else if (changed) // bn-head: convolutions frozen bit for bit
                fail_msg("bn-head mode changed %s", x->name);
        }
        sslc_params_free(&before);
        sslc_encoder_destroy(&enc);
        sslc_mlp_destroy(&head);
    }
    sslc_subset_free(&s);
    sslc_dataset_destroy(train);
}

static void supervised_baseline_learns(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("supervised", 40, 20);
    sslc_dataset *train = tc_open_ds(dir, "train"), *test = tc_open_ds(dir, "test");
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_subset s;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 1.0, 0, 0), SSLC_OK);
    sslc_encoder enc;
    make_encoder(&enc, 6);
    sslc_mlp head;
    assert_int_equal(sslc_mlp_create(&head, enc.feature_dim, "linear:3"), SSLC_OK);
    sslc_mlp_init(&head, 7);
    double before = test_accuracy(&enc, &head, test, &eval);
    sslc_finetune_config fc = {.mode = SSLC_PEFT_FULL, .batch = 24, .epochs = 25, .lr = 0.1,
                               .warmup_epochs = 1, .momentum = 0.9, .nesterov = true,
                               .weight_decay = 5e-4, .seed = 2};
    sslc_finetune_result res;
    assert_int_equal(sslc_finetune(&fc, &enc, &head, train, s.indices, s.n, &aug, &res), SSLC_OK);
    double after = test_accuracy(&enc, &head, test, &eval);
    printf("  supervised on 3 generated classes: test top-1 %.1f%% -> %.1f%%, loss %.3f -> %.3f "
           "(%lld steps)\n",
           100 * before, 100 * after, res.first_loss, res.last_loss, (long long)res.steps);
    assert_true(res.last_loss < res.first_loss);
    assert_true(after > 0.8); // chance is 1/3
    // The trained classifier round-trips through a checkpoint.
    char path[1400];
    snprintf(path, sizeof path, "%s/model.h5", dir);
    assert_int_equal(sslc_encoder_save(path, &enc, &head, "supervised", "", 16, 0, res.steps, 1),
                     SSLC_OK);
    sslc_encoder back;
    sslc_encoder_info info;
    assert_int_equal(sslc_encoder_load(&back, &info, path, 1), SSLC_OK);
    assert_memory_equal(back.params->values, enc.params->values,
                        (size_t)enc.params->n_values * sizeof(float));
    assert_int_equal(info.image_size, 16);
    assert_string_equal(info.method, "supervised");
    sslc_encoder_destroy(&back);
    assert_int_equal(sslc_encoder_load(&back, &info, path, 3), SSLC_ERR_INVALID); // wrong channels
    assert_non_null(strstr(sslc_error_message(), "1-channel"));
    sslc_encoder_destroy(&back);
    sslc_subset_free(&s);
    sslc_encoder_destroy(&enc);
    sslc_mlp_destroy(&head);
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
}

// ---------------------------------------------------------------- the sslc binary

static void cli_commands(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("cli", 20, 10);
    static char out[1 << 16];
    char cmd[6000], log[1400], ckpt[1400], res[1400];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(res, sizeof res, "%s/results.jsonl", dir);
    sslc_encoder enc;
    save_encoder(&enc, dir, ckpt, sizeof ckpt);
    const char *data = "--train imagefolder:%s/train --test imagefolder:%s/test";
    char d[3000];
    snprintf(d, sizeof d, data, dir, dir);

    snprintf(cmd, sizeof cmd, "'%s' linear-eval --ckpt '%s' %s --label-fraction 0.5 --out '%s/le' "
             "--results '%s' --threads 2", SSLC_EXE, ckpt, d, dir, res);
    int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("linear-eval failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "linear-eval simclr: top-1"));
    assert_non_null(strstr(out, "confusion matrix"));
    char path[1600];
    snprintf(path, sizeof path, "%s/le/confusion.csv", dir);
    assert_int_equal(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/le/subset.txt", dir);
    assert_int_equal(access(path, R_OK), 0);

    snprintf(cmd, sizeof cmd, "'%s' linear-eval --features pixels %s --per-class 5 --solver sgd "
             "--epochs 20 --results '%s'", SSLC_EXE, d, res);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("linear-eval pixels failed (%d):\n%s", rc, out);

    snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --mode bn-head --epochs 2 --batch 10 "
             "--out '%s/ft' --results '%s'", SSLC_EXE, ckpt, d, dir, res);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("finetune failed (%d):\n%s", rc, out);
    snprintf(path, sizeof path, "%s/ft/model.h5", dir);
    assert_int_equal(access(path, R_OK), 0);

    snprintf(cmd, sizeof cmd, "'%s' supervised --width 4 %s --max-steps 3 --batch 10 --results '%s'",
             SSLC_EXE, d, res);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("supervised failed (%d):\n%s", rc, out);

    snprintf(cmd, sizeof cmd, "'%s' knn --ckpt '%s/ft/model.h5' %s --k 5 --results '%s'", SSLC_EXE,
             dir, d, res);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("knn failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "knn finetune: top-1"));

    FILE *f = fopen(res, "r");
    assert_non_null(f);
    int lines = 0;
    char line[2048];
    while (fgets(line, sizeof line, f))
        lines += strstr(line, "\"top1\": ") != NULL;
    fclose(f);
    assert_int_equal(lines, 5);

    // Clear errors: a missing checkpoint, unlabeled data, the wrong input.
    snprintf(cmd, sizeof cmd, "'%s' linear-eval --ckpt '%s/none.h5' %s", SSLC_EXE, dir, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 1);
    assert_non_null(strstr(out, "sslc linear-eval: "));
    assert_non_null(strstr(out, "none.h5"));
    snprintf(cmd, sizeof cmd, "'%s' linear-eval --ckpt '%s' --train folder:%s/train --test "
             "imagefolder:%s/test", SSLC_EXE, ckpt, dir, dir);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
    assert_non_null(strstr(out, "has no labels"));
    snprintf(cmd, sizeof cmd, "'%s' finetune %s", SSLC_EXE, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
    assert_non_null(strstr(out, "give --ckpt"));
    sslc_encoder rgb;
    sslc_encoder_config cfg = {.resnet = {.depth = 18, .in_channels = 3, .width = 4, .cifar_stem = true}};
    assert_int_equal(sslc_encoder_create(&rgb, &cfg), SSLC_OK);
    snprintf(path, sizeof path, "%s/rgb.h5", dir);
    assert_int_equal(sslc_encoder_save(path, &rgb, NULL, "simclr", "", 16, 0, 0, 0), SSLC_OK);
    // A 3-channel encoder decodes the same grayscale PNGs as RGB.
    snprintf(cmd, sizeof cmd, "'%s' knn --ckpt '%s' %s --k 5", SSLC_EXE, path, d);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("knn on a 3-channel encoder failed (%d):\n%s", rc, out);
    // Something that is not a checkpoint.
    snprintf(cmd, sizeof cmd, "'%s' knn --ckpt '%s/le/subset.txt' %s", SSLC_EXE, dir, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 1);
    assert_non_null(strstr(out, "sslc knn: checkpoint"));
    assert_non_null(strstr(out, "subset.txt"));
    snprintf(cmd, sizeof cmd, "'%s' linear-eval --help", SSLC_EXE);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 0);
    assert_non_null(strstr(out, "--label-fraction"));
    sslc_encoder_destroy(&rgb);
    sslc_encoder_destroy(&enc);
}

// SimCLRv2's fine-tuning: pretraining with a 3-layer projection head, then
// finetune --from-head-layer K keeps the first K head layers with their
// pretrained weights under a zero classifier. lr 0 leaves the weights as
// loaded, so the saved classifier's first layers equal the checkpoint's
// projector exactly; K beyond the head is refused.
static void finetune_from_head_layer_keeps_pretrained_layers(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("headlayer", 8, 4);
    static char out[1 << 16];
    char cmd[6000], log[1400], d[3000], ckpt[1400], model[1400];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(d, sizeof d, "--train imagefolder:%s/train --test imagefolder:%s/test", dir, dir);
    snprintf(cmd, sizeof cmd, "'%s' pretrain --data imagefolder:%s/train --width 4 --batch 8 "
             "--max-steps 2 --proj-layers 3 --proj-bn --knn-bank none --out '%s/run' "
             "--threads 2", SSLC_EXE, dir, dir);
    int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("pretrain failed (%d):\n%s", rc, out);
    snprintf(ckpt, sizeof ckpt, "%s/run/last.h5", dir);
    sslc_encoder enc;
    sslc_encoder_info info;
    sslc_mlp proj, head;
    assert_int_equal(sslc_encoder_load(&enc, &info, ckpt, 0), SSLC_OK);
    assert_int_equal(sslc_projector_load(&proj, ckpt, enc.feature_dim), SSLC_OK);
    assert_int_equal(sslc_mlp_block_end(&proj, 1), 3);            // Linear, BN, ReLU
    assert_int_equal(sslc_mlp_block_end(&proj, 3), proj.n_layers); // the whole head
    assert_int_equal(sslc_mlp_block_end(&proj, 4), -1);
    for (int k = 1; k <= 3; k++) {
        snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --from-head-layer %d --lr 0 "
                 "--max-steps 1 --batch 8 --out '%s/ft%d' --threads 2", SSLC_EXE, ckpt, d, k, dir,
                 k);
        rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
        if (rc != 0)
            fail_msg("finetune --from-head-layer %d failed (%d):\n%s", k, rc, out);
        snprintf(model, sizeof model, "%s/ft%d/model.h5", dir, k);
        assert_int_equal(sslc_classifier_load(&head, model, enc.feature_dim), SSLC_OK);
        const int kept = sslc_mlp_block_end(&proj, k);
        assert_int_equal(head.n_layers, kept + 1);
        assert_int_equal(head.out_dim, 3);
        for (int64_t t = 0; t < proj.params.count; t++) {
            const sslc_tensor *a = &proj.params.tensors[t];
            if (a->kind != SSLC_TENSOR_PARAM || atoi(a->name) >= kept)
                continue; // batch-norm running statistics move in training mode
            const sslc_tensor *b = sslc_params_find(&head.params, a->name);
            assert_non_null(b);
            assert_memory_equal(sslc_params_data(&proj.params, a),
                                sslc_params_data(&head.params, b),
                                (size_t)a->numel * sizeof(float));
        }
        const sslc_mlp_layer *last = &head.layers[head.n_layers - 1];
        for (int64_t i = 0; i < last->out * last->in; i++)
            assert_true(head.params.values[last->w + i] == 0.0f);
        sslc_mlp_destroy(&head);
    }
    snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --from-head-layer 4 --max-steps 1",
             SSLC_EXE, ckpt, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
    assert_non_null(strstr(out, "fewer Linear layers"));
    // An exported encoder has no projection head to keep.
    snprintf(model, sizeof model, "%s/ft1/model.h5", dir);
    snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --from-head-layer 1 --max-steps 1",
             SSLC_EXE, model, d);
    assert_int_not_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 0);
    assert_non_null(strstr(out, "has no projector"));
    sslc_mlp_destroy(&proj);
    sslc_encoder_destroy(&enc);
}

// Cuts a file to half its length: the header survives (the scan accepts
// it), the pixel data does not (the decoder fails).
static void truncate_half(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
}

// The bad-input rule in evaluation: an image that fails only when decoded,
// in the training and in the test set, is left out with a warning naming it
// and the decoder's reason, counted next to the accuracy and in the results.
static void bad_images_are_excluded_and_counted(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("bad", 8, 6);
    static char out[1 << 16];
    char cmd[6000], log[1400], ckpt[1400], res[1400], path[1600];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(res, sizeof res, "%s/results.jsonl", dir);
    sslc_encoder enc;
    save_encoder(&enc, dir, ckpt, sizeof ckpt);
    snprintf(path, sizeof path, "%s/train/vertical/003.png", dir);
    truncate_half(path);
    snprintf(path, sizeof path, "%s/test/square/001.png", dir);
    truncate_half(path);
    char d[3000];
    snprintf(d, sizeof d, "--train imagefolder:%s/train --test imagefolder:%s/test", dir, dir);

    const char *commands[] = {"linear-eval --l2 0.01", "knn --k 3",
                              "finetune --epochs 1 --batch 6"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s --ckpt '%s' %s --results '%s' --threads 2", SSLC_EXE,
                 commands[i], ckpt, d, res);
        int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
        if (rc != 0)
            fail_msg("%s failed (%d):\n%s", commands[i], rc, out);
        // Named once each, with the decoder's reason.
        assert_non_null(strstr(out, "vertical/003.png"));
        assert_non_null(strstr(out, "square/001.png"));
        assert_non_null(strstr(out, "skipping '"));
        assert_non_null(strstr(out, "file is truncated"));
        if (!strstr(out, "excluded as unreadable: 1 training image, 1 test image"))
            fail_msg("%s: no count of the excluded images:\n%s", commands[i], out);
    }
    // --strict: the same data is refused before any work, naming the files.
    snprintf(cmd, sizeof cmd, "'%s' knn --ckpt '%s' %s --strict", SSLC_EXE, ckpt, d);
    assert_int_not_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 0);
    assert_non_null(strstr(out, "vertical/003.png"));
    assert_null(strstr(out, "knn simclr: top-1"));

    FILE *f = fopen(res, "r");
    assert_non_null(f);
    char line[2048];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        assert_non_null(strstr(line, "\"excluded_train\": 1"));
        assert_non_null(strstr(line, "\"excluded_test\": 1"));
        assert_non_null(strstr(line, "\"test\": 17"));
    }
    fclose(f);
    assert_int_equal(lines, 3);
    sslc_encoder_destroy(&enc);
}

// sslc embed: every image once, in dataset order, with names, labels and
// indices; features equal to torchvision's on the same images
// (scripts/sslc_torch.py embed-check; skipped without torch).
static void embed_writes_dataset_order_and_matches_torchvision(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("embed", 4, 2);
    static char out[1 << 16];
    char cmd[6000], log[1400], ckpt[1400], feats[1400], npy[1400];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(feats, sizeof feats, "%s/features.h5", dir);
    snprintf(npy, sizeof npy, "%s/features.npy", dir);
    sslc_encoder enc;
    save_encoder(&enc, dir, ckpt, sizeof ckpt);
    snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s' --batch 5",
             SSLC_EXE, ckpt, dir, feats);
    int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("embed failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "embed: 12 rows of 32 features"));

    // Rows follow the dataset, and the features are the library's.
    sslc_dataset *ds = tc_open_ds(dir, "train");
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_features f;
    assert_int_equal(sslc_features_extract(&f, &enc, ds, &eval, 7, 0, 0), SSLC_OK);
    hid_t file = H5Fopen(feats, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    float x[12 * 32];
    int64_t labels[12], indices[12];
    assert_true(H5LTread_dataset_float(file, "features", x) >= 0);
    assert_true(H5LTread_dataset(file, "labels", H5T_NATIVE_INT64, labels) >= 0);
    assert_true(H5LTread_dataset(file, "indices", H5T_NATIVE_INT64, indices) >= 0);
    H5Fclose(file);
    assert_int_equal(f.n, 12);
    for (int64_t i = 0; i < 12; i++) {
        assert_int_equal(indices[i], i);
        assert_int_equal(labels[i], sslc_dataset_label(ds, i));
    }
    sslc_assert_close("embed features", x, f.x, 12 * 32, 1e-6, 1e-5);

    // The same rows as .npy.
    snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s' --batch 5",
             SSLC_EXE, ckpt, dir, npy);
    rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("embed --out .npy failed (%d):\n%s", rc, out);
    FILE *fp = fopen(npy, "rb");
    assert_non_null(fp);
    char header[129] = {0};
    float y[12 * 32];
    assert_int_equal(fread(header, 1, 128, fp), 128);
    assert_non_null(strstr(header + 10, "'shape': (12, 32)")); // after magic and version
    assert_int_equal(fread(y, sizeof(float), 12 * 32, fp), 12 * 32);
    fclose(fp);
    assert_memory_equal(x, y, sizeof y);

    // A checkpoint without a projector cannot give projections.
    snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s' --projection",
             SSLC_EXE, ckpt, dir, feats);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 1);
    assert_non_null(strstr(out, "has no projector"));

    if (system("/usr/bin/python3 -c 'import torch, torchvision, h5py' > /dev/null 2>&1") != 0) {
        printf("SKIP-REASON: torch, torchvision or h5py is not importable by /usr/bin/python3\n");
    } else {
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/scripts/sslc_torch.py' embed-check '%s' '%s'",
                 SSLC_SOURCE_DIR, ckpt, feats);
        rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
        printf("  %s", out);
        if (rc != 0)
            fail_msg("torchvision's features differ:\n%s", out);
    }
    sslc_features_free(&f);
    sslc_dataset_destroy(ds);
    sslc_encoder_destroy(&enc);
}

int main(int argc, char **argv)
{
    sslc_set_threads(2);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(subset_balanced_deterministic_nested),
        cmocka_unit_test(subset_files_and_test_set),
        cmocka_unit_test(metrics_by_hand),
        cmocka_unit_test(probe_separable_features),
    };
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(xent_matches_pytorch),
        cmocka_unit_test(logreg_reaches_pytorch_optimum),
    };
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(linear_eval_leaves_encoder_bit_identical),
        cmocka_unit_test(finetune_changes_encoder),
        cmocka_unit_test(supervised_baseline_learns),
        cmocka_unit_test(cli_commands),
        cmocka_unit_test(finetune_from_head_layer_keeps_pretrained_layers),
        cmocka_unit_test(bad_images_are_excluded_and_counted),
        cmocka_unit_test(embed_writes_dataset_order_and_matches_torchvision),
    };
    const sslc_test_group groups[] = {
        SSLC_GROUP("unit", unit),
        SSLC_GROUP("fixture", fixture),
        SSLC_GROUP("e2e", e2e),
    };
    return sslc_test_main(argc, argv, groups, sizeof groups / sizeof groups[0]);
}
