// Gradient-check op for conv-LoRA (src/models/lora.h): a convolution run
// with the merged weight W' = W + (alpha / r) B A, L = sum(y * r_proj). The
// analytic gradients of A and B are the convolution's dW' (its backward fed
// dy = r_proj) through sslc_lora_weight_backward; the numeric side moves A
// and B themselves, so the merge is inside what is checked. L is linear in
// each of A and B (and in x), so large steps carry no truncation error.
#include <stdlib.h>
#include <string.h>

#include "src/models/lora.h"
#include "src/nn/layers.h"
#include "tests/gradcheck/ops.h"
#include "tests/harness.h"

typedef struct lora_state {
    sslc_conv2d_desc d;
    sslc_conv2d_plan *plan;
    int64_t rank, D;
    float scale;
    float *ws, *x, *w0, *w, *a, *b, *r, *y, *dx, *dw, *da, *db;
    size_t nx, nw, ny;
} lora_state;

static float *zeros(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

static void lora_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size;
    lora_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    // Padding kernel / 2, as every ResNet convolution has.
    sslc_conv2d_desc_init(&st->d, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[5] / 2);
    st->rank = s[7];
    st->scale = 1.5f; // alpha / r with alpha = 1.5 r: a scale other than 1 is checked
    st->D = st->d.C * st->d.R * st->d.S;
    st->nx = (size_t)(st->d.N * st->d.H * st->d.W * st->d.C);
    st->nw = (size_t)(st->d.K * st->D);
    st->ny = (size_t)(st->d.N * st->d.P * st->d.Q * st->d.K);
    st->x = sslc_gc_inputs_new(c, st->nx, 1);
    st->w0 = sslc_gc_inputs_new(c, st->nw, 2);
    st->a = sslc_gc_inputs_new(c, (size_t)(st->rank * st->D), 3);
    st->b = sslc_gc_inputs_new(c, (size_t)(st->d.K * st->rank), 4); // not zero: B's gradient
    st->r = sslc_gc_projection(c, st->ny);                          // needs A, A's needs B
    st->w = zeros(st->nw), st->y = zeros(st->ny), st->dx = zeros(st->nx);
    st->dw = zeros(st->nw);
    st->da = zeros((size_t)(st->rank * st->D)), st->db = zeros((size_t)(st->d.K * st->rank));
    assert_int_equal(sslc_conv2d_plan_create(&st->plan, &st->d), SSLC_OK);
    st->ws = zeros(sslc_conv2d_workspace_size(st->plan));
    run->state = st;
    sslc_gc_declare(run, "dA", st->a, NULL, (size_t)(st->rank * st->D), st->da, NULL);
    sslc_gc_declare(run, "dB", st->b, NULL, (size_t)(st->d.K * st->rank), st->db, NULL);
    sslc_gc_declare(run, "dx", st->x, NULL, st->nx, st->dx, NULL);
}

static double lora_loss(sslc_gc_run *run)
{
    lora_state *st = run->state;
    sslc_lora_merge_weight(st->w, st->w0, st->a, st->b, st->d.K, st->D, st->rank, st->scale);
    sslc_conv2d_prepare(st->plan, st->w, st->ws);
    sslc_conv2d_forward(st->plan, st->y, st->x, st->ws);
    return sslc_gc_dot(st->y, st->r, st->ny);
}

static void lora_backward(sslc_gc_run *run)
{
    lora_state *st = run->state;
    memset(st->dw, 0, st->nw * sizeof(float));
    memset(st->da, 0, (size_t)(st->rank * st->D) * sizeof(float));
    memset(st->db, 0, (size_t)(st->d.K * st->rank) * sizeof(float));
    sslc_conv2d_backward(st->plan, st->dx, st->dw, st->r, st->x, st->ws);
    sslc_lora_weight_backward(st->da, st->db, st->dw, st->a, st->b, st->d.K, st->D, st->rank,
                              st->scale);
}

static void lora_teardown(sslc_gc_run *run)
{
    lora_state *st = run->state;
    sslc_conv2d_plan_destroy(st->plan);
    float *bufs[] = {st->ws, st->x, st->w0, st->w, st->a, st->b, st->r,
                     st->y,  st->dx, st->dw, st->da, st->db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(st);
}

const sslc_gc_op sslc_gc_lora_conv = {"lora_conv", "models", "N H W C K kernel stride rank",
                                      lora_setup, lora_loss, lora_backward, lora_teardown};

// ---- LoRA on a linear weight (the ViT's attention and MLP): N D K rank ----------------
// y = x W'^T + b with W' = W + scale B A, L = sum(y * r_proj); linear in A,
// B and x, so large steps carry no truncation error.

typedef struct lora_linear_state {
    int64_t N, D, K, rank;
    float *x, *w0, *w, *bias, *a, *b, *r, *y, *dx, *dw, *da, *db;
} lora_linear_state;

static void lora_linear_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    lora_linear_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->N = c->size[0], st->D = c->size[1], st->K = c->size[2], st->rank = c->size[3];
    const size_t nx = (size_t)(st->N * st->D), nw = (size_t)(st->K * st->D);
    const size_t ny = (size_t)(st->N * st->K);
    st->x = sslc_gc_inputs_new(c, nx, 1);
    st->w0 = sslc_gc_inputs_new(c, nw, 2);
    st->bias = sslc_gc_inputs_new(c, (size_t)st->K, 5);
    st->a = sslc_gc_inputs_new(c, (size_t)(st->rank * st->D), 3);
    st->b = sslc_gc_inputs_new(c, (size_t)(st->K * st->rank), 4);
    st->r = sslc_gc_projection(c, ny);
    st->w = zeros(nw), st->y = zeros(ny), st->dx = zeros(nx), st->dw = zeros(nw);
    st->da = zeros((size_t)(st->rank * st->D)), st->db = zeros((size_t)(st->K * st->rank));
    run->state = st;
    sslc_gc_declare(run, "dA", st->a, NULL, (size_t)(st->rank * st->D), st->da, NULL);
    sslc_gc_declare(run, "dB", st->b, NULL, (size_t)(st->K * st->rank), st->db, NULL);
    sslc_gc_declare(run, "dx", st->x, NULL, nx, st->dx, NULL);
}

static double lora_linear_loss(sslc_gc_run *run)
{
    lora_linear_state *st = run->state;
    sslc_lora_merge_weight(st->w, st->w0, st->a, st->b, st->K, st->D, st->rank, 1.5f);
    sslc_linear_forward(st->y, st->x, st->w, st->bias, st->N, st->D, st->K);
    return sslc_gc_dot(st->y, st->r, (size_t)(st->N * st->K));
}

static void lora_linear_backward(sslc_gc_run *run)
{
    lora_linear_state *st = run->state;
    memset(st->dw, 0, (size_t)(st->K * st->D) * sizeof(float));
    memset(st->da, 0, (size_t)(st->rank * st->D) * sizeof(float));
    memset(st->db, 0, (size_t)(st->K * st->rank) * sizeof(float));
    sslc_lora_merge_weight(st->w, st->w0, st->a, st->b, st->K, st->D, st->rank, 1.5f);
    sslc_linear_backward(st->dx, st->dw, NULL, st->r, st->x, st->w, st->N, st->D, st->K);
    sslc_lora_weight_backward(st->da, st->db, st->dw, st->a, st->b, st->K, st->D, st->rank, 1.5f);
}

static void lora_linear_teardown(sslc_gc_run *run)
{
    lora_linear_state *st = run->state;
    float *bufs[] = {st->x, st->w0, st->w, st->bias, st->a, st->b,
                     st->r, st->y,  st->dx, st->dw,  st->da, st->db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(st);
}

const sslc_gc_op sslc_gc_lora_linear = {"lora_linear", "models", "N D K rank", lora_linear_setup,
                                        lora_linear_loss, lora_linear_backward,
                                        lora_linear_teardown};
