// Gradient-check ops for the layers of src/nn. Each is L = sum(y * r) over
// the layer's output y, so the analytic gradient is the backward fed dy = r.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/status.h"
#include "src/core/rows.h"
#include "src/nn/layers.h"
#include "tests/gradcheck/ops.h"
#include "tests/harness.h"

float *sslc_gc_projection(const sslc_gc_case *c, size_t n)
{
    return sslc_test_randn(n, c->seed ^ 0x7e57u, 1.0);
}

static float *zeros(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

// ---- convolution: N H W C K kernel stride pad -----------------------------------

typedef struct conv_state {
    sslc_conv2d_desc d;
    sslc_conv2d_plan *plan; // the fast path only
    float *ws;
    float *x, *w, *r, *y, *dx, *dw;
    size_t nx, nw, ny;
} conv_state;

static void conv_setup(sslc_gc_run *run, bool fast)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size;
    conv_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    sslc_conv2d_desc_init(&st->d, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    st->nx = (size_t)(st->d.N * st->d.H * st->d.W * st->d.C);
    st->nw = (size_t)(st->d.K * st->d.C * st->d.R * st->d.S);
    st->ny = (size_t)(st->d.N * st->d.P * st->d.Q * st->d.K);
    st->x = sslc_gc_inputs_new(c, st->nx, 1);
    st->w = sslc_gc_inputs_new(c, st->nw, 2);
    st->r = sslc_gc_projection(c, st->ny);
    st->y = zeros(st->ny), st->dx = zeros(st->nx), st->dw = zeros(st->nw);
    if (fast) {
        assert_int_equal(sslc_conv2d_plan_create(&st->plan, &st->d), SSLC_OK);
        st->ws = zeros(sslc_conv2d_workspace_size(st->plan));
    }
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
    sslc_gc_declare(run, "dw", st->w, NULL, st->nw, st->dw, NULL);
}

static void conv_ref_setup(sslc_gc_run *run) { conv_setup(run, false); }
static void conv_fast_setup(sslc_gc_run *run) { conv_setup(run, true); }

static double conv_ref_loss(sslc_gc_run *run)
{
    conv_state *st = run->state;
    sslc_conv2d_forward_ref(st->y, st->x, st->w, &st->d);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void conv_ref_backward(sslc_gc_run *run)
{
    conv_state *st = run->state;
    memset(st->dw, 0, st->nw * sizeof(float));
    sslc_conv2d_backward_ref(st->dx, st->dw, st->r, st->x, st->w, &st->d);
}

static double conv_fast_loss(sslc_gc_run *run)
{
    conv_state *st = run->state;
    sslc_conv2d_prepare(st->plan, st->w, st->ws);
    sslc_conv2d_forward(st->plan, st->y, st->x, st->ws);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void conv_fast_backward(sslc_gc_run *run)
{
    conv_state *st = run->state;
    memset(st->dw, 0, st->nw * sizeof(float));
    sslc_conv2d_prepare(st->plan, st->w, st->ws);
    sslc_conv2d_backward(st->plan, st->dx, st->dw, st->r, st->x, st->ws);
}

static void conv_teardown(sslc_gc_run *run)
{
    conv_state *st = run->state;
    sslc_conv2d_plan_destroy(st->plan);
    free(st->ws), free(st->x), free(st->w), free(st->r), free(st->y), free(st->dx), free(st->dw);
    free(st);
}

const sslc_gc_op sslc_gc_conv2d_ref = {"conv2d_ref", "nn", "N H W C K kernel stride pad",
                                       conv_ref_setup, conv_ref_loss, conv_ref_backward,
                                       conv_teardown};
const sslc_gc_op sslc_gc_conv2d = {"conv2d", "nn", "N H W C K kernel stride pad",
                                   conv_fast_setup, conv_fast_loss, conv_fast_backward,
                                   conv_teardown};

// ---- batch norm (training mode), optionally with the fused ReLU: rows C ---------

typedef struct bn_state {
    int64_t rows, C;
    unsigned flags;
    float *x, *gamma, *beta, *r, *y, *mean, *rstd, *dx, *dgamma, *dbeta;
    double *ws;
} bn_state;

static void bn_setup(sslc_gc_run *run, unsigned flags)
{
    const sslc_gc_case *c = run->c;
    bn_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->C = c->size[1], st->flags = flags;
    size_t n = (size_t)(st->rows * st->C), C = (size_t)st->C;
    st->x = sslc_gc_inputs_new(c, n, 1);
    st->gamma = sslc_test_randn(C, c->seed + 1, 0.5);
    st->beta = sslc_test_randn(C, c->seed + 2, 0.5);
    for (size_t k = 0; k < C; k++)
        st->gamma[k] += 1.0f;
    st->r = sslc_gc_projection(c, n);
    st->y = zeros(n), st->dx = zeros(n), st->mean = zeros(C), st->rstd = zeros(C);
    st->dgamma = zeros(C), st->dbeta = zeros(C);
    st->ws = malloc(sslc_batchnorm_workspace_size(st->C) * sizeof(double));
    assert_non_null(st->ws);
    if (c->inputs == SSLC_GC_MARGINS) {
        // The ReLU inputs are gamma * xhat + beta: beta from the widest gap.
        float *v = zeros(n), *zero = zeros(C);
        sslc_batchnorm_forward_train(v, st->mean, st->rstd, NULL, NULL, NULL, st->x, st->gamma,
                                     zero, st->rows, st->C, 0.1f, 1e-5f, 0, NULL, st->ws);
        assert_true(sslc_gc_margin_biases(st->beta, v, st->rows, st->C) >= c->margin);
        free(v), free(zero);
    }
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, n, st->dx, NULL);
    sslc_gc_declare(run, "dgamma", st->gamma, NULL, C, st->dgamma, NULL);
    sslc_gc_declare(run, "dbeta", st->beta, NULL, C, st->dbeta, NULL);
}

static void bn_plain_setup(sslc_gc_run *run) { bn_setup(run, 0); }
static void bn_relu_setup(sslc_gc_run *run) { bn_setup(run, SSLC_BN_FUSE_RELU); }

static double bn_loss(sslc_gc_run *run)
{
    bn_state *st = run->state;
    sslc_batchnorm_forward_train(st->y, st->mean, st->rstd, NULL, NULL, NULL, st->x, st->gamma,
                                 st->beta, st->rows, st->C, 0.1f, 1e-5f, st->flags, NULL,
                                 st->ws);
    return sslc_gc_dot(st->y, st->r, (size_t)(st->rows * st->C));
}

static void bn_backward(sslc_gc_run *run)
{
    bn_state *st = run->state;
    memset(st->dgamma, 0, (size_t)st->C * sizeof(float));
    memset(st->dbeta, 0, (size_t)st->C * sizeof(float));
    sslc_batchnorm_backward(st->dx, st->dgamma, st->dbeta, st->r, st->y, st->x, st->mean,
                            st->rstd, st->gamma, st->rows, st->C, st->flags, NULL, st->ws);
}

static void bn_teardown(sslc_gc_run *run)
{
    bn_state *st = run->state;
    free(st->x), free(st->gamma), free(st->beta), free(st->r), free(st->y), free(st->mean);
    free(st->rstd), free(st->dx), free(st->dgamma), free(st->dbeta), free(st->ws), free(st);
}

const sslc_gc_op sslc_gc_batchnorm = {"batchnorm", "nn", "rows C", bn_plain_setup, bn_loss,
                                      bn_backward, bn_teardown};
const sslc_gc_op sslc_gc_batchnorm_relu = {"batchnorm+relu", "nn", "rows C", bn_relu_setup,
                                           bn_loss, bn_backward, bn_teardown};

// ---- ReLU and the residual join y = max(a + b, 0): n ----------------------------

typedef struct elt_state {
    size_t n;
    float *a, *b, *r, *y, *da, *db;
} elt_state;

static elt_state *elt_new(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    elt_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->n = (size_t)c->size[0];
    st->a = sslc_gc_inputs_new(c, st->n, 1); // OFF_ZERO: |a| >= margin
    st->r = sslc_gc_projection(c, st->n);
    st->y = zeros(st->n), st->da = zeros(st->n), st->db = zeros(st->n);
    run->state = st;
    return st;
}

static void relu_setup(sslc_gc_run *run)
{
    elt_state *st = elt_new(run);
    sslc_gc_declare(run, "dx", st->a, NULL, st->n, st->da, NULL);
}

static double relu_loss(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_relu_forward(st->y, st->a, (int64_t)st->n);
    return sslc_gc_dot(st->y, st->r, st->n);
}

static void relu_backward(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_relu_backward(st->da, st->r, st->y, (int64_t)st->n);
}

// The join's inputs: a + b = v with |v| >= margin (v drawn OFF_ZERO, b
// normal, a = v - b, rounded so that a + b in float is still v's side).
static void add_relu_setup(sslc_gc_run *run)
{
    elt_state *st = elt_new(run);
    st->b = sslc_test_randn(st->n, run->c->seed + 3, 1.0);
    for (size_t i = 0; i < st->n; i++)
        st->a[i] -= st->b[i];
    sslc_gc_declare(run, "da", st->a, NULL, st->n, st->da, NULL);
    sslc_gc_declare(run, "db", st->b, NULL, st->n, st->db, NULL);
}

static double add_relu_loss(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_add_relu_forward(st->y, st->a, st->b, (int64_t)st->n);
    return sslc_gc_dot(st->y, st->r, st->n);
}

// As src/models/resnet.c differentiates the join: the ReLU's mask, then the
// same gradient to both branches.
static void add_relu_backward(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_relu_backward(st->da, st->r, st->y, (int64_t)st->n);
    memcpy(st->db, st->da, st->n * sizeof(float));
}

static void elt_teardown(sslc_gc_run *run)
{
    elt_state *st = run->state;
    free(st->a), free(st->b), free(st->r), free(st->y), free(st->da), free(st->db), free(st);
}

const sslc_gc_op sslc_gc_relu = {"relu", "nn", "n", relu_setup, relu_loss, relu_backward,
                                 elt_teardown};
const sslc_gc_op sslc_gc_add_relu = {"add_relu", "nn", "n", add_relu_setup, add_relu_loss,
                                     add_relu_backward, elt_teardown};

// ---- max pool: N H W C kernel stride pad; global average pool: N HW C -------------

typedef struct pool_state {
    int64_t N, H, W, C, k, s, p, P, Q;
    float *x, *r, *y, *dx;
    int32_t *arg;
    size_t nx, ny;
} pool_state;

static void maxpool_setup(sslc_gc_run *run)
{
    const int64_t *z = run->c->size;
    pool_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    *st = (pool_state){.N = z[0], .H = z[1], .W = z[2], .C = z[3], .k = z[4], .s = z[5],
                       .p = z[6]};
    st->P = (st->H + 2 * st->p - st->k) / st->s + 1;
    st->Q = (st->W + 2 * st->p - st->k) / st->s + 1;
    st->nx = (size_t)(st->N * st->H * st->W * st->C);
    st->ny = (size_t)(st->N * st->P * st->Q * st->C);
    st->x = sslc_gc_inputs_new(run->c, st->nx, 1); // SPREAD: no ties
    st->r = sslc_gc_projection(run->c, st->ny);
    st->y = zeros(st->ny), st->dx = zeros(st->nx);
    st->arg = calloc(st->ny, sizeof *st->arg);
    assert_non_null(st->arg);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
}

static double maxpool_loss(sslc_gc_run *run)
{
    pool_state *st = run->state;
    sslc_maxpool_forward(st->y, st->arg, st->x, st->N, st->H, st->W, st->C, st->k, st->s, st->p,
                         st->P, st->Q);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void maxpool_backward(sslc_gc_run *run)
{
    pool_state *st = run->state;
    sslc_maxpool_backward(st->dx, st->r, st->arg, st->N, st->H, st->W, st->C, st->P, st->Q);
}

static void avgpool_setup(sslc_gc_run *run)
{
    const int64_t *z = run->c->size;
    pool_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    *st = (pool_state){.N = z[0], .H = z[1], .W = 1, .C = z[2]};
    st->nx = (size_t)(st->N * st->H * st->C), st->ny = (size_t)(st->N * st->C);
    st->x = sslc_gc_inputs_new(run->c, st->nx, 1);
    st->r = sslc_gc_projection(run->c, st->ny);
    st->y = zeros(st->ny), st->dx = zeros(st->nx);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
}

static double avgpool_loss(sslc_gc_run *run)
{
    pool_state *st = run->state;
    sslc_avgpool_forward(st->y, st->x, st->N, st->H, st->C);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void avgpool_backward(sslc_gc_run *run)
{
    pool_state *st = run->state;
    sslc_avgpool_backward(st->dx, st->r, st->N, st->H, st->C);
}

static void pool_teardown(sslc_gc_run *run)
{
    pool_state *st = run->state;
    free(st->x), free(st->r), free(st->y), free(st->dx), free(st->arg), free(st);
}

const sslc_gc_op sslc_gc_maxpool = {"maxpool", "nn", "N H W C kernel stride pad", maxpool_setup,
                                    maxpool_loss, maxpool_backward, pool_teardown};
const sslc_gc_op sslc_gc_avgpool = {"avgpool", "nn", "N HW C", avgpool_setup, avgpool_loss,
                                    avgpool_backward, pool_teardown};

// ---- linear with bias: N in out; L2 normalisation of rows: N D -------------------

typedef struct vec_state {
    int64_t N, in, out;
    float *x, *w, *b, *r, *y, *norm, *dx, *dw, *db;
} vec_state;

static void linear_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    vec_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->N = c->size[0], st->in = c->size[1], st->out = c->size[2];
    size_t nx = (size_t)(st->N * st->in), nw = (size_t)(st->out * st->in);
    size_t ny = (size_t)(st->N * st->out);
    st->x = sslc_gc_inputs_new(c, nx, 1);
    st->w = sslc_gc_inputs_new(c, nw, 2);
    st->b = sslc_gc_inputs_new(c, (size_t)st->out, 3);
    st->r = sslc_gc_projection(c, ny);
    st->y = zeros(ny), st->dx = zeros(nx), st->dw = zeros(nw), st->db = zeros((size_t)st->out);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, nx, st->dx, NULL);
    sslc_gc_declare(run, "dw", st->w, NULL, nw, st->dw, NULL);
    sslc_gc_declare(run, "db", st->b, NULL, (size_t)st->out, st->db, NULL);
}

static double linear_loss(sslc_gc_run *run)
{
    vec_state *st = run->state;
    sslc_linear_forward(st->y, st->x, st->w, st->b, st->N, st->in, st->out);
    return sslc_gc_dot(st->y, st->r, (size_t)(st->N * st->out));
}

static void linear_backward(sslc_gc_run *run)
{
    vec_state *st = run->state;
    memset(st->dw, 0, (size_t)(st->out * st->in) * sizeof(float));
    memset(st->db, 0, (size_t)st->out * sizeof(float));
    sslc_linear_backward(st->dx, st->dw, st->db, st->r, st->x, st->w, st->N, st->in, st->out);
}

static void l2norm_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    vec_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->N = c->size[0], st->in = c->size[1];
    size_t n = (size_t)(st->N * st->in);
    st->x = sslc_gc_inputs_new(c, n, 1);
    st->r = sslc_gc_projection(c, n);
    st->y = zeros(n), st->dx = zeros(n), st->norm = zeros((size_t)(2 * st->N));
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, n, st->dx, NULL);
}

static double l2norm_loss(sslc_gc_run *run)
{
    vec_state *st = run->state;
    sslc_rows_normalize(st->y, st->norm, st->norm + st->N, st->x, st->N, st->in);
    return sslc_gc_dot(st->y, st->r, (size_t)(st->N * st->in));
}

static void l2norm_backward(sslc_gc_run *run)
{
    vec_state *st = run->state;
    memset(st->dx, 0, (size_t)(st->N * st->in) * sizeof(float)); // the backward accumulates
    sslc_rows_normalize_backward(st->dx, st->r, st->y, st->norm, st->norm + st->N, 1.0f, st->N,
                                 st->in);
}

static void vec_teardown(sslc_gc_run *run)
{
    vec_state *st = run->state;
    free(st->x), free(st->w), free(st->b), free(st->r), free(st->y), free(st->norm);
    free(st->dx), free(st->dw), free(st->db), free(st);
}

const sslc_gc_op sslc_gc_linear = {"linear", "nn", "N in out", linear_setup, linear_loss,
                                   linear_backward, vec_teardown};
const sslc_gc_op sslc_gc_l2norm = {"l2norm", "nn", "N D", l2norm_setup, l2norm_loss,
                                   l2norm_backward, vec_teardown};

// ---- layer norm: rows C; GELU: n --------------------------------------------------

typedef struct ln_state {
    int64_t rows, C;
    float *x, *gamma, *beta, *r, *y, *mean, *rstd, *dx, *dgamma, *dbeta;
} ln_state;

static void layernorm_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    ln_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->rows = c->size[0], st->C = c->size[1];
    size_t n = (size_t)(st->rows * st->C), C = (size_t)st->C, R = (size_t)st->rows;
    st->x = sslc_gc_inputs_new(c, n, 1);
    st->gamma = sslc_test_randn(C, c->seed + 1, 0.5);
    st->beta = sslc_test_randn(C, c->seed + 2, 0.5);
    for (size_t k = 0; k < C; k++)
        st->gamma[k] += 1.0f;
    st->r = sslc_gc_projection(c, n);
    st->y = zeros(n), st->dx = zeros(n), st->mean = zeros(R), st->rstd = zeros(R);
    st->dgamma = zeros(C), st->dbeta = zeros(C);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, n, st->dx, NULL);
    sslc_gc_declare(run, "dgamma", st->gamma, NULL, C, st->dgamma, NULL);
    sslc_gc_declare(run, "dbeta", st->beta, NULL, C, st->dbeta, NULL);
}

static double layernorm_loss(sslc_gc_run *run)
{
    ln_state *st = run->state;
    sslc_layernorm_forward(st->y, st->mean, st->rstd, st->x, st->gamma, st->beta, st->rows, st->C,
                           1e-6f);
    return sslc_gc_dot(st->y, st->r, (size_t)(st->rows * st->C));
}

static void layernorm_backward(sslc_gc_run *run)
{
    ln_state *st = run->state;
    memset(st->dgamma, 0, (size_t)st->C * sizeof(float));
    memset(st->dbeta, 0, (size_t)st->C * sizeof(float));
    sslc_layernorm_backward(st->dx, st->dgamma, st->dbeta, st->r, st->x, st->mean, st->rstd,
                            st->gamma, st->rows, st->C);
}

static void layernorm_teardown(sslc_gc_run *run)
{
    ln_state *st = run->state;
    free(st->x), free(st->gamma), free(st->beta), free(st->r), free(st->y), free(st->mean);
    free(st->rstd), free(st->dx), free(st->dgamma), free(st->dbeta), free(st);
}

const sslc_gc_op sslc_gc_layernorm = {"layernorm", "nn", "rows C", layernorm_setup,
                                      layernorm_loss, layernorm_backward, layernorm_teardown};

static void gelu_setup(sslc_gc_run *run)
{
    elt_state *st = elt_new(run);
    sslc_gc_declare(run, "dx", st->a, NULL, st->n, st->da, NULL);
}

static double gelu_loss(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_gelu_forward(st->y, st->a, (int64_t)st->n);
    return sslc_gc_dot(st->y, st->r, st->n);
}

static void gelu_backward(sslc_gc_run *run)
{
    elt_state *st = run->state;
    sslc_gelu_backward(st->da, st->r, st->a, (int64_t)st->n);
}

const sslc_gc_op sslc_gc_gelu = {"gelu", "nn", "n", gelu_setup, gelu_loss, gelu_backward,
                                 elt_teardown};

// ---- multi-head self-attention: N S D heads ---------------------------------------

typedef struct attn_state {
    sslc_attention_desc d;
    bool ref;
    float *x, *w_in, *b_in, *w_out, *b_out, *r, *y, *qkv, *probs, *ctx, *work;
    float *dx, *dw_in, *db_in, *dw_out, *db_out;
    double *ref_work;
    size_t nx;
} attn_state;

static void attn_setup(sslc_gc_run *run, bool ref)
{
    const sslc_gc_case *c = run->c;
    attn_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->d = (sslc_attention_desc){c->size[0], c->size[1], c->size[2], c->size[3]};
    st->ref = ref;
    const size_t D = (size_t)st->d.D, NS = (size_t)(st->d.N * st->d.S);
    st->nx = NS * D;
    st->x = sslc_gc_inputs_new(c, st->nx, 1);
    // nn.MultiheadAttention's scale: Xavier-uniform-sized weights, so the
    // softmax is neither flat nor saturated.
    st->w_in = sslc_test_randn(3 * D * D, c->seed + 2, 1.0 / sqrt((double)D));
    st->b_in = sslc_test_randn(3 * D, c->seed + 3, 0.1);
    st->w_out = sslc_test_randn(D * D, c->seed + 4, 1.0 / sqrt((double)D));
    st->b_out = sslc_test_randn(D, c->seed + 5, 0.1);
    st->r = sslc_gc_projection(c, st->nx);
    st->y = zeros(st->nx), st->qkv = zeros(3 * st->nx), st->ctx = zeros(st->nx);
    st->probs = zeros((size_t)(st->d.N * st->d.heads * st->d.S * st->d.S));
    st->work = zeros(sslc_attention_workspace_size(&st->d));
    st->ref_work = calloc(sslc_attention_ref_workspace_size(&st->d), sizeof(double));
    assert_non_null(st->ref_work);
    st->dx = zeros(st->nx), st->dw_in = zeros(3 * D * D), st->db_in = zeros(3 * D);
    st->dw_out = zeros(D * D), st->db_out = zeros(D);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
    sslc_gc_declare(run, "dw_in", st->w_in, NULL, 3 * D * D, st->dw_in, NULL);
    sslc_gc_declare(run, "db_in", st->b_in, NULL, 3 * D, st->db_in, NULL);
    sslc_gc_declare(run, "dw_out", st->w_out, NULL, D * D, st->dw_out, NULL);
    sslc_gc_declare(run, "db_out", st->b_out, NULL, D, st->db_out, NULL);
}

static void attn_fast_setup(sslc_gc_run *run) { attn_setup(run, false); }
static void attn_ref_setup(sslc_gc_run *run) { attn_setup(run, true); }

static double attn_loss(sslc_gc_run *run)
{
    attn_state *st = run->state;
    if (st->ref)
        sslc_attention_forward_ref(st->y, st->x, st->w_in, st->b_in, st->w_out, st->b_out, &st->d,
                                   st->ref_work);
    else
        sslc_attention_forward(st->y, st->qkv, st->probs, st->ctx, st->x, st->w_in, st->b_in,
                               st->w_out, st->b_out, &st->d);
    return sslc_gc_dot(st->y, st->r, st->nx);
}

static void attn_backward(sslc_gc_run *run)
{
    attn_state *st = run->state;
    const size_t D = (size_t)st->d.D;
    memset(st->dw_in, 0, 3 * D * D * sizeof(float));
    memset(st->db_in, 0, 3 * D * sizeof(float));
    memset(st->dw_out, 0, D * D * sizeof(float));
    memset(st->db_out, 0, D * sizeof(float));
    if (st->ref)
        sslc_attention_backward_ref(st->dx, st->dw_in, st->db_in, st->dw_out, st->db_out, st->r,
                                    st->x, st->w_in, st->b_in, st->w_out, st->b_out, &st->d,
                                    st->ref_work);
    else
        sslc_attention_backward(st->dx, st->dw_in, st->db_in, st->dw_out, st->db_out, st->r,
                                st->x, st->qkv, st->probs, st->ctx, st->w_in, st->w_out, &st->d,
                                st->work);
}

static void attn_teardown(sslc_gc_run *run)
{
    attn_state *st = run->state;
    free(st->x), free(st->w_in), free(st->b_in), free(st->w_out), free(st->b_out), free(st->r);
    free(st->y), free(st->qkv), free(st->probs), free(st->ctx), free(st->work), free(st->ref_work);
    free(st->dx), free(st->dw_in), free(st->db_in), free(st->dw_out), free(st->db_out), free(st);
}

const sslc_gc_op sslc_gc_attention = {"attention", "nn", "N S D heads", attn_fast_setup,
                                      attn_loss, attn_backward, attn_teardown};
const sslc_gc_op sslc_gc_attention_ref = {"attention_ref", "nn", "N S D heads", attn_ref_setup,
                                          attn_loss, attn_backward, attn_teardown};

// ---- patch embedding: N H W C D patch --------------------------------------------

typedef struct patch_state {
    sslc_patch_embed pe;
    float *x, *w, *b, *r, *y, *dx, *dw, *db, *ws;
    size_t nx, nw, ny;
} patch_state;

static void patch_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size;
    patch_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    assert_int_equal(sslc_patch_embed_create(&st->pe, s[0], s[1], s[2], s[3], s[4], s[5]),
                     SSLC_OK);
    st->nx = (size_t)(s[0] * s[1] * s[2] * s[3]);
    st->nw = (size_t)(s[4] * s[3] * s[5] * s[5]);
    st->ny = (size_t)(s[0] * (s[1] / s[5]) * (s[2] / s[5]) * s[4]);
    st->x = sslc_gc_inputs_new(c, st->nx, 1);
    st->w = sslc_gc_inputs_new(c, st->nw, 2);
    st->b = sslc_gc_inputs_new(c, (size_t)s[4], 3);
    st->r = sslc_gc_projection(c, st->ny);
    st->y = zeros(st->ny), st->dx = zeros(st->nx), st->dw = zeros(st->nw);
    st->db = zeros((size_t)s[4]);
    st->ws = zeros(sslc_patch_embed_workspace_size(&st->pe));
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
    sslc_gc_declare(run, "dw", st->w, NULL, st->nw, st->dw, NULL);
    sslc_gc_declare(run, "db", st->b, NULL, (size_t)s[4], st->db, NULL);
}

static double patch_loss(sslc_gc_run *run)
{
    patch_state *st = run->state;
    sslc_patch_embed_prepare(&st->pe, st->w, st->ws);
    sslc_patch_embed_forward(&st->pe, st->y, st->x, st->b, st->ws);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void patch_backward(sslc_gc_run *run)
{
    patch_state *st = run->state;
    memset(st->dw, 0, st->nw * sizeof(float));
    memset(st->db, 0, (size_t)st->pe.d.K * sizeof(float));
    sslc_patch_embed_prepare(&st->pe, st->w, st->ws);
    sslc_patch_embed_backward(&st->pe, st->dx, st->dw, st->db, st->r, st->x, st->ws);
}

static void patch_teardown(sslc_gc_run *run)
{
    patch_state *st = run->state;
    sslc_patch_embed_destroy(&st->pe);
    free(st->x), free(st->w), free(st->b), free(st->r), free(st->y), free(st->dx), free(st->dw);
    free(st->db), free(st->ws), free(st);
}

const sslc_gc_op sslc_gc_patch_embed = {"patch_embed", "nn", "N H W C D patch", patch_setup,
                                        patch_loss, patch_backward, patch_teardown};
