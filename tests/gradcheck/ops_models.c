// Gradient-check ops for whole models (src/models): the SimCLR projection
// head, and a whole ResNet with a linear head, every parameter tensor
// checked. Both use SSLC_GC_MARGINS: each batch norm that feeds a ReLU gets
// the per-channel bias that keeps its ReLU inputs farthest from 0, with at
// least a quarter of the units inactive, so a small perturbation crosses no
// kink while inactive units stay in the check.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/models/mlp.h"
#include "src/core/rng.h"
#include "src/models/resnet.h"
#include "src/models/vit.h"
#include "src/nn/layers.h"
#include "tests/gradcheck/ops.h"
#include "tests/harness.h"

static float *zeros(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

// Declares every trainable tensor of a table.
static void declare_params(sslc_gc_run *run, sslc_params *p)
{
    for (int64_t i = 0; i < p->count; i++) {
        const sslc_tensor *t = &p->tensors[i];
        if (t->kind == SSLC_TENSOR_PARAM)
            sslc_gc_declare(run, t->name, sslc_params_data(p, t), NULL, (size_t)t->numel,
                            sslc_params_grad(p, t), NULL);
    }
}

// ---- the double twins' pieces ------------------------------------------------------

// Which ReLU inputs are positive at the point under check: a twin records
// them while placing the biases, then notes any sign change.
typedef struct kinks {
    bool *positive;
    size_t n, next;
    bool place, crossed;
    double least; // the least |ReLU input| of the pass
} kinks;

static void kinks_begin(kinks *k, bool place)
{
    k->next = 0, k->place = place, k->crossed = false, k->least = INFINITY;
}

// Batch norm in training mode without its bias, in place over (rows, C):
// gamma (x - mean) / sqrt(biased var + eps), as PyTorch and sslc.
static void twin_bn(double *x, const float *gamma, int64_t rows, int64_t C)
{
    for (int64_t k = 0; k < C; k++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < rows; i++)
            mean += x[i * C + k];
        mean /= (double)rows;
        for (int64_t i = 0; i < rows; i++)
            var += (x[i * C + k] - mean) * (x[i * C + k] - mean);
        double scale = gamma[k] / sqrt(var / (double)rows + (double)1e-5f);
        for (int64_t i = 0; i < rows; i++)
            x[i * C + k] = (x[i * C + k] - mean) * scale;
    }
}

// One ReLU site: u (rows, C) + beta, then max(., 0), in place. Placing first
// sets beta (SSLC_GC_MARGINS) and records the signs; otherwise a sign that
// differs from the record is noted.
static void twin_relu(kinks *k, double *u, float *beta, int64_t rows, int64_t C)
{
    if (k->place)
        for (int64_t c = 0; c < C; c++) {
            double margin;
            beta[c] = (float)sslc_gc_margin_bias(u + c, rows, C, &margin);
        }
    for (int64_t i = 0; i < rows * C; i++) {
        double v = u[i] + beta[i % C];
        bool positive = v > 0.0;
        assert_true(k->next < k->n);
        if (k->place)
            k->positive[k->next] = positive;
        else if (k->positive[k->next] != positive)
            k->crossed = true;
        k->next++;
        k->least = fmin(k->least, fabs(v));
        u[i] = positive ? v : 0.0;
    }
}

// y: (N, out) = x (N, in) w^T (+ b), in double.
static void twin_linear(double *y, const double *x, const float *w, const float *b, int64_t N,
                        int64_t in, int64_t out)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int64_t i = 0; i < in; i++)
                s += (double)w[o * in + i] * x[n * in + i];
            y[n * out + o] = s;
        }
}

// After placing: the pattern has units on both sides, and none near 0.
static void check_pattern(const kinks *k, double margin)
{
    size_t active = 0;
    for (size_t i = 0; i < k->next; i++)
        active += k->positive[i];
    printf("  %zu ReLU inputs (%zu active), at least %.3g from 0\n", k->next, active, k->least);
    assert_true(k->least >= margin);
    assert_true(active > 0 && active < k->next);
}

// sslc's float output against the twin's: the same function, to rounding.
static void check_forward(const char *what, const float *mine, const double *twin, size_t n,
                          double tol)
{
    float *t = zeros(n);
    for (size_t i = 0; i < n; i++)
        t[i] = (float)twin[i];
    sslc_assert_close(what, mine, t, n, tol, tol);
    free(t);
}

// ---- the SimCLR head: N in hidden out ------------------------------------------------
//
// Linear(no bias) -> BN -> ReLU -> Linear. simclr_head takes its numeric side
// from sslc's float forward; simclr_head:twin from a double twin of it.

typedef struct head_state {
    sslc_mlp head;
    sslc_mlp_run *run;
    int64_t N, in, hidden, out;
    float *x, *r, *dx;
    double *xd, *h, *z;
    kinks kinks;
} head_state;

static double head_twin(head_state *st, bool place)
{
    const float *v = st->head.params.values;
    const sslc_mlp_layer *l0 = &st->head.layers[0], *bn = &st->head.layers[1];
    const sslc_mlp_layer *l3 = &st->head.layers[3];
    for (int64_t i = 0; i < st->N * st->in; i++)
        st->xd[i] = st->x[i];
    twin_linear(st->h, st->xd, v + l0->w, NULL, st->N, st->in, st->hidden);
    twin_bn(st->h, v + bn->w, st->N, st->hidden);
    kinks_begin(&st->kinks, place);
    twin_relu(&st->kinks, st->h, st->head.params.values + bn->b, st->N, st->hidden);
    twin_linear(st->z, st->h, v + l3->w, v + l3->b, st->N, st->hidden, st->out);
    double loss = 0.0;
    for (int64_t i = 0; i < st->N * st->out; i++)
        loss += st->z[i] * st->r[i];
    return st->kinks.crossed ? NAN : loss;
}

static void head_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    head_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->N = c->size[0], st->in = c->size[1], st->hidden = c->size[2], st->out = c->size[3];
    char spec[128];
    assert_int_equal(sslc_mlp_head_spec(spec, sizeof spec, "simclr", st->hidden, st->out, false, 2),
                     SSLC_OK);
    assert_int_equal(sslc_mlp_create(&st->head, st->in, spec), SSLC_OK);
    assert_true(st->head.n_layers == 4 && st->head.layers[1].kind == SSLC_MLP_BN);
    sslc_mlp_init(&st->head, c->seed);
    assert_int_equal(sslc_mlp_run_create(&st->run, &st->head, st->N), SSLC_OK);
    size_t nx = (size_t)(st->N * st->in), ny = (size_t)(st->N * st->out);
    st->x = sslc_gc_inputs_new(c, nx, 1);
    st->r = sslc_gc_projection(c, ny);
    st->dx = zeros(nx);
    st->xd = malloc(nx * sizeof(double));
    st->h = malloc((size_t)(st->N * st->hidden) * sizeof(double));
    st->z = malloc(ny * sizeof(double));
    st->kinks.n = (size_t)(st->N * st->hidden);
    st->kinks.positive = malloc(st->kinks.n * sizeof(bool));
    assert_true(st->xd && st->h && st->z && st->kinks.positive);
    double twin = head_twin(st, true); // BN's bias places the ReLU inputs
    check_pattern(&st->kinks, c->margin);
    const float *z = sslc_mlp_forward(st->run, &st->head, st->x, true);
    check_forward("head output: sslc vs twin", z, st->z, ny, 1e-5);
    printf("  loss: sslc %.9g, twin %.9g\n", sslc_gc_dot(z, st->r, ny), twin);
    run->state = st;
    sslc_gc_declare(run, "dx", st->x, NULL, nx, st->dx, NULL);
    declare_params(run, &st->head.params);
}

// sslc's float forward; NaN across a kink (the twin says which side).
static double head_loss(sslc_gc_run *run)
{
    head_state *st = run->state;
    if (isnan(head_twin(st, false)))
        return NAN;
    return sslc_gc_dot(sslc_mlp_forward(st->run, &st->head, st->x, true), st->r,
                       (size_t)(st->N * st->out));
}

static double head_twin_loss(sslc_gc_run *run) { return head_twin(run->state, false); }

static void head_backward(sslc_gc_run *run)
{
    head_state *st = run->state;
    sslc_mlp_forward(st->run, &st->head, st->x, true); // the twin's loss does not run it
    sslc_params_zero_grad(&st->head.params);
    sslc_mlp_backward(st->run, &st->head, st->dx, st->r);
}

static void head_teardown(sslc_gc_run *run)
{
    head_state *st = run->state;
    sslc_mlp_run_destroy(st->run);
    sslc_mlp_destroy(&st->head);
    free(st->x), free(st->r), free(st->dx), free(st->xd), free(st->h), free(st->z);
    free(st->kinks.positive), free(st);
}

const sslc_gc_op sslc_gc_simclr_head = {"simclr_head", "models", "N in hidden out", head_setup,
                                        head_loss, head_backward, head_teardown};
const sslc_gc_op sslc_gc_simclr_head_twin = {"simclr_head:twin", "models", "N in hidden out",
                                             head_setup, head_twin_loss, head_backward,
                                             head_teardown};

// ---- a whole ResNet (CIFAR stem) and a linear head: depth in width N HW out ---------
//
// Every parameter tensor is checked, batch-norm affine ones included, with
// inactive units. resnet+head takes its numeric side from sslc's own float
// forward, whose rounding (amplified through twenty batch norms) limits how
// well a difference quotient resolves a gradient; resnet+head:twin from a
// double-precision twin of that forward, written here from the network's
// own unit table, after checking that the two compute the same features.

typedef struct net_state {
    sslc_resnet net;
    sslc_resnet_run *run;
    sslc_mlp head;
    sslc_mlp_run *hrun;
    int64_t N, HW;
    float *x, *r, *dfeat;
    size_t ny;
    double *act[4], *feat, *z; // the twin's activations (each as large as the largest)
    double *wt;                // its convolution weights, transposed
    kinks kinks;
} net_state;

// y: (N, P, Q, out) = conv(x: (N, H, W, in)) of unit u, in double. wt:
// scratch for the weights as (kernel, kernel, in, out), so the inner loop
// runs over contiguous outputs.
static void twin_conv(double *y, const double *x, const float *w, double *wt,
                      const sslc_conv_bn *u, int64_t N, int64_t H, int64_t W, int64_t *P,
                      int64_t *Q)
{
    const int64_t K = u->kernel, C = u->in, O = u->out;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < K * K; t++)
                wt[(t * C + c) * O + o] = w[(o * C + c) * K * K + t];
    *P = (H + 2 * u->pad - K) / u->stride + 1;
    *Q = (W + 2 * u->pad - K) / u->stride + 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < *P; p++)
            for (int64_t q = 0; q < *Q; q++) {
                double *acc = y + ((n * *P + p) * *Q + q) * O;
                for (int64_t o = 0; o < O; o++)
                    acc[o] = 0.0;
                for (int64_t i = 0; i < K; i++)
                    for (int64_t j = 0; j < K; j++) {
                        int64_t h = p * u->stride - u->pad + i, v = q * u->stride - u->pad + j;
                        if (h < 0 || h >= H || v < 0 || v >= W)
                            continue;
                        const double *xp = x + ((n * H + h) * W + v) * C;
                        const double *wp = wt + (i * K + j) * C * O;
                        for (int64_t c = 0; c < C; c++)
                            for (int64_t o = 0; o < O; o++)
                                acc[o] += xp[c] * wp[c * O + o];
                    }
            }
}

// A buffer of act[0..2] that is neither a nor b.
static double *spare(net_state *st, const double *a, const double *b)
{
    for (int i = 0;; i++)
        if (st->act[i] != a && st->act[i] != b)
            return st->act[i];
}

// The twin of sslc_resnet_forward (training mode) and the head: L =
// sum(head(features) * r) in double; features in st->feat, head output in
// st->z. Placing sets, in forward order, the bias of each batch norm whose
// output meets a ReLU: the unit's own, or the block's join max(bn2 +
// shortcut, 0) (the downsample's batch norm meets no ReLU of its own).
static double net_twin(net_state *st, bool place)
{
    sslc_resnet *net = &st->net;
    float *values = net->params.values;
    const int64_t N = st->N;
    int64_t H = st->HW, W = st->HW, P, Q;
    kinks_begin(&st->kinks, place);
    double *x = st->act[0];
    for (int64_t i = 0; i < N * H * W * net->config.in_channels; i++)
        x[i] = st->x[i];
    const sslc_conv_bn *u = &net->units[0];
    double *cur = spare(st, x, NULL);
    twin_conv(cur, x, values + u->w, st->wt, u, N, H, W, &P, &Q);
    H = P, W = Q;
    twin_bn(cur, values + u->gamma, N * H * W, u->out);
    twin_relu(&st->kinks, cur, values + u->beta, N * H * W, u->out);
    for (int b = 0; b < net->n_blocks; b++) {
        const sslc_resnet_block *blk = &net->blocks[b];
        double *in = cur, *y = cur;
        const int64_t in_H = H, in_W = W;
        for (int k = 0; k < blk->count; k++) {
            u = &net->units[blk->first + k];
            double *from = y;
            y = spare(st, in, from);
            twin_conv(y, from, values + u->w, st->wt, u, N, H, W, &P, &Q);
            H = P, W = Q;
            twin_bn(y, values + u->gamma, N * H * W, u->out);
            if (k < blk->count - 1) // the last unit's bias goes in at the join
                twin_relu(&st->kinks, y, values + u->beta, N * H * W, u->out);
        }
        const int64_t n = N * H * W * u->out;
        if (blk->down >= 0) {
            const sslc_conv_bn *d = &net->units[blk->down];
            double *s = st->act[3];
            twin_conv(s, in, values + d->w, st->wt, d, N, in_H, in_W, &P, &Q);
            twin_bn(s, values + d->gamma, N * H * W, d->out);
            for (int64_t i = 0; i < n; i++)
                y[i] += s[i] + values[d->beta + i % d->out];
        } else {
            for (int64_t i = 0; i < n; i++)
                y[i] += in[i];
        }
        twin_relu(&st->kinks, y, values + u->beta, N * H * W, u->out);
        cur = y;
    }
    const int64_t F = net->feature_dim, HW = H * W;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < F; c++) {
            double s = 0.0;
            for (int64_t i = 0; i < HW; i++)
                s += cur[(n * HW + i) * F + c];
            st->feat[n * F + c] = s / (double)HW;
        }
    const sslc_mlp_layer *lin = &st->head.layers[0];
    const float *hv = st->head.params.values;
    twin_linear(st->z, st->feat, hv + lin->w, hv + lin->b, N, F, lin->out);
    double loss = 0.0;
    for (size_t i = 0; i < st->ny; i++)
        loss += st->z[i] * st->r[i];
    return st->kinks.crossed ? NAN : loss;
}

static void net_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size, out = s[5];
    net_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    st->N = s[3], st->HW = s[4];
    sslc_resnet_config rc = {.depth = (int)s[0], .in_channels = s[1], .width = s[2],
                             .cifar_stem = true}; // the twin walks no max pool
    assert_int_equal(sslc_resnet_create(&st->net, &rc), SSLC_OK);
    sslc_resnet_init(&st->net, c->seed);
    // Non-trivial affine parameters: gamma in [0.5, 1.5], the downsample
    // biases N(0, 0.2^2); the biases that meet a ReLU are placed by the twin.
    sslc_rng rng = sslc_rng_make(c->seed, 5, 0, 0, 0);
    for (int i = 0; i < st->net.n_units; i++)
        for (int64_t k = 0; k < st->net.units[i].out; k++) {
            st->net.params.values[st->net.units[i].gamma + k] =
                (float)sslc_rng_range(&rng, 0.5, 1.5);
            st->net.params.values[st->net.units[i].beta + k] = (float)(0.2 * sslc_rng_normal(&rng));
        }
    assert_int_equal(sslc_resnet_run_create(&st->run, &st->net, st->N, st->HW, st->HW), SSLC_OK);
    char spec[32];
    snprintf(spec, sizeof spec, "linear:%lld", (long long)out);
    assert_int_equal(sslc_mlp_create(&st->head, st->net.feature_dim, spec), SSLC_OK);
    sslc_mlp_init(&st->head, c->seed + 1);
    assert_int_equal(sslc_mlp_run_create(&st->hrun, &st->head, st->N), SSLC_OK);
    st->x = sslc_gc_inputs_new(c, (size_t)(st->N * st->HW * st->HW * s[1]), 1);
    st->ny = (size_t)(st->N * out);
    st->r = sslc_gc_projection(c, st->ny);
    st->dfeat = zeros((size_t)(st->N * st->net.feature_dim));
    // The twin's buffers: the largest activation (the input, or any unit's output).
    size_t largest = (size_t)(st->N * st->HW * st->HW * s[1]);
    for (int i = 0; i < st->net.n_units; i++)
        if ((size_t)(st->N * st->HW * st->HW * st->net.units[i].out) > largest)
            largest = (size_t)(st->N * st->HW * st->HW * st->net.units[i].out);
    for (int i = 0; i < 4; i++) {
        st->act[i] = malloc(largest * sizeof(double));
        assert_non_null(st->act[i]);
    }
    size_t weights = 0;
    for (int i = 0; i < st->net.n_units; i++) {
        const sslc_conv_bn *u = &st->net.units[i];
        weights = weights > (size_t)(u->kernel * u->kernel * u->in * u->out)
                      ? weights
                      : (size_t)(u->kernel * u->kernel * u->in * u->out);
    }
    st->wt = malloc(weights * sizeof(double));
    st->feat = malloc((size_t)(st->N * st->net.feature_dim) * sizeof(double));
    st->z = malloc(st->ny * sizeof(double));
    st->kinks.n = (size_t)st->net.n_units * largest;
    st->kinks.positive = malloc(st->kinks.n * sizeof(bool));
    assert_true(st->wt && st->feat && st->z && st->kinks.positive);
    double twin = net_twin(st, true);
    check_pattern(&st->kinks, c->margin);
    sslc_resnet_prepare(st->run, &st->net);
    const float *f = sslc_resnet_forward(st->run, &st->net, st->x, true);
    check_forward("features: sslc vs twin", f, st->feat, (size_t)(st->N * st->net.feature_dim),
                  1e-4);
    double mine = sslc_gc_dot(sslc_mlp_forward(st->hrun, &st->head, f, true), st->r, st->ny);
    printf("  loss: sslc %.9g, twin %.9g\n", mine, twin);
    run->state = st;
    declare_params(run, &st->net.params);
    declare_params(run, &st->head.params);
}

// sslc's float forward; NaN across a kink (the twin says which side).
static double net_loss(sslc_gc_run *run)
{
    net_state *st = run->state;
    if (isnan(net_twin(st, false)))
        return NAN;
    sslc_resnet_prepare(st->run, &st->net);
    const float *f = sslc_resnet_forward(st->run, &st->net, st->x, true);
    return sslc_gc_dot(sslc_mlp_forward(st->hrun, &st->head, f, true), st->r, st->ny);
}

static double net_twin_loss(sslc_gc_run *run) { return net_twin(run->state, false); }

static void net_backward(sslc_gc_run *run)
{
    net_state *st = run->state;
    // sslc's forward at this point (the twin's loss does not run it).
    sslc_resnet_prepare(st->run, &st->net);
    const float *f = sslc_resnet_forward(st->run, &st->net, st->x, true);
    sslc_mlp_forward(st->hrun, &st->head, f, true);
    sslc_params_zero_grad(&st->net.params);
    sslc_params_zero_grad(&st->head.params);
    sslc_mlp_backward(st->hrun, &st->head, st->dfeat, st->r);
    sslc_resnet_backward(st->run, &st->net, st->dfeat);
}

static void net_teardown(sslc_gc_run *run)
{
    net_state *st = run->state;
    sslc_mlp_run_destroy(st->hrun);
    sslc_mlp_destroy(&st->head);
    sslc_resnet_run_destroy(st->run);
    sslc_resnet_destroy(&st->net);
    for (int i = 0; i < 4; i++)
        free(st->act[i]);
    free(st->wt), free(st->feat), free(st->z), free(st->kinks.positive), free(st->x);
    free(st->r);
    free(st->dfeat), free(st);
}

const sslc_gc_op sslc_gc_resnet_head = {"resnet+head", "models", "depth in width N HW out",
                                        net_setup, net_loss, net_backward, net_teardown};
const sslc_gc_op sslc_gc_resnet_head_twin = {"resnet+head:twin", "models",
                                             "depth in width N HW out", net_setup, net_twin_loss,
                                             net_backward, net_teardown};

// ---- a whole Vision Transformer: layers D heads N image patch C pos ------------------
// L = sum(features * r); MLP dim 2D; pos 0: learned, 1: fixed sin-cos. The
// model is smooth (GELU, softmax, layer norm): no kinks to place.

typedef struct vit_state {
    sslc_vit net;
    sslc_vit_run *run;
    float *x, *r;
    size_t ny;
} vit_state;

static void vit_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size;
    vit_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    sslc_vit_config vc = {.layers = s[0], .hidden = s[1], .heads = s[2], .mlp_dim = 2 * s[1],
                          .image_size = s[4], .patch = s[5], .in_channels = s[6],
                          .pos = s[7] ? SSLC_VIT_POS_SINCOS : SSLC_VIT_POS_LEARNED};
    assert_int_equal(sslc_vit_create(&st->net, &vc), SSLC_OK);
    sslc_vit_init(&st->net, c->seed);
    // Non-trivial layer norms, biases and class token (torchvision starts them at 1 or 0).
    sslc_rng rng = sslc_rng_make(c->seed, 6, 0, 0, 0);
    sslc_params *p = &st->net.params;
    for (int64_t i = 0; i < p->count; i++) {
        const sslc_tensor *t = &p->tensors[i];
        if (t->kind == SSLC_TENSOR_PARAM && (t->flags & SSLC_TENSOR_NO_DECAY))
            for (int64_t k = 0; k < t->numel; k++)
                sslc_params_data(p, t)[k] += (float)(0.2 * sslc_rng_normal(&rng));
    }
    assert_int_equal(sslc_vit_run_create(&st->run, &st->net, s[3]), SSLC_OK);
    st->x = sslc_gc_inputs_new(c, (size_t)(s[3] * s[4] * s[4] * s[6]), 1);
    st->ny = (size_t)(s[3] * s[1]);
    st->r = sslc_gc_projection(c, st->ny);
    run->state = st;
    declare_params(run, p);
}

static double vit_loss(sslc_gc_run *run)
{
    vit_state *st = run->state;
    sslc_vit_prepare(st->run, &st->net);
    return sslc_gc_dot(sslc_vit_forward(st->run, &st->net, st->x, true), st->r, st->ny);
}

static void vit_backward(sslc_gc_run *run)
{
    vit_state *st = run->state;
    sslc_vit_prepare(st->run, &st->net);
    sslc_vit_forward(st->run, &st->net, st->x, true);
    sslc_params_zero_grad(&st->net.params);
    sslc_vit_backward(st->run, &st->net, st->r);
}

static void vit_teardown(sslc_gc_run *run)
{
    vit_state *st = run->state;
    sslc_vit_run_destroy(st->run);
    sslc_vit_destroy(&st->net);
    free(st->x), free(st->r), free(st);
}

const sslc_gc_op sslc_gc_vit = {"vit", "models", "layers D heads N image patch C pos", vit_setup,
                                vit_loss, vit_backward, vit_teardown};

// ---- a ViT with visual prompts: layers D heads N image patch prompts deep ------------
// As vit (1 channel, learned positions), with P prompt tokens after the class
// token (vit.h, VPT): the prompts' gradient and, with them in the sequence,
// every weight's.

static void vit_prompt_setup(sslc_gc_run *run)
{
    const sslc_gc_case *c = run->c;
    const int64_t *s = c->size;
    sslc_gc_case plain = *c;
    plain.size[6] = 1, plain.size[7] = 0; // C = 1, learned position embedding
    run->c = &plain;
    vit_setup(run);
    run->c = c;
    vit_state *st = run->state;
    sslc_vit_run_destroy(st->run);
    assert_int_equal(sslc_vit_add_prompts(&st->net, s[6], s[7] != 0), SSLC_OK);
    sslc_vit_init_prompts(&st->net, c->seed);
    assert_int_equal(sslc_vit_run_create(&st->run, &st->net, s[3]), SSLC_OK);
    declare_params(run, &st->net.prompt);
}

static void vit_prompt_backward(sslc_gc_run *run)
{
    vit_state *st = run->state;
    sslc_params_zero_grad(&st->net.prompt);
    vit_backward(run);
}

const sslc_gc_op sslc_gc_vit_prompt = {"vit_prompt", "models",
                                       "layers D heads N image patch prompts deep",
                                       vit_prompt_setup, vit_loss, vit_prompt_backward,
                                       vit_teardown};
