// Gradient-check ops for the losses (losses/: NT-Xent, InfoNCE, MoCo v3,
// cross-entropy, distillation) and the logistic-regression objective of the linear probe
// (src/eval/logreg). The numeric side of the three losses is a
// double-precision twin evaluated at double inputs, so it carries no float
// rounding: sslc's float gradient is held to the usual bound and the twin's
// own gradient (NT-Xent, InfoNCE, MoCo v3, distillation) to a much tighter one.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "losses/distill.h"
#include "losses/infonce.h"
#include "losses/mocov3.h"
#include "losses/ntxent.h"
#include "losses/xent.h"
#include "src/core/rng.h"
#include "src/core/status.h"
#include "src/eval/logreg.h"
#include "tests/gradcheck/ops.h"
#include "tests/harness.h"

typedef struct loss_state {
    int64_t rows, D, K; // NT-Xent: 2N D; InfoNCE: N D K; MoCo v3: N D M; cross-entropy,
                        // distillation: N classes
    int64_t first;      // MoCo v3: the first query's positive among the M keys
    int64_t views;      // NT-Xent: M views per image (rows = M N)
    float *q, *k, *queue, *dq;
    double *qd, *kd, *queued, *dqd;
    int64_t *labels;
} loss_state;

static double *to_double(const float *x, size_t n)
{
    double *y = malloc((n ? n : 1) * sizeof *y);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

static void loss_teardown(sslc_gc_run *run)
{
    loss_state *st = run->state;
    free(st->q), free(st->k), free(st->queue), free(st->dq);
    free(st->qd), free(st->kd), free(st->queued), free(st->dqd), free(st->labels), free(st);
}

// ---- NT-Xent: 2N D, and multi-positive: M N D (tau) ----------------------------------

static void ntxent_start(sslc_gc_run *run, int64_t views, int64_t rows, int64_t D)
{
    const sslc_gc_case *c = run->c;
    loss_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->views = views, st->rows = rows, st->D = D;
    size_t n = (size_t)(st->rows * st->D);
    st->q = sslc_gc_inputs_new(c, n, 1);
    st->qd = to_double(st->q, n);
    st->dq = calloc(n, sizeof *st->dq), st->dqd = calloc(n, sizeof *st->dqd);
    assert_true(st->dq && st->dqd);
    run->state = st;
    sslc_gc_declare(run, "dz", NULL, st->qd, n, st->dq, st->dqd);
}

static void ntxent_setup(sslc_gc_run *run)
{
    ntxent_start(run, 2, run->c->size[0], run->c->size[1]);
}

static void ntxent_multi_setup(sslc_gc_run *run)
{
    const int64_t *size = run->c->size;
    ntxent_start(run, size[0], size[0] * size[1], size[2]);
}

static double ntxent_loss(sslc_gc_run *run)
{
    loss_state *st = run->state;
    double loss;
    assert_int_equal(sslc_ntxent_multi_reference(&loss, NULL, st->qd, st->rows, st->views, st->D,
                                                 run->c->tau),
                     SSLC_OK);
    return loss;
}

// The fast float path at the same point (the double inputs are the float
// ones converted) and the double twin.
static void ntxent_backward(sslc_gc_run *run)
{
    loss_state *st = run->state;
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(st->rows, st->D)), loss;
    assert_non_null(ws);
    assert_int_equal(sslc_ntxent_multi_forward(&loss, NULL, ws, st->q, st->rows, st->views, st->D,
                                               (float)run->c->tau),
                     SSLC_OK);
    sslc_ntxent_backward(st->dq, ws, 1.0f, st->rows, st->D);
    free(ws);
    double ref;
    assert_int_equal(sslc_ntxent_multi_reference(&ref, st->dqd, st->qd, st->rows, st->views,
                                                 st->D, run->c->tau),
                     SSLC_OK);
}

const sslc_gc_op sslc_gc_ntxent = {"ntxent", "losses", "2N D", ntxent_setup, ntxent_loss,
                                   ntxent_backward, loss_teardown};
const sslc_gc_op sslc_gc_ntxent_multi = {"ntxent-multi", "losses", "M N D", ntxent_multi_setup,
                                         ntxent_loss, ntxent_backward, loss_teardown};

// ---- InfoNCE: N D K (tau); the gradient is the query's -------------------------------

static void infonce_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    loss_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->D = c->size[1], st->K = c->size[2];
    size_t n = (size_t)(st->rows * st->D), nk = (size_t)(st->K * st->D);
    st->q = sslc_gc_inputs_new(c, n, 1);
    st->k = sslc_gc_inputs_new(c, n, 2);
    st->queue = sslc_gc_inputs_new(c, nk, 3);
    for (int64_t j = 0; j < st->K; j++) { // the queue holds normalised keys
        float *row = st->queue + j * st->D;
        double ss = 0.0;
        for (int64_t d = 0; d < st->D; d++)
            ss += (double)row[d] * row[d];
        for (int64_t d = 0; d < st->D; d++)
            row[d] = (float)(row[d] / sqrt(ss));
    }
    st->qd = to_double(st->q, n), st->kd = to_double(st->k, n);
    st->queued = to_double(st->queue, nk);
    st->dq = calloc(n, sizeof *st->dq), st->dqd = calloc(n, sizeof *st->dqd);
    assert_true(st->dq && st->dqd);
    run->state = st;
    sslc_gc_declare(run, "dq", NULL, st->qd, n, st->dq, st->dqd);
}

static double infonce_loss(sslc_gc_run *run)
{
    loss_state *st = run->state;
    double loss;
    assert_int_equal(sslc_infonce_reference(&loss, NULL, st->qd, st->kd, st->queued, st->rows,
                                            st->D, st->K, run->c->tau),
                     SSLC_OK);
    return loss;
}

static void infonce_backward(sslc_gc_run *run)
{
    loss_state *st = run->state;
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(st->rows, st->D, st->K)), loss;
    assert_non_null(ws);
    assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, st->q, st->k, st->queue, st->rows,
                                          st->D, st->K, (float)run->c->tau),
                     SSLC_OK);
    sslc_infonce_backward(st->dq, ws, 1.0f, st->rows, st->D, st->K);
    free(ws);
    double ref;
    assert_int_equal(sslc_infonce_reference(&ref, st->dqd, st->qd, st->kd, st->queued, st->rows,
                                            st->D, st->K, run->c->tau),
                     SSLC_OK);
}

const sslc_gc_op sslc_gc_infonce = {"infonce", "losses", "N D K", infonce_setup, infonce_loss,
                                    infonce_backward, loss_teardown};

// ---- MoCo v3: N M first D (tau); the gradient is the query's ------------------------

static void mocov3_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    loss_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->K = c->size[1], st->first = c->size[2], st->D = c->size[3];
    size_t n = (size_t)(st->rows * st->D), nk = (size_t)(st->K * st->D);
    st->q = sslc_gc_inputs_new(c, n, 1);
    st->k = sslc_gc_inputs_new(c, nk, 2);
    st->qd = to_double(st->q, n), st->kd = to_double(st->k, nk);
    st->dq = calloc(n, sizeof *st->dq), st->dqd = calloc(n, sizeof *st->dqd);
    assert_true(st->dq && st->dqd);
    run->state = st;
    sslc_gc_declare(run, "dq", NULL, st->qd, n, st->dq, st->dqd);
}

static double mocov3_loss(sslc_gc_run *run)
{
    loss_state *st = run->state;
    double loss;
    assert_int_equal(sslc_mocov3_reference(&loss, NULL, st->qd, st->kd, st->rows, st->K,
                                           st->first, st->D, run->c->tau),
                     SSLC_OK);
    return loss;
}

static void mocov3_backward(sslc_gc_run *run)
{
    loss_state *st = run->state;
    float *ws = sslc_aligned_alloc(sslc_mocov3_workspace_size(st->rows, st->K, st->D)), loss;
    assert_non_null(ws);
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, st->q, st->k, st->rows, st->K,
                                         st->first, st->D, (float)run->c->tau),
                     SSLC_OK);
    sslc_mocov3_backward(st->dq, ws, 1.0f, st->rows, st->K, st->D);
    free(ws);
    double ref;
    assert_int_equal(sslc_mocov3_reference(&ref, st->dqd, st->qd, st->kd, st->rows, st->K,
                                           st->first, st->D, run->c->tau),
                     SSLC_OK);
    assert_true(fabs(loss - ref) < 1e-5 * fmax(1.0, fabs(ref))); // float path, same function
}

const sslc_gc_op sslc_gc_mocov3 = {"mocov3", "losses", "N M first D", mocov3_setup, mocov3_loss,
                                   mocov3_backward, loss_teardown};

// ---- cross-entropy over class logits: N classes --------------------------------------

static void xent_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    loss_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->K = c->size[1];
    size_t n = (size_t)(st->rows * st->K);
    st->q = sslc_gc_inputs_new(c, n, 1);
    st->qd = to_double(st->q, n);
    st->dq = calloc(n, sizeof *st->dq);
    st->labels = malloc((size_t)st->rows * sizeof *st->labels);
    assert_true(st->dq && st->labels);
    sslc_rng r = sslc_rng_make(c->seed, 4, 0, 0, 0);
    for (int64_t i = 0; i < st->rows; i++)
        st->labels[i] = (int64_t)sslc_rng_below(&r, (uint64_t)st->K);
    run->state = st;
    sslc_gc_declare(run, "dlogits", NULL, st->qd, n, st->dq, NULL);
}

// The test's own double twin: mean of logsumexp(z_i) - z_i[y_i].
static double xent_loss(sslc_gc_run *run)
{
    loss_state *st = run->state;
    double total = 0.0;
    for (int64_t i = 0; i < st->rows; i++) {
        const double *z = st->qd + i * st->K;
        double m = -INFINITY, s = 0.0;
        for (int64_t k = 0; k < st->K; k++)
            m = fmax(m, z[k]);
        for (int64_t k = 0; k < st->K; k++)
            s += exp(z[k] - m);
        total += log(s) + m - z[st->labels[i]];
    }
    return total / (double)st->rows;
}

static void xent_backward(sslc_gc_run *run)
{
    loss_state *st = run->state;
    size_t n = (size_t)(st->rows * st->K);
    float *probs = malloc(n * sizeof *probs);
    assert_non_null(probs);
    double loss;
    assert_int_equal(sslc_xent_forward(&loss, NULL, probs, st->q, st->labels, st->rows, st->K),
                     SSLC_OK);
    assert_true(fabs(loss - xent_loss(run)) < 1e-6); // the twin is the same function
    memset(st->dq, 0, n * sizeof *st->dq);
    sslc_xent_backward(st->dq, probs, st->labels, 1.0f, st->rows, st->K);
    free(probs);
}

const sslc_gc_op sslc_gc_xent = {"xent", "losses", "N classes", xent_setup, xent_loss,
                                 xent_backward, loss_teardown};

// ---- distillation: N classes (tau); the gradient is the student's logits' ---------

static void distill_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    loss_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->K = c->size[1];
    size_t n = (size_t)(st->rows * st->K);
    st->q = sslc_gc_inputs_new(c, n, 1); // student logits
    st->k = sslc_gc_inputs_new(c, n, 2); // teacher logits (not checked: no gradient)
    st->qd = to_double(st->q, n), st->kd = to_double(st->k, n);
    st->dq = calloc(n, sizeof *st->dq), st->dqd = calloc(n, sizeof *st->dqd);
    assert_true(st->dq && st->dqd);
    run->state = st;
    sslc_gc_declare(run, "dstudent", NULL, st->qd, n, st->dq, st->dqd);
}

static double distill_loss(sslc_gc_run *run)
{
    loss_state *st = run->state;
    double loss;
    assert_int_equal(sslc_distill_reference(&loss, NULL, st->qd, st->kd, st->rows, st->K,
                                            run->c->tau),
                     SSLC_OK);
    return loss;
}

static void distill_backward(sslc_gc_run *run)
{
    loss_state *st = run->state;
    size_t n = (size_t)(st->rows * st->K);
    float *targets = malloc(n * sizeof *targets), *probs = malloc(n * sizeof *probs);
    assert_true(targets && probs);
    const float tau = (float)run->c->tau;
    double loss, ref;
    assert_int_equal(sslc_distill_targets(targets, st->k, st->rows, st->K, tau), SSLC_OK);
    assert_int_equal(sslc_distill_forward(&loss, NULL, probs, st->q, targets, st->rows, st->K,
                                          tau),
                     SSLC_OK);
    sslc_distill_backward(st->dq, probs, targets, 1.0f, st->rows, st->K, tau);
    assert_int_equal(sslc_distill_reference(&ref, st->dqd, st->qd, st->kd, st->rows, st->K,
                                            run->c->tau),
                     SSLC_OK);
    assert_true(fabs(loss - ref) < 1e-5 * fmax(1.0, fabs(ref))); // float path, same function
    free(targets), free(probs);
}

const sslc_gc_op sslc_gc_distill = {"distill", "losses", "N classes", distill_setup,
                                    distill_loss, distill_backward, loss_teardown};

// ---- the probe's objective on the committed fixture (eval_logreg.h5) ---------------

typedef struct logreg_state {
    sslc_logreg m;
    float *x, *gw, *gb, *gw2, *gb2;
    int64_t *y, n;
    double l2;
    void *ws;
} logreg_state;

// Features, labels and l2 from the fixture; weights and biases
// scale * N(0, 1), away from the optimum so the gradient is not small.
static void logreg_setup(sslc_gc_run *run)
{
    const char *file = "eval_logreg.h5";
    logreg_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    size_t nx, ny, nw;
    st->x = sslc_fixture_floats(file, "logreg/x", &nx);
    float *yf = sslc_fixture_floats(file, "logreg/y", &ny);
    float *w = sslc_fixture_floats(file, "logreg/w", &nw);
    st->l2 = sslc_fixture_scalar(file, "logreg/l2");
    st->n = (int64_t)ny;
    int64_t D = (int64_t)(nx / ny), K = (int64_t)(nw / (size_t)D);
    st->y = malloc(ny * sizeof *st->y);
    assert_non_null(st->y);
    for (size_t i = 0; i < ny; i++)
        st->y[i] = (int64_t)yf[i];
    free(yf), free(w);
    assert_int_equal(sslc_logreg_create(&st->m, D, K), SSLC_OK);
    size_t P = (size_t)(K * D);
    float *wb = sslc_gc_inputs_new(run->c, P + (size_t)K, 0);
    memcpy(st->m.w, wb, P * sizeof(float));
    memcpy(st->m.b, wb + P, (size_t)K * sizeof(float));
    free(wb);
    st->ws = malloc(sslc_logreg_workspace_size(st->n, K));
    st->gw = calloc(P, sizeof(float)), st->gb = calloc((size_t)K, sizeof(float));
    st->gw2 = calloc(P, sizeof(float)), st->gb2 = calloc((size_t)K, sizeof(float));
    assert_true(st->ws && st->gw && st->gb && st->gw2 && st->gb2);
    run->state = st;
    sslc_gc_declare(run, "dW", st->m.w, NULL, P, st->gw, NULL);
    sslc_gc_declare(run, "db", st->m.b, NULL, (size_t)K, st->gb, NULL);
}

static double logreg_loss(sslc_gc_run *run)
{
    logreg_state *st = run->state;
    double f;
    assert_int_equal(sslc_logreg_objective(&f, st->gw2, st->gb2, st->ws, &st->m, st->x, st->y,
                                           st->n, st->l2),
                     SSLC_OK);
    return f;
}

static void logreg_backward(sslc_gc_run *run)
{
    logreg_state *st = run->state;
    double f;
    assert_int_equal(sslc_logreg_objective(&f, st->gw, st->gb, st->ws, &st->m, st->x, st->y,
                                           st->n, st->l2),
                     SSLC_OK);
}

static void logreg_teardown(sslc_gc_run *run)
{
    logreg_state *st = run->state;
    sslc_logreg_destroy(&st->m);
    free(st->x), free(st->gw), free(st->gb), free(st->gw2), free(st->gb2), free(st->y);
    free(st->ws), free(st);
}

const sslc_gc_op sslc_gc_logreg = {"logreg_objective", "eval", "", logreg_setup,
                                   logreg_loss, logreg_backward, logreg_teardown};
