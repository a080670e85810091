// src/optim: SGD / LARS / AdamW against PyTorch's updates and a NumPy LARS
// written from SimCLR's definition (tests/fixtures/optim_steps.h5, from
// scripts/gen_optim_fixtures.py), and the warmup + cosine schedule.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "losses/ntxent.h"
#include "losses/queue.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/models/mlp.h"
#include "src/nn/params.h"
#include "src/optim/optimizer.h"
#include "src/optim/schedule.h"
#include "tests/harness.h"

static const char *const FILE_NAME = "optim_steps.h5";

// The fixture's table, in its order (scripts/gen_optim_fixtures.py TENSORS),
// with a batch-norm running mean buffer between them that must never move.
static void build_table(sslc_params *p)
{
    sslc_params_init(p);
    const int64_t s43[] = {4, 3}, s4[] = {4}, s24[] = {2, 4}, s3[] = {3};
    assert_int_equal(sslc_params_add(p, "conv.weight", SSLC_TENSOR_PARAM, 0, 2, s43, NULL), 0);
    assert_int_equal(
        sslc_params_add(p, "conv.bias", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, s4, NULL), 0);
    assert_int_equal(
        sslc_params_add(p, "bn.weight", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, s4, NULL), 0);
    assert_int_equal(
        sslc_params_add(p, "bn.bias", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, s4, NULL), 0);
    assert_int_equal(sslc_params_add(p, "bn.running_mean", SSLC_TENSOR_BUFFER, 0, 1, s4, NULL), 0);
    assert_int_equal(sslc_params_add(p, "fc.weight", SSLC_TENSOR_PARAM, 0, 2, s24, NULL), 0);
    assert_int_equal(sslc_params_add(p, "zero.weight", SSLC_TENSOR_PARAM, 0, 1, s3, NULL), 0);
    assert_int_equal(sslc_params_alloc(p), 0);
    // Sentinels in the padding between tensors and in the buffer.
    for (int64_t i = 0; i < p->n_values; i++) {
        p->values[i] = 7.0f;
        p->grads[i] = 3.0f;
    }
    for (int64_t i = 0; i < p->n_buffers; i++)
        p->buffers[i] = 5.0f;
}

// flat (packed, PARAM tensors in order) <-> table storage at offsets.
static void unpack(float *dst, const sslc_params *p, const float *flat)
{
    int64_t at = 0;
    for (int64_t t = 0; t < p->count; t++) {
        const sslc_tensor *x = &p->tensors[t];
        if (x->kind != SSLC_TENSOR_PARAM)
            continue;
        memcpy(dst + x->offset, flat + at, (size_t)x->numel * sizeof(float));
        at += x->numel;
    }
}

static int64_t pack(float *flat, const sslc_params *p, const float *src)
{
    int64_t at = 0;
    for (int64_t t = 0; t < p->count; t++) {
        const sslc_tensor *x = &p->tensors[t];
        if (x->kind != SSLC_TENSOR_PARAM)
            continue;
        memcpy(flat + at, src + x->offset, (size_t)x->numel * sizeof(float));
        at += x->numel;
    }
    return at;
}

static void check_untouched(const sslc_params *p)
{
    for (int64_t i = 0; i < p->n_buffers; i++)
        assert_true(p->buffers[i] == 5.0f);
    // Padding between tensors keeps its sentinel.
    int64_t end = 0;
    for (int64_t t = 0; t < p->count; t++) {
        const sslc_tensor *x = &p->tensors[t];
        if (x->kind != SSLC_TENSOR_PARAM)
            continue;
        for (int64_t i = end; i < x->offset; i++)
            assert_true(p->values[i] == 7.0f);
        end = x->offset + x->numel;
    }
}

static void run_case(const char *name, sslc_optim_kind kind, int threads)
{
    char key[96];
    snprintf(key, sizeof key, "%s/config", name);
    float *conf = sslc_fixture_floats(FILE_NAME, key, NULL);
    sslc_optim_config cfg = sslc_optim_defaults(kind);
    cfg.momentum = conf[0];
    cfg.nesterov = conf[1] != 0.0f;
    cfg.weight_decay = conf[2];
    cfg.exclude_no_decay = conf[3] != 0.0f;
    if (kind == SSLC_OPTIM_LARS)
        cfg.trust_coefficient = conf[4];
    if (kind == SSLC_OPTIM_ADAMW) {
        cfg.beta1 = conf[5];
        cfg.beta2 = conf[6];
        cfg.eps = conf[7];
    }
    sslc_params p;
    build_table(&p);
    size_t n = 0, ng = 0;
    float *p0 = sslc_fixture_floats(FILE_NAME, "params0", &n);
    float *grads = sslc_fixture_floats(FILE_NAME, "grads", &ng);
    snprintf(key, sizeof key, "%s/values", name);
    float *want = sslc_fixture_floats(FILE_NAME, key, NULL);
    snprintf(key, sizeof key, "%s/lrs", name);
    size_t steps = 0;
    float *lrs = sslc_fixture_floats(FILE_NAME, key, &steps);
    assert_int_equal(ng, steps * n);
    unpack(p.values, &p, p0);

    sslc_set_threads(threads);
    sslc_optim *o = NULL;
    assert_int_equal(sslc_optim_create(&o, &cfg, &p), SSLC_OK);
    float *got = malloc(n * sizeof *got);
    for (size_t s = 0; s < steps; s++) {
        unpack(p.grads, &p, grads + s * n);
        assert_int_equal(sslc_optim_step(o, &p, lrs[s]), SSLC_OK);
        assert_int_equal(pack(got, &p, p.values), (int64_t)n);
        snprintf(key, sizeof key, "%s step %zu values", name, s + 1);
        sslc_assert_close(key, got, want + s * n, n, 2e-6, 2e-5);
        check_untouched(&p);
    }
    assert_int_equal(sslc_optim_steps(o), (int64_t)steps);
    for (int i = 0; i < sslc_optim_state_count(o); i++) {
        snprintf(key, sizeof key, "%s/state%d", name, i);
        float *state = sslc_fixture_floats(FILE_NAME, key, NULL);
        pack(got, &p, sslc_optim_state(o, i));
        snprintf(key, sizeof key, "%s %s", name, sslc_optim_state_name(o, i));
        sslc_assert_close(key, got, state, n, 2e-6, 2e-5);
        free(state);
    }
    sslc_optim_destroy(o);
    sslc_params_free(&p);
    sslc_set_threads(2);
    free(conf), free(p0), free(grads), free(want), free(lrs), free(got);
}

static void sgd_matches_pytorch(void **state)
{
    (void)state;
    run_case("sgd", SSLC_OPTIM_SGD, 2);
    run_case("sgd_plain", SSLC_OPTIM_SGD, 2);
}

static void sgd_nesterov_with_exclusions_matches_pytorch(void **state)
{
    (void)state;
    run_case("sgd_nesterov_excl", SSLC_OPTIM_SGD, 2);
}

static void lars_matches_simclr_definition(void **state)
{
    (void)state;
    run_case("lars", SSLC_OPTIM_LARS, 2);
    run_case("lars", SSLC_OPTIM_LARS, 1);
    run_case("lars_nesterov_all", SSLC_OPTIM_LARS, 2);
}

static void adamw_matches_pytorch(void **state)
{
    (void)state;
    run_case("adamw", SSLC_OPTIM_ADAMW, 2);
    run_case("adamw_excl", SSLC_OPTIM_ADAMW, 1);
}

static void schedule_matches_formula_and_torch(void **state)
{
    (void)state;
    float *conf = sslc_fixture_floats(FILE_NAME, "schedule/config", NULL);
    size_t n = 0, nt = 0;
    float *want = sslc_fixture_floats(FILE_NAME, "schedule/lr", &n);
    float *torch_lr = sslc_fixture_floats(FILE_NAME, "schedule/torch_lr", &nt);
    sslc_schedule s;
    int64_t warmup = (int64_t)conf[2], total = (int64_t)conf[3];
    assert_int_equal(sslc_schedule_init(&s, conf[0], conf[1], warmup, total), SSLC_OK);
    float *got = malloc(n * sizeof *got);
    for (size_t i = 0; i < n; i++)
        got[i] = (float)sslc_schedule_lr(&s, (int64_t)i);
    sslc_assert_close("schedule vs formula", got, want, n, 1e-7, 1e-6);
    assert_int_equal(nt, (size_t)(total - warmup + 1));
    sslc_assert_close("schedule vs torch CosineAnnealingLR", got + warmup, torch_lr, nt, 1e-6,
                      1e-5);
    free(conf), free(want), free(torch_lr), free(got);
}

// ---------------------------------------------------------------- unit

static void schedule_warms_up_from_zero_and_decays_to_final(void **state)
{
    (void)state;
    sslc_schedule s;
    assert_int_equal(sslc_schedule_init(&s, 4.8, 0.0, 10, 110), SSLC_OK);
    assert_true(sslc_schedule_lr(&s, 0) == 0.0);
    assert_true(fabs(sslc_schedule_lr(&s, 5) - 2.4) < 1e-12);
    assert_true(fabs(sslc_schedule_lr(&s, 10) - 4.8) < 1e-12);
    assert_true(fabs(sslc_schedule_lr(&s, 60) - 2.4) < 1e-12); // half way: cos = 0
    assert_true(fabs(sslc_schedule_lr(&s, 110)) < 1e-12);
    assert_true(fabs(sslc_schedule_lr(&s, 500)) < 1e-12); // stays at the final value
    for (int64_t t = 11; t <= 110; t++)
        assert_true(sslc_schedule_lr(&s, t) < sslc_schedule_lr(&s, t - 1));
    assert_int_equal(sslc_schedule_init(&s, 1.0, 0.1, 0, 4), SSLC_OK);
    assert_true(sslc_schedule_lr(&s, 0) == 1.0); // no warmup: starts at the peak
    assert_true(fabs(sslc_schedule_lr(&s, 4) - 0.1) < 1e-12);
    assert_int_equal(sslc_schedule_init(&s, 1.0, 0.0, 5, 5), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "warmup"));
    assert_int_equal(sslc_schedule_init(&s, -1.0, 0.0, 0, 5), SSLC_ERR_INVALID);
    assert_int_equal(sslc_schedule_init(&s, 1.0, NAN, 0, 5), SSLC_ERR_INVALID);
}

static void lr_scaling_follows_the_papers(void **state)
{
    (void)state;
    // SimCLR: 0.3 x B/256 and 0.075 x sqrt(B) agree at B = 4096 (4.8).
    assert_true(fabs(sslc_schedule_scale_lr(0.3, 4096, SSLC_LR_SCALE_LINEAR) - 4.8) < 1e-12);
    assert_true(fabs(sslc_schedule_scale_lr(0.075, 4096, SSLC_LR_SCALE_SQRT) - 4.8) < 1e-12);
    assert_true(fabs(sslc_schedule_scale_lr(0.03, 256, SSLC_LR_SCALE_LINEAR) - 0.03) < 1e-15);
    assert_true(sslc_schedule_scale_lr(0.5, 1024, SSLC_LR_SCALE_NONE) == 0.5);
    sslc_lr_scaling sc = SSLC_LR_SCALE_NONE;
    assert_int_equal(sslc_lr_scaling_parse(&sc, "sqrt"), SSLC_OK);
    assert_int_equal(sc, SSLC_LR_SCALE_SQRT);
    assert_string_equal(sslc_lr_scaling_name(SSLC_LR_SCALE_LINEAR), "linear");
    assert_int_equal(sslc_lr_scaling_parse(&sc, "log"), SSLC_ERR_INVALID);
}

static void optimizer_names_and_state_for_checkpoints(void **state)
{
    (void)state;
    sslc_params p;
    build_table(&p);
    sslc_optim_kind k;
    assert_int_equal(sslc_optim_kind_parse(&k, "lars"), SSLC_OK);
    assert_int_equal(k, SSLC_OPTIM_LARS);
    assert_int_equal(sslc_optim_kind_parse(&k, "adam"), SSLC_ERR_INVALID);
    assert_string_equal(sslc_optim_kind_name(SSLC_OPTIM_ADAMW), "adamw");

    sslc_optim_config c = sslc_optim_defaults(SSLC_OPTIM_ADAMW);
    sslc_optim *o = NULL;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
    assert_int_equal(sslc_optim_state_count(o), 2);
    assert_string_equal(sslc_optim_state_name(o, 0), "exp_avg");
    assert_string_equal(sslc_optim_state_name(o, 1), "exp_avg_sq");
    assert_null(sslc_optim_state_name(o, 2));
    assert_null(sslc_optim_state(o, 2));
    // Restoring the step count restores AdamW's bias correction: two
    // optimizers with the same state and step give the same update.
    sslc_optim *r = NULL;
    assert_int_equal(sslc_optim_create(&r, &c, &p), SSLC_OK);
    sslc_rng rng = sslc_rng_make(3, 0, 0, 0, 0);
    for (int64_t i = 0; i < p.n_values; i++)
        p.grads[i] = (float)sslc_rng_normal(&rng);
    for (int s = 0; s < 3; s++)
        assert_int_equal(sslc_optim_step(o, &p, 0.01f), SSLC_OK);
    sslc_params q;
    assert_int_equal(sslc_params_clone(&q, &p), SSLC_OK);
    memcpy(q.grads, p.grads, (size_t)p.n_values * sizeof(float));
    for (int i = 0; i < 2; i++)
        memcpy(sslc_optim_state(r, i), sslc_optim_state(o, i), (size_t)p.n_values * sizeof(float));
    assert_int_equal(sslc_optim_set_steps(r, sslc_optim_steps(o)), SSLC_OK);
    assert_int_equal(sslc_optim_step(o, &p, 0.01f), SSLC_OK);
    assert_int_equal(sslc_optim_step(r, &q, 0.01f), SSLC_OK);
    assert_memory_equal(p.values, q.values, (size_t)p.n_values * sizeof(float));
    assert_int_equal(sslc_optim_set_steps(r, -1), SSLC_ERR_INVALID);
    sslc_optim_destroy(o);
    sslc_optim_destroy(r);

    c = sslc_optim_defaults(SSLC_OPTIM_SGD);
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
    assert_int_equal(sslc_optim_state_count(o), 1);
    assert_string_equal(sslc_optim_state_name(o, 0), "momentum_buffer");
    sslc_optim_destroy(o);
    c.momentum = 0.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
    assert_int_equal(sslc_optim_state_count(o), 0);
    sslc_optim_destroy(o);
    sslc_optim_destroy(NULL);
    sslc_params_free(&p);
    sslc_params_free(&q);
}

static void optimizer_rejects_bad_configurations(void **state)
{
    (void)state;
    sslc_params p;
    build_table(&p);
    sslc_optim *o = (sslc_optim *)1;
    sslc_optim_config c = sslc_optim_defaults(SSLC_OPTIM_SGD);
    c.momentum = 1.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);
    assert_null(o);
    assert_non_null(strstr(sslc_error_message(), "momentum"));
    c = sslc_optim_defaults(SSLC_OPTIM_SGD);
    c.momentum = 0.0f;
    c.nesterov = true;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);
    c = sslc_optim_defaults(SSLC_OPTIM_LARS);
    c.weight_decay = -1.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);
    c = sslc_optim_defaults(SSLC_OPTIM_LARS);
    c.trust_coefficient = 0.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);
    c = sslc_optim_defaults(SSLC_OPTIM_ADAMW);
    c.beta2 = 1.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);
    c = sslc_optim_defaults(SSLC_OPTIM_ADAMW);
    c.eps = 0.0f;
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_ERR_INVALID);

    // A step on a different table, or with a bad learning rate, is refused.
    c = sslc_optim_defaults(SSLC_OPTIM_SGD);
    assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
    sslc_params other;
    sslc_params_init(&other);
    const int64_t shape[] = {5};
    assert_int_equal(sslc_params_add(&other, "w", SSLC_TENSOR_PARAM, 0, 1, shape, NULL), 0);
    assert_int_equal(sslc_params_alloc(&other), 0);
    assert_int_equal(sslc_optim_step(o, &other, 0.1f), SSLC_ERR_INVALID);
    assert_int_equal(sslc_optim_step(o, &p, NAN), SSLC_ERR_INVALID);
    assert_int_equal(sslc_optim_steps(o), 0);
    sslc_optim_destroy(o);
    sslc_params_free(&other);
    sslc_params_free(&p);
}

// With zero gradients only weight decay acts: decayed tensors shrink by
// exactly (1 - lr wd) (SGD, first step), excluded ones stay put.
static void weight_decay_skips_no_decay_tensors(void **state)
{
    (void)state;
    const sslc_optim_kind kinds[] = {SSLC_OPTIM_SGD, SSLC_OPTIM_LARS, SSLC_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        sslc_params p;
        build_table(&p);
        for (int64_t t = 0; t < p.count; t++) {
            const sslc_tensor *x = &p.tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            for (int64_t i = 0; i < x->numel; i++) {
                p.values[x->offset + i] = 1.0f + 0.1f * (float)i;
                p.grads[x->offset + i] = 0.0f;
            }
        }
        sslc_optim_config c = sslc_optim_defaults(kinds[k]);
        c.weight_decay = 0.1f;
        c.exclude_no_decay = true;
        sslc_optim *o = NULL;
        assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
        assert_int_equal(sslc_optim_step(o, &p, 0.5f), SSLC_OK);
        for (int64_t t = 0; t < p.count; t++) {
            const sslc_tensor *x = &p.tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            for (int64_t i = 0; i < x->numel; i++) {
                float v0 = 1.0f + 0.1f * (float)i, v = p.values[x->offset + i];
                if (x->flags & SSLC_TENSOR_NO_DECAY)
                    assert_true(v == v0);
                else
                    assert_true(v < v0);
                if (kinds[k] == SSLC_OPTIM_SGD && !(x->flags & SSLC_TENSOR_NO_DECAY))
                    assert_true(fabsf(v - v0 * (1.0f - 0.05f)) < 1e-6f);
            }
        }
        check_untouched(&p);
        sslc_optim_destroy(o);
        sslc_params_free(&p);
    }
}

// A tensor flagged SSLC_TENSOR_FROZEN keeps its values and optimizer state
// through every optimizer's step, weight decay and gradient notwithstanding;
// the others move.
static void frozen_tensors_stay_as_they_are(void **state)
{
    (void)state;
    const sslc_optim_kind kinds[] = {SSLC_OPTIM_SGD, SSLC_OPTIM_LARS, SSLC_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        sslc_params p;
        build_table(&p);
        int64_t frozen = -1;
        for (int64_t t = 0; t < p.count; t++) {
            sslc_tensor *x = &p.tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            if (frozen < 0)
                x->flags |= SSLC_TENSOR_FROZEN, frozen = t;
            for (int64_t i = 0; i < x->numel; i++) {
                p.values[x->offset + i] = 1.0f + 0.1f * (float)i;
                p.grads[x->offset + i] = 0.5f - 0.03f * (float)i;
            }
        }
        sslc_optim_config c = sslc_optim_defaults(kinds[k]);
        c.weight_decay = 0.1f;
        sslc_optim *o = NULL;
        assert_int_equal(sslc_optim_create(&o, &c, &p), SSLC_OK);
        for (int step = 0; step < 2; step++)
            assert_int_equal(sslc_optim_step(o, &p, 0.5f), SSLC_OK);
        for (int64_t t = 0; t < p.count; t++) {
            const sslc_tensor *x = &p.tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            bool moved = false;
            for (int64_t i = 0; i < x->numel; i++) {
                moved |= p.values[x->offset + i] != 1.0f + 0.1f * (float)i;
                for (int s = 0; s < sslc_optim_state_count(o) && t == frozen; s++)
                    assert_true(sslc_optim_state(o, s)[x->offset + i] == 0.0f);
            }
            if (moved != (t != frozen))
                fail_msg("%s: tensor %s %s", sslc_optim_kind_name(kinds[k]), x->name,
                         moved ? "frozen but moved" : "did not move");
        }
        check_untouched(&p);
        sslc_optim_destroy(o);
        sslc_params_free(&p);
    }
}

// The pieces together, as the SimCLR trainer will use them: a SimCLR head
// (Linear-BN-ReLU-Linear) on fixed "features" whose two views differ by
// noise, NT-Xent, warmup + cosine with sqrt scaling, and each optimizer. The
// loss must fall well below its start and the positives must be found.
static void simclr_head_learns_with_each_optimizer(void **state)
{
    (void)state;
    enum { PAIRS = 32, IN = 24, STEPS = 60 };
    const int64_t two_n = 2 * PAIRS;
    float *x = malloc((size_t)(two_n * IN) * sizeof(float));
    sslc_rng r = sslc_rng_make(21, 0, 0, 0, 0);
    for (int64_t i = 0; i < PAIRS; i++) {
        for (int64_t d = 0; d < IN; d++) {
            float base = (float)sslc_rng_normal(&r);
            x[i * IN + d] = base + 1.2f * (float)sslc_rng_normal(&r);
            x[(i + PAIRS) * IN + d] = base + 1.2f * (float)sslc_rng_normal(&r);
        }
    }
    const sslc_optim_kind kinds[] = {SSLC_OPTIM_LARS, SSLC_OPTIM_SGD, SSLC_OPTIM_ADAMW};
    const double base_lr[] = {0.075, 0.05, 0.003};
    const sslc_lr_scaling scaling[] = {SSLC_LR_SCALE_SQRT, SSLC_LR_SCALE_LINEAR,
                                       SSLC_LR_SCALE_NONE};
    for (int k = 0; k < 3; k++) {
        sslc_mlp head;
        char spec[128];
        assert_int_equal(sslc_mlp_head_spec(spec, sizeof spec, "simclr", 64, 16, false, 2), SSLC_OK);
        assert_int_equal(sslc_mlp_create(&head, IN, spec), SSLC_OK);
        sslc_mlp_init(&head, 5);
        sslc_mlp_run *run = NULL;
        assert_int_equal(sslc_mlp_run_create(&run, &head, two_n), SSLC_OK);
        sslc_optim_config c = sslc_optim_defaults(kinds[k]);
        sslc_optim *o = NULL;
        assert_int_equal(sslc_optim_create(&o, &c, &head.params), SSLC_OK);
        sslc_schedule sched;
        double peak = sslc_schedule_scale_lr(base_lr[k], PAIRS, scaling[k]);
        assert_int_equal(sslc_schedule_init(&sched, peak, 0.0, 5, STEPS), SSLC_OK);
        float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(two_n, 16));
        float *dz = malloc((size_t)(two_n * 16) * sizeof(float));
        float first = 0.0f, first_acc = 0.0f, loss = 0.0f, acc = 0.0f;
        for (int64_t step = 0; step < STEPS; step++) {
            const float *z = sslc_mlp_forward(run, &head, x, true);
            assert_non_null(z);
            assert_int_equal(sslc_ntxent_forward(&loss, &acc, ws, z, two_n, 16, 0.2f), SSLC_OK);
            if (step == 0)
                first = loss, first_acc = acc;
            memset(dz, 0, (size_t)(two_n * 16) * sizeof(float));
            sslc_ntxent_backward(dz, ws, 1.0f, two_n, 16);
            sslc_params_zero_grad(&head.params);
            sslc_mlp_backward(run, &head, NULL, dz);
            assert_int_equal(
                sslc_optim_step(o, &head.params, (float)sslc_schedule_lr(&sched, step)),
                SSLC_OK);
        }
        printf("  %-6s NT-Xent %.3f -> %.3f, top-1 %.2f -> %.2f\n",
               sslc_optim_kind_name(kinds[k]), (double)first, (double)loss, (double)first_acc,
               (double)acc);
        assert_true(loss < 0.6f * first);
        assert_true(acc > first_acc && acc > 0.9f);
        free(ws), free(dz);
        sslc_optim_destroy(o);
        sslc_mlp_run_destroy(run);
        sslc_mlp_destroy(&head);
    }
    free(x);
}

// InfoNCE of fixed held-out pairs against a queue of the key head's own
// projections of 100 other images: how well the heads tell positives from
// real negatives, independent of the training queue's contents.
typedef struct moco_eval {
    float *xq, *xk;  // (24, IN) two noisy views of images 0..23
    float *xbank;    // (100, IN) images 100..199
    sslc_mlp_run *qrun, *krun, *bankrun;
    float *ws, *queue;
} moco_eval;

static float moco_eval_loss(moco_eval *e, sslc_mlp *q_head, sslc_mlp *k_head, int64_t N,
                            int64_t OUT, int64_t K)
{
    const float *bank = sslc_mlp_forward(e->bankrun, k_head, e->xbank, false);
    memcpy(e->queue, bank, (size_t)(K * OUT) * sizeof(float));
    for (int64_t i = 0; i < K; i++) {
        double ss = 0.0;
        for (int64_t d = 0; d < OUT; d++)
            ss += (double)e->queue[i * OUT + d] * e->queue[i * OUT + d];
        for (int64_t d = 0; d < OUT; d++)
            e->queue[i * OUT + d] = (float)(e->queue[i * OUT + d] / sqrt(ss));
    }
    const float *qz = sslc_mlp_forward(e->qrun, q_head, e->xq, false);
    const float *kz = sslc_mlp_forward(e->krun, k_head, e->xk, false);
    float loss;
    assert_int_equal(sslc_infonce_forward(&loss, NULL, e->ws, qz, kz, e->queue, N, OUT, K, 0.2f),
                     SSLC_OK);
    return loss;
}

// MoCo's loop in miniature: query head trained by SGD on InfoNCE, key head
// an EMA of it, keys enqueued after the logits into a queue whose size
// (100) the batch (24) does not divide. The held-out InfoNCE must fall by
// 40% or more (it reaches about half).
static void moco_head_learns_with_the_queue(void **state)
{
    (void)state;
    enum { N = 24, IN = 20, OUT = 16, K = 100, STEPS = 120, IMAGES = 200 };
    float *xq = malloc((size_t)(N * IN) * sizeof(float));
    float *xk = malloc((size_t)(N * IN) * sizeof(float));
    sslc_mlp q_head, k_head;
    char spec[128];
    assert_int_equal(sslc_mlp_head_spec(spec, sizeof spec, "moco-v2", 48, OUT, false, 2), SSLC_OK);
    assert_int_equal(sslc_mlp_create(&q_head, IN, spec), SSLC_OK);
    assert_int_equal(sslc_mlp_create(&k_head, IN, spec), SSLC_OK);
    sslc_mlp_init(&q_head, 3);
    assert_int_equal(sslc_params_copy(&k_head.params, &q_head.params), SSLC_OK);
    sslc_mlp_run *qrun = NULL, *krun = NULL;
    assert_int_equal(sslc_mlp_run_create(&qrun, &q_head, N), SSLC_OK);
    assert_int_equal(sslc_mlp_run_create(&krun, &k_head, N), SSLC_OK);
    sslc_optim_config c = sslc_optim_defaults(SSLC_OPTIM_SGD);
    sslc_optim *o = NULL;
    assert_int_equal(sslc_optim_create(&o, &c, &q_head.params), SSLC_OK);
    sslc_schedule sched;
    assert_int_equal(sslc_schedule_init(&sched, sslc_schedule_scale_lr(3.0, N, SSLC_LR_SCALE_LINEAR),
                                        0.0, 0, STEPS),
                     SSLC_OK);
    sslc_rng r = sslc_rng_make(4, 0, 0, 0, 0);
    sslc_queue *queue = NULL;
    assert_int_equal(sslc_queue_create(&queue, K, OUT, &r), SSLC_OK);
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, OUT, K));
    float *dq = malloc((size_t)(N * OUT) * sizeof(float));
    float *images = malloc((size_t)(IMAGES * IN) * sizeof(float));
    for (int64_t i = 0; i < IMAGES * IN; i++)
        images[i] = (float)sslc_rng_normal(&r);

    moco_eval e = {0};
    e.xq = malloc((size_t)(N * IN) * sizeof(float));
    e.xk = malloc((size_t)(N * IN) * sizeof(float));
    e.xbank = images + 100 * IN;
    e.ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, OUT, K));
    e.queue = malloc((size_t)(K * OUT) * sizeof(float));
    for (int64_t i = 0; i < N * IN; i++) {
        e.xq[i] = images[i] + 0.3f * (float)sslc_rng_normal(&r);
        e.xk[i] = images[i] + 0.3f * (float)sslc_rng_normal(&r);
    }
    assert_int_equal(sslc_mlp_run_create(&e.qrun, &q_head, N), SSLC_OK);
    assert_int_equal(sslc_mlp_run_create(&e.krun, &k_head, N), SSLC_OK);
    assert_int_equal(sslc_mlp_run_create(&e.bankrun, &k_head, K), SSLC_OK);
    const float before = moco_eval_loss(&e, &q_head, &k_head, N, OUT, K);

    float acc = 0.0f;
    for (int64_t step = 0; step < STEPS; step++) {
        // Each step: the next 24 of 200 fixed "images", two noisy views.
        for (int64_t i = 0; i < N; i++) {
            int64_t img = (step * N + i) % IMAGES;
            for (int64_t d = 0; d < IN; d++) {
                xq[i * IN + d] = images[img * IN + d] + 0.3f * (float)sslc_rng_normal(&r);
                xk[i * IN + d] = images[img * IN + d] + 0.3f * (float)sslc_rng_normal(&r);
            }
        }
        const float *qz = sslc_mlp_forward(qrun, &q_head, xq, true);
        const float *kz = sslc_mlp_forward(krun, &k_head, xk, true);
        float loss;
        assert_int_equal(sslc_infonce_forward(&loss, &acc, ws, qz, kz, sslc_queue_data(queue), N,
                                              OUT, K, 0.2f),
                         SSLC_OK);
        assert_int_equal(sslc_queue_enqueue(queue, sslc_infonce_keys(ws, N, OUT, K), N), SSLC_OK);
        memset(dq, 0, (size_t)(N * OUT) * sizeof(float));
        sslc_infonce_backward(dq, ws, 1.0f, N, OUT, K);
        sslc_params_zero_grad(&q_head.params);
        sslc_mlp_backward(qrun, &q_head, NULL, dq);
        assert_int_equal(sslc_optim_step(o, &q_head.params, (float)sslc_schedule_lr(&sched, step)),
                         SSLC_OK);
        // Key encoder: k = m k + (1 - m) q over the whole values buffer
        // (m 0.9: MoCo's 0.99-0.999 is for runs of many thousand steps).
        for (int64_t i = 0; i < q_head.params.n_values; i++)
            k_head.params.values[i] =
                0.9f * k_head.params.values[i] + 0.1f * q_head.params.values[i];
    }
    const float after = moco_eval_loss(&e, &q_head, &k_head, N, OUT, K);
    printf("  moco   held-out InfoNCE %.3f -> %.3f, last batch top-1 %.2f, queue pointer %lld\n",
           (double)before, (double)after, (double)acc, (long long)sslc_queue_pointer(queue));
    assert_true(after < 0.6f * before);
    assert_int_equal(sslc_queue_pointer(queue), (STEPS * N) % K);
    free(xq), free(xk), free(ws), free(dq), free(images);
    free(e.xq), free(e.xk), free(e.ws), free(e.queue);
    sslc_mlp_run_destroy(e.qrun);
    sslc_mlp_run_destroy(e.krun);
    sslc_mlp_run_destroy(e.bankrun);
    sslc_queue_destroy(queue);
    sslc_optim_destroy(o);
    sslc_mlp_run_destroy(qrun);
    sslc_mlp_run_destroy(krun);
    sslc_mlp_destroy(&q_head);
    sslc_mlp_destroy(&k_head);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(schedule_warms_up_from_zero_and_decays_to_final),
        cmocka_unit_test(lr_scaling_follows_the_papers),
        cmocka_unit_test(optimizer_names_and_state_for_checkpoints),
        cmocka_unit_test(optimizer_rejects_bad_configurations),
        cmocka_unit_test(weight_decay_skips_no_decay_tensors),
        cmocka_unit_test(frozen_tensors_stay_as_they_are),
        cmocka_unit_test(simclr_head_learns_with_each_optimizer),
        cmocka_unit_test(moco_head_learns_with_the_queue),
    };
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(sgd_matches_pytorch),
        cmocka_unit_test(sgd_nesterov_with_exclusions_matches_pytorch),
        cmocka_unit_test(lars_matches_simclr_definition),
        cmocka_unit_test(adamw_matches_pytorch),
        cmocka_unit_test(schedule_matches_formula_and_torch),
    };
    const sslc_test_group groups[] = {
        SSLC_GROUP("unit", unit),
        SSLC_GROUP("fixture", fixture),
    };
    return sslc_test_main(argc, argv, groups, 2);
}
