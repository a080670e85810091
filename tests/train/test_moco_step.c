// src/train/moco.c against MoCo's official builder: two training steps of
// sslc's real step function through the training loop, on a tiny encoder,
// compared with a PyTorch transcription (scripts/make_moco_fixture.py, in
// float64) from the same weights, queue and views: the shuffle-BN
// permutation, the queries and keys, the logits, the loss, every gradient
// of the query encoder and head, the key encoder (parameters and batch-norm
// statistics) after each step's momentum update, the queue and its pointer,
// and the query encoder after the loop's second update. Three cases: plain
// MoCo v2, the symmetric loss, and the cosine momentum schedule.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "src/core/status.h"
#include "src/train/contrastive.h"
#include "src/train/loop.h"
#include "tests/harness.h"

static const char *FILE_NAME = "train_moco.h5";

enum { STEPS = 2 };

// A fixture path; four rotating buffers, so a few can be alive at once.
static const char *at(const char *fmt, ...) SSLC_PRINTF(1, 2);
static const char *at(const char *fmt, ...)
{
    static char buf[4][256];
    static int next;
    char *out = buf[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, sizeof buf[0], fmt, ap);
    va_end(ap);
    return out;
}

static int64_t attr_int(const char *object, const char *name)
{
    return (int64_t)sslc_fixture_attr_double(FILE_NAME, object, name);
}

// ---- the fixture's tensor tables ----------------------------------------------------

// A part of the fixture (group/{values|grads|buffers} with the tensor names in
// the attribute "params" or "buffers"), laid out as sslc's table: out is
// (n_values,) or (n_buffers,) of p, every tensor of that kind written once.
static float *fixture_table(const char *group, const char *dataset, const sslc_params *p)
{
    bool buffers = strcmp(dataset, "buffers") == 0;
    char where[256];
    snprintf(where, sizeof where, "%s/%s", group, dataset);
    size_t n = 0;
    float *flat = sslc_fixture_floats(FILE_NAME, where, &n);
    char *names = sslc_fixture_attr_string(FILE_NAME, group, buffers ? "buffers" : "params");
    // calloc: the table may pad between tensors, as sslc's zeroed storage does.
    float *out = calloc((size_t)(buffers ? p->n_buffers : p->n_values), sizeof *out);
    assert_non_null(out);
    int64_t total = 0;
    for (int64_t i = 0; i < p->count; i++)
        if ((p->tensors[i].kind == SSLC_TENSOR_BUFFER) == buffers)
            total += p->tensors[i].numel;
    size_t offset = 0;
    for (char *save = NULL, *name = strtok_r(names, " ", &save); name;
         name = strtok_r(NULL, " ", &save)) {
        const sslc_tensor *t = sslc_params_find(p, name);
        if (!t)
            fail_msg("fixture %s: sslc's table has no tensor '%s'", where, name);
        if (offset + (size_t)t->numel > n)
            fail_msg("fixture %s: too short for '%s'", where, name);
        if ((t->kind == SSLC_TENSOR_BUFFER) != buffers)
            fail_msg("fixture %s: '%s' is a %s in sslc's table", where, name,
                     buffers ? "parameter" : "buffer");
        memcpy(out + t->offset, flat + offset, (size_t)t->numel * sizeof(float)); // its storage
        offset += (size_t)t->numel;
    }
    if (offset != n || (int64_t)offset != total)
        fail_msg("fixture %s: %zu values for %lld in sslc's table", where, n, (long long)total);
    free(flat);
    free(names);
    return out;
}

// Fails unless every element of mine is within atol + rtol * |torch| of the
// fixture, where atol = atol_scale * (the largest |torch| of the tensor):
// gradients and weights are judged against their own tensor's scale. Prints
// the largest difference and where (tensor name and index).
static void compare_table(const char *what, const sslc_params *p, const float *mine,
                          const float *torch, bool buffers, double atol_scale, double rtol)
{
    double largest = 0.0, worst_excess = -INFINITY;
    const char *largest_name = "", *worst_name = "";
    int64_t largest_at = 0, worst_at = 0;
    for (int64_t i = 0; i < p->count; i++) {
        const sslc_tensor *t = &p->tensors[i];
        if ((t->kind == SSLC_TENSOR_BUFFER) != buffers)
            continue;
        double scale = 0.0;
        for (int64_t k = 0; k < t->numel; k++)
            scale = fmax(scale, fabs((double)torch[t->offset + k]));
        for (int64_t k = 0; k < t->numel; k++) {
            double a = mine[t->offset + k], b = torch[t->offset + k], d = fabs(a - b);
            double excess = d - (atol_scale * scale + rtol * fabs(b));
            if (isnan(d))
                excess = d = INFINITY;
            if (d > largest)
                largest = d, largest_name = t->name, largest_at = k;
            if (excess > worst_excess)
                worst_excess = excess, worst_name = t->name, worst_at = k;
        }
    }
    printf("  %-44s max|diff| %.3g at %s[%lld]\n", what, largest, largest_name,
           (long long)largest_at);
    if (worst_excess > 0.0) {
        const sslc_tensor *t = sslc_params_find(p, worst_name);
        fail_msg("%s: %s[%lld] = %.8g, PyTorch %.8g (atol %.1g x the tensor's largest, rtol %.1g)",
                 what, worst_name, (long long)worst_at, mine[t->offset + worst_at],
                 torch[t->offset + worst_at], atol_scale, rtol);
    }
}

// ---- sslc's MoCo, built as pretraining builds it ---------------------------

typedef struct moco_case {
    const char *name;
    sslc_pretrain_config cfg;
    char head[64];
    sslc_contrastive t;
    int64_t H, C;
    // What each step left, recorded by record_step for the comparisons.
    float *queue_before[STEPS], *queries[STEPS], *keys[STEPS], *grads_enc[STEPS];
    float *grads_head[STEPS], *key_enc[STEPS], *key_buf[STEPS], *key_head[STEPS];
    float *queue_after[STEPS];
    int64_t perm[STEPS][64], queue_ptr[STEPS];
    double loss[STEPS], momentum[STEPS];
    int steps;
} moco_case;

// The configuration of the fixture (its root attributes and the case's).
static void configure(moco_case *m, const char *name)
{
    m->name = name;
    m->H = attr_int("/", "image");
    m->C = attr_int("/", "in_channels");
    int64_t width = attr_int("/", "width"), dim = attr_int("/", "dim");
    snprintf(m->head, sizeof m->head, "linear:%lld,relu,linear:%lld", (long long)(8 * width),
             (long long)dim); // MoCo v2's head on ResNet-18's 8w features
    sslc_optim_config optim = sslc_optim_defaults(SSLC_OPTIM_SGD);
    optim.momentum = (float)sslc_fixture_attr_double(FILE_NAME, "/", "sgd_momentum");
    optim.weight_decay = (float)sslc_fixture_attr_double(FILE_NAME, "/", "weight_decay");
    optim.nesterov = false;
    optim.exclude_no_decay = false; // torch.optim.SGD decays every tensor
    m->cfg = (sslc_pretrain_config){
        .method = "moco", .moco_version = 2,
        .symmetric = attr_int(name, "symmetric") != 0,
        .encoder.resnet = {.depth = (int)attr_int("/", "depth"), .in_channels = m->C, .width = width,
                    .cifar_stem = true},
        .head = m->head, .batch = attr_int("/", "batch"), .epochs = 1, .optim = optim,
        .lr = sslc_fixture_attr_double(FILE_NAME, "/", "lr"), .final_lr = 0.0, .warmup = 0.0,
        .tau = sslc_fixture_attr_double(FILE_NAME, "/", "tau"), .queue = attr_int("/", "queue"),
        .momentum = sslc_fixture_attr_double(FILE_NAME, name, "momentum"),
        .momentum_cosine = attr_int(name, "momentum_cosine") != 0,
        .shuffle_groups = attr_int("/", "shuffle_groups"),
        .seed = (uint64_t)attr_int("/", "seed"), .image_size = m->H};
}

// The contrastive model as pretraining builds it, then the fixture's initial
// weights (copied to the key side, as MoCo starts) and queue.
static void build(moco_case *m)
{
    sslc_contrastive *t = &m->t;
    assert_int_equal(sslc_contrastive_create(t, &m->cfg, m->H, m->H, m->C), SSLC_OK);
    float *v = fixture_table("init/encoder", "values", t->enc.params);
    memcpy(t->enc.params->values, v, (size_t)t->enc.params->n_values * sizeof(float));
    free(v);
    v = fixture_table("init/encoder", "buffers", t->enc.params);
    memcpy(t->enc.params->buffers, v, (size_t)t->enc.params->n_buffers * sizeof(float));
    free(v);
    v = fixture_table("init/projector", "values", &t->head.params);
    memcpy(t->head.params.values, v, (size_t)t->head.params.n_values * sizeof(float));
    free(v);
    assert_int_equal(sslc_params_copy(t->key_enc.params, t->enc.params), SSLC_OK);
    assert_int_equal(sslc_params_copy(&t->key_head.params, &t->head.params), SSLC_OK);
    size_t nq = 0;
    float *queue = sslc_fixture_floats(FILE_NAME, "init/queue", &nq);
    assert_int_equal(nq, (size_t)(m->cfg.queue * t->D));
    memcpy(sslc_queue_data(t->queue), queue, nq * sizeof(float));
    free(queue);
}

static void destroy(moco_case *m)
{
    sslc_contrastive_destroy(&m->t);
    for (int s = 0; s < STEPS; s++) {
        free(m->queue_before[s]), free(m->queries[s]), free(m->keys[s]), free(m->grads_enc[s]);
        free(m->grads_head[s]), free(m->key_enc[s]), free(m->key_buf[s]), free(m->key_head[s]);
        free(m->queue_after[s]);
    }
}

static float *copy_of(const float *x, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    assert_non_null(y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

// ---- the loop's step, recorded ----------------------------------------------------

// sslc_moco_step, then a copy of everything the comparisons need.
static sslc_status record_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                               sslc_step_result *r)
{
    moco_case *m = self;
    sslc_contrastive *t = &m->t;
    const int k = m->steps;
    assert_true(k < STEPS);
    const int64_t K = m->cfg.queue;
    m->queue_before[k] = copy_of(sslc_queue_data(t->queue), K * t->D);
    m->momentum[k] = sslc_moco_momentum(t, s);
    sslc_status st = sslc_moco_step(t, b, s, r);
    if (st)
        return st;
    m->loss[k] = r->loss;
    memcpy(m->perm[k], t->perm, (size_t)t->n_key * sizeof(int64_t));
    m->keys[k] = copy_of(t->keys, t->n_key * t->D);
    m->grads_enc[k] = copy_of(t->enc.params->grads, t->enc.params->n_values);
    m->grads_head[k] = copy_of(t->head.params.grads, t->head.params.n_values);
    m->key_enc[k] = copy_of(t->key_enc.params->values, t->key_enc.params->n_values);
    m->key_buf[k] = copy_of(t->key_enc.params->buffers, t->key_enc.params->n_buffers);
    m->key_head[k] = copy_of(t->key_head.params.values, t->key_head.params.n_values);
    m->queue_after[k] = copy_of(sslc_queue_data(t->queue), K * t->D);
    m->queue_ptr[k] = sslc_queue_pointer(t->queue);
    m->queries[k] = copy_of(t->z, t->per * t->B * t->D); // the head's raw output
    m->steps++;
    return SSLC_OK;
}

// The fixture's views, one batch per step.
typedef struct fixture_source {
    float *views[STEPS];
    int64_t batch, next;
} fixture_source;

static sslc_status source_begin(void *ctx, int64_t epoch, int64_t first)
{
    fixture_source *fs = ctx;
    assert_int_equal(epoch, 0);
    fs->next = first;
    return SSLC_OK;
}

static sslc_status source_next(void *ctx, sslc_train_batch *b)
{
    fixture_source *fs = ctx;
    *b = (sslc_train_batch){.x = fs->next < STEPS ? fs->views[fs->next] : NULL,
                            .count = fs->batch};
    fs->next++;
    return SSLC_OK;
}

// ---- the comparison ---------------------------------------------------------------

// Logits as MoCo forms them, in double from sslc's queries and keys and the
// queue before the step: row i is [qn_i . k+_i, qn_i . queue_j] / tau, the
// symmetric rows q1 against k2, then q2 against k1.
static float *logits_of(const moco_case *m, int k)
{
    const sslc_contrastive *t = &m->t;
    const int64_t B = t->B, D = t->D, K = m->cfg.queue, rows = t->per * t->B;
    float *out = malloc((size_t)(rows * (1 + K)) * sizeof *out);
    assert_non_null(out);
    for (int64_t i = 0; i < rows; i++) {
        const float *q = m->queries[k] + i * D;
        int64_t pos = !m->cfg.symmetric ? i : (i < B ? i + B : i - B);
        double nq = 0.0;
        for (int64_t d = 0; d < D; d++)
            nq += (double)q[d] * q[d];
        nq = sqrt(nq);
        for (int64_t j = 0; j <= K; j++) {
            const float *key = j == 0 ? m->keys[k] + pos * D : m->queue_before[k] + (j - 1) * D;
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += (double)q[d] * key[d];
            out[i * (1 + K) + j] = (float)(dot / nq / m->cfg.tau);
        }
    }
    return out;
}

static void compare_array(const char *what, const float *mine, const char *dataset, size_t n,
                          double atol, double rtol)
{
    size_t count = 0;
    float *torch = sslc_fixture_floats(FILE_NAME, dataset, &count);
    assert_int_equal(count, n);
    char label[128];
    snprintf(label, sizeof label, "%s (%s)", what, dataset);
    sslc_assert_close(label, mine, torch, n, atol, rtol);
    free(torch);
}

static void compare_step(moco_case *m, int k)
{
    sslc_contrastive *t = &m->t;
    const char *c = m->name;
    char step[64];
    snprintf(step, sizeof step, "%s/step%d", c, k);
    printf(" %s, step %d:\n", c, k);
    // The permutation sslc drew (the script ports its RNG): exactly the fixture's.
    int64_t perm[64];
    sslc_fixture_attr_ints(FILE_NAME, step, "perm", perm, (size_t)t->n_key);
    for (int64_t j = 0; j < t->n_key; j++)
        if (perm[j] != m->perm[k][j])
            fail_msg("%s: shuffle-BN permutation [%lld] = %lld, the fixture's %lld (regenerate "
                     "it if sslc's RNG stream changed)",
                     step, (long long)j, (long long)m->perm[k][j], (long long)perm[j]);
    double m_ref = sslc_fixture_attr_double(FILE_NAME, step, "momentum");
    printf("  momentum %.9g (PyTorch %.9g)\n", m->momentum[k], m_ref);
    if (!(fabs(m->momentum[k] - m_ref) < 1e-7)) // float against double
        fail_msg("%s: the key encoder's momentum is %.9g, PyTorch's %.9g", step, m->momentum[k],
                 m_ref);
    // Float32 through the network against float64 (measured: queries and
    // keys within 7e-6, logits (|l| <= 1/tau = 5) within 4e-6, the loss
    // within 4e-7); the bounds leave a few times that.
    compare_array("queries", m->queries[k], at("%s/step%d/queries", c, k),
                  (size_t)(t->per * t->B * t->D), 3e-5, 1e-4);
    compare_array("keys", m->keys[k], at("%s/step%d/keys", c, k),
                  (size_t)(t->n_key * t->D), 1e-5, 1e-5);
    float *logits = logits_of(m, k);
    compare_array("logits", logits, at("%s/step%d/logits", c, k),
                  (size_t)(t->per * t->B * (1 + m->cfg.queue)), 2e-5, 1e-5);
    free(logits);
    float loss = (float)m->loss[k], loss_ref = (float)sslc_fixture_attr_double(FILE_NAME, step,
                                                                               "loss");
    sslc_assert_close("loss", &loss, &loss_ref, 1, 2e-6, 2e-6);
    // Gradients: against each tensor's own scale (measured: within 3e-6).
    float *g = fixture_table(at("%s/step%d/grads/encoder", c, k), "grads",
                             t->enc.params);
    compare_table("encoder gradients", t->enc.params, m->grads_enc[k], g, false, 5e-5, 1e-4);
    free(g);
    g = fixture_table(at("%s/step%d/grads/projector", c, k), "grads", &t->head.params);
    compare_table("projector gradients", &t->head.params, m->grads_head[k], g, false, 5e-5, 1e-4);
    free(g);
    // The key encoder after this step's momentum update (measured: within
    // 6e-7), and its running statistics after the shuffled groups went
    // through it (within 2e-6).
    float *w = fixture_table(at("%s/step%d/key/encoder", c, k), "values",
                             t->key_enc.params);
    compare_table("key encoder", t->key_enc.params, m->key_enc[k], w, false, 5e-6, 1e-5);
    free(w);
    w = fixture_table(at("%s/step%d/key/encoder", c, k), "buffers", t->key_enc.params);
    compare_table("key encoder batch-norm statistics", t->key_enc.params, m->key_buf[k], w, true,
                  1e-5, 1e-5);
    free(w);
    w = fixture_table(at("%s/step%d/key/projector", c, k), "values",
                      &t->key_head.params);
    compare_table("key projector", &t->key_head.params, m->key_head[k], w, false, 5e-6, 1e-5);
    free(w);
    compare_array("queue", m->queue_after[k], at("%s/step%d/queue", c, k),
                  (size_t)(m->cfg.queue * t->D), 1e-5, 1e-5);
    assert_int_equal(m->queue_ptr[k], attr_int(step, "queue_ptr"));
}

static void run_case(const char *name)
{
    moco_case *m = calloc(1, sizeof *m);
    assert_non_null(m);
    configure(m, name);
    build(m);
    sslc_contrastive *t = &m->t;
    fixture_source fs = {.batch = t->B};
    for (int s = 0; s < STEPS; s++) {
        size_t n = 0;
        fs.views[s] = sslc_fixture_floats(FILE_NAME, at("views/step%d", s), &n);
        assert_int_equal(n, (size_t)(2 * t->B * t->H * t->W * t->C));
    }
    assert_int_equal(attr_int("/", "steps"), STEPS);
    // The loop at the fixture's schedule: total_steps steps in one epoch, no
    // warmup, stopped after two.
    const int64_t total = attr_int("/", "total_steps");
    sslc_batch_source src = {.ctx = &fs, .steps_per_epoch = total, .begin_epoch = source_begin,
                             .next = source_next};
    sslc_trainer tr = {.self = m,
                       .groups = {{t->enc.params, t->opt_enc}, {&t->head.params, t->opt_head}},
                       .n_groups = 2,
                       .step = record_step};
    sslc_loop_config lc = {.what = "moco fixture", .unit = "pairs", .epochs = 1,
                           .max_steps = STEPS, .lr = m->cfg.lr, .final_lr = 0.0,
                           .warmup_fraction = 0.0, .log_every = 1000, .quiet = true};
    sslc_loop_result res;
    assert_int_equal(sslc_train_loop(&lc, &tr, &src, &res), SSLC_OK);
    assert_int_equal(res.state.step, STEPS);
    assert_int_equal(res.state.total_steps, total);
    assert_int_equal(m->steps, STEPS);
    for (int k = 0; k < STEPS; k++)
        compare_step(m, k);
    if (strcmp(name, "plain") == 0) { // the query side after the loop's second update
        float *w = fixture_table("plain/final/encoder", "values", t->enc.params);
        compare_table("encoder after two updates", t->enc.params, t->enc.params->values, w, false,
                      5e-6, 1e-5);
        free(w);
        w = fixture_table("plain/final/projector", "values", &t->head.params);
        compare_table("projector after two updates", &t->head.params, t->head.params.values, w,
                      false, 5e-6, 1e-5);
        free(w);
    }
    for (int s = 0; s < STEPS; s++)
        free(fs.views[s]);
    destroy(m);
    free(m);
}

static void moco_steps_match_the_official_builder(void **state)
{
    (void)state;
    run_case("plain");
}

static void symmetric_moco_matches_the_cifar_demo(void **state)
{
    (void)state;
    run_case("symmetric");
}

static void cosine_momentum_matches_moco_v3(void **state)
{
    (void)state;
    run_case("cosine");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(moco_steps_match_the_official_builder),
        cmocka_unit_test(symmetric_moco_matches_the_cifar_demo),
        cmocka_unit_test(cosine_momentum_matches_moco_v3),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("fixture", fixture)};
    return sslc_test_main(argc, argv, groups, 1);
}
