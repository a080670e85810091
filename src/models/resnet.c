#include "src/models/resnet.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"

static const float BN_MOMENTUM = 0.1f; // PyTorch defaults
static const float BN_EPS = 1e-5f;

const char *sslc_resnet_arch(const sslc_resnet_config *config)
{
    switch (config->depth) {
    case 18: return "resnet18";
    case 34: return "resnet34";
    case 50: return "resnet50";
    }
    return "resnet?";
}

sslc_status sslc_resnet_parse_arch(sslc_resnet_config *config, const char *arch)
{
    static const int depths[] = {18, 34, 50};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        sslc_resnet_config c = {.depth = depths[i]};
        if (strcmp(arch, sslc_resnet_arch(&c)) == 0) {
            config->depth = depths[i];
            return SSLC_OK;
        }
    }
    return sslc_error(SSLC_ERR_INVALID, "unknown architecture '%s' (resnet18, resnet34, resnet50)",
                      arch);
}

// ---- building the table ----------------------------------------------------------

static sslc_status add_unit(sslc_resnet *net, const char *conv_name, const char *bn_name,
                            int64_t in, int64_t out, int64_t kernel, int64_t stride)
{
    sslc_conv_bn *u = &net->units[net->n_units++];
    *u = (sslc_conv_bn){.in = in, .out = out, .kernel = kernel, .stride = stride,
                        .pad = kernel / 2};
    char name[SSLC_TENSOR_NAME_CAP];
    sslc_params *p = &net->params;
    const int64_t wshape[4] = {out, in, kernel, kernel}, cshape[1] = {out}, one[1] = {1};
    sslc_status st;
    snprintf(name, sizeof name, "%s.weight", conv_name);
    if ((st = sslc_params_add(p, name, SSLC_TENSOR_PARAM, 0, 4, wshape, &u->w)))
        return st;
    snprintf(name, sizeof name, "%s.weight", bn_name);
    if ((st = sslc_params_add(p, name, SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, cshape,
                              &u->gamma)))
        return st;
    snprintf(name, sizeof name, "%s.bias", bn_name);
    if ((st = sslc_params_add(p, name, SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, cshape,
                              &u->beta)))
        return st;
    snprintf(name, sizeof name, "%s.running_mean", bn_name);
    if ((st = sslc_params_add(p, name, SSLC_TENSOR_BUFFER, 0, 1, cshape, &u->mean)))
        return st;
    snprintf(name, sizeof name, "%s.running_var", bn_name);
    if ((st = sslc_params_add(p, name, SSLC_TENSOR_BUFFER, 0, 1, cshape, &u->var)))
        return st;
    snprintf(name, sizeof name, "%s.num_batches_tracked", bn_name);
    // PyTorch stores a 0-d int64 tensor; shape (1,) here, checkpoints write 0-d.
    return sslc_params_add(p, name, SSLC_TENSOR_BUFFER, SSLC_TENSOR_INT64, 1, one, &u->batches);
}

sslc_status sslc_resnet_create(sslc_resnet *net, const sslc_resnet_config *config)
{
    memset(net, 0, sizeof *net);
    static const int basic18[4] = {2, 2, 2, 2}, deep34[4] = {3, 4, 6, 3};
    const int *stages;
    bool bottleneck = false;
    switch (config->depth) {
    case 18: stages = basic18; break;
    case 34: stages = deep34; break;
    case 50: stages = deep34; bottleneck = true; break;
    default:
        return sslc_error(SSLC_ERR_INVALID, "resnet: depth %d is not 18, 34 or 50", config->depth);
    }
    if (config->in_channels < 1 || config->width < 1)
        return sslc_error(SSLC_ERR_INVALID, "resnet: in_channels %lld and width %lld must be >= 1",
                          (long long)config->in_channels, (long long)config->width);
    net->config = *config;
    sslc_params_init(&net->params);
    int total_blocks = stages[0] + stages[1] + stages[2] + stages[3];
    net->units = sslc_calloc((size_t)(1 + 4 * total_blocks), sizeof *net->units);
    net->blocks = sslc_calloc((size_t)total_blocks, sizeof *net->blocks);
    if (!net->units || !net->blocks) {
        sslc_resnet_destroy(net);
        return SSLC_ERR_NOMEM;
    }
    sslc_status st;
    const int64_t w = config->width, expansion = bottleneck ? 4 : 1;
    if (config->cifar_stem)
        st = add_unit(net, "conv1", "bn1", config->in_channels, w, 3, 1);
    else
        st = add_unit(net, "conv1", "bn1", config->in_channels, w, 7, 2);
    if (st)
        goto fail;
    int64_t in = w;
    for (int s = 0; s < 4; s++) {
        int64_t planes = w << s;
        for (int b = 0; b < stages[s]; b++) {
            int64_t stride = (s > 0 && b == 0) ? 2 : 1;
            sslc_resnet_block *blk = &net->blocks[net->n_blocks++];
            blk->first = net->n_units;
            blk->down = -1;
            char conv[64], bn[64];
            int nconv = bottleneck ? 3 : 2;
            for (int i = 0; i < nconv; i++) {
                snprintf(conv, sizeof conv, "layer%d.%d.conv%d", s + 1, b, i + 1);
                snprintf(bn, sizeof bn, "layer%d.%d.bn%d", s + 1, b, i + 1);
                int64_t cin, cout, k, str;
                if (bottleneck) { // torchvision v1.5: the stride sits on the 3x3
                    cin = i == 0 ? in : planes;
                    cout = i == 2 ? planes * expansion : planes;
                    k = i == 1 ? 3 : 1;
                    str = i == 1 ? stride : 1;
                } else {
                    cin = i == 0 ? in : planes;
                    cout = planes;
                    k = 3;
                    str = i == 0 ? stride : 1;
                }
                if ((st = add_unit(net, conv, bn, cin, cout, k, str)))
                    goto fail;
            }
            blk->count = nconv;
            if (stride != 1 || in != planes * expansion) {
                snprintf(conv, sizeof conv, "layer%d.%d.downsample.0", s + 1, b);
                snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s + 1, b);
                blk->down = net->n_units;
                if ((st = add_unit(net, conv, bn, in, planes * expansion, 1, stride)))
                    goto fail;
                net->units[blk->down].pad = 0;
            }
            in = planes * expansion;
        }
    }
    net->feature_dim = in;
    if ((st = sslc_params_alloc(&net->params)))
        goto fail;
    return SSLC_OK;
fail:
    sslc_resnet_destroy(net);
    return st;
}

void sslc_resnet_destroy(sslc_resnet *net)
{
    if (!net)
        return;
    sslc_params_free(&net->params);
    free(net->units);
    free(net->blocks);
    memset(net, 0, sizeof *net);
}

void sslc_resnet_init(sslc_resnet *net, uint64_t seed)
{
    sslc_params *p = &net->params;
    for (int i = 0; i < net->n_units; i++) {
        const sslc_conv_bn *u = &net->units[i];
        // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out)
        double std = sqrt(2.0 / (double)(u->out * u->kernel * u->kernel));
        sslc_rng rng = sslc_rng_make(seed, 0x5e5e, (uint64_t)i, 0, 0);
        int64_t n = u->out * u->in * u->kernel * u->kernel;
        for (int64_t k = 0; k < n; k++)
            p->values[u->w + k] = (float)(std * sslc_rng_normal(&rng));
        for (int64_t c = 0; c < u->out; c++) {
            p->values[u->gamma + c] = 1.0f;
            p->values[u->beta + c] = 0.0f;
            p->buffers[u->mean + c] = 0.0f;
            p->buffers[u->var + c] = 1.0f;
        }
        p->buffers[u->batches] = 0.0f;
    }
}

// ---- running it ------------------------------------------------------------------

typedef struct unit_state {
    sslc_conv2d_plan *plan;
    int64_t H, W, P, Q; // input and output spatial size
    float *pre;         // (N, P, Q, out): convolution output, batch-norm input
    float *act;         // (N, P, Q, out): batch-norm output (after ReLU or the join)
    float *mean, *rstd; // (out,)
    double *stats;      // (2 out,) in run->bn_stats: summed batch statistics (ACCUMULATE)
} unit_state;

struct sslc_resnet_run {
    int64_t N, H, W;
    const float *input; // the last forward's x: conv1's weight gradient needs it
    unit_state *units;
    int n_units;
    int64_t pool_H, pool_W; // max-pool output (ImageNet stem)
    float *pooled;          // (N, pool_H, pool_W, width): after the stem's max pool
    int32_t *argmax;
    float *features;     // (N, feature_dim)
    float *grad[4];      // activation-gradient buffers, each of the largest size
    float *conv_ws;      // shared convolution scratch
    double *bn_ws;       // shared batch-norm scratch
    sslc_bn_running bn_running;
    const sslc_bn_sync *bn_sync;
    double *bn_stats; // every unit's stats, one block: one collective to sum them
    int64_t bn_stats_n;
    sslc_grads_ready_fn grads_ready;
    void *grads_ready_ctx;
    // An inference run keeps no activations for a backward pass: the units
    // share one convolution output and rotate their outputs through three
    // buffers (the block's input, the branch's latest output, the next one).
    bool inference;
    float *shared[4]; // inference: shared[0] every unit's pre, shared[1..3] the acts
    size_t bytes;
};

static float *run_alloc(sslc_resnet_run *run, size_t floats)
{
    run->bytes += floats * sizeof(float);
    return sslc_aligned_alloc(floats * sizeof(float));
}

int64_t sslc_resnet_run_batch(const sslc_resnet_run *run) { return run->N; }

double sslc_resnet_run_flops(const sslc_resnet_run *run, const sslc_resnet *net)
{
    double flops = 0.0;
    for (int i = 0; i < net->n_units; i++) {
        const sslc_conv_bn *u = &net->units[i];
        const unit_state *s = &run->units[i];
        flops += 2.0 * (double)run->N * (double)(s->P * s->Q) * (double)(u->out * u->in) *
                 (double)(u->kernel * u->kernel);
    }
    return flops;
}
size_t sslc_resnet_run_bytes(const sslc_resnet_run *run) { return run->bytes; }

// The buffer of shared[1..3] that is neither a nor b.
static int other_buffer(int a, int b)
{
    for (int k = 1; k < 4; k++)
        if (k != a && k != b)
            return k;
    return -1; // not reached: three buffers, two excluded
}

// Points each unit's pre and act at the shared buffers, walking the net as
// forward does: a unit never writes the buffer it reads nor its block's
// input, which the shortcut still needs.
static void assign_inference_buffers(sslc_resnet_run *run, const sslc_resnet *net)
{
    for (int i = 0; i < net->n_units; i++)
        run->units[i].pre = run->shared[0];
    int cur = 1;
    run->units[0].act = run->shared[cur];
    if (!net->config.cifar_stem) {
        cur = 2;
        run->pooled = run->shared[cur];
    }
    for (int b = 0; b < net->n_blocks; b++) {
        const sslc_resnet_block *blk = &net->blocks[b];
        int in = cur;
        for (int k = 0; k < blk->count; k++) {
            cur = other_buffer(in, cur);
            run->units[blk->first + k].act = run->shared[cur];
        }
        if (blk->down >= 0)
            run->units[blk->down].act = run->shared[other_buffer(in, cur)];
    }
}

static sslc_status run_create(sslc_resnet_run **out, const sslc_resnet *net, int64_t N,
                              int64_t H, int64_t W, bool inference)
{
    *out = NULL;
    sslc_resnet_run *run = sslc_calloc(1, sizeof *run);
    if (!run)
        return SSLC_ERR_NOMEM;
    run->inference = inference;
    run->N = N;
    run->H = H;
    run->W = W;
    run->n_units = net->n_units;
    run->units = sslc_calloc((size_t)net->n_units, sizeof *run->units);
    sslc_status st = SSLC_ERR_NOMEM;
    if (!run->units)
        goto fail;
    // Geometry first: each unit's input size, walking the net as forward does.
    int64_t h = H, w = W;
    run->units[0].H = h;
    run->units[0].W = w;
    for (int i = 0; i < net->n_units; i++) {
        const sslc_conv_bn *u = &net->units[i];
        unit_state *s = &run->units[i];
        if (i > 0 && !s->H) { // main-branch unit: reads the previous output
            s->H = h;
            s->W = w;
        }
        s->P = (s->H + 2 * u->pad - u->kernel) / u->stride + 1;
        s->Q = (s->W + 2 * u->pad - u->kernel) / u->stride + 1;
        if (s->P < 1 || s->Q < 1) {
            st = sslc_error(SSLC_ERR_INVALID, "resnet: a %lldx%lld input is too small for %s",
                            (long long)H, (long long)W, sslc_resnet_arch(&net->config));
            goto fail;
        }
        if (i == 0 && !net->config.cifar_stem) {
            run->pool_H = (s->P + 2 - 3) / 2 + 1;
            run->pool_W = (s->Q + 2 - 3) / 2 + 1;
            h = run->pool_H;
            w = run->pool_W;
        } else { // (a downsample's output has the size of its block's output)
            h = s->P;
            w = s->Q;
        }
        // A block's downsample reads the block's input, not the previous unit.
        for (int b = 0; b < net->n_blocks; b++)
            if (net->blocks[b].first == i + 1 && net->blocks[b].down >= 0) {
                run->units[net->blocks[b].down].H = h;
                run->units[net->blocks[b].down].W = w;
            }
    }
    size_t largest = 0, ws = 0;
    int64_t maxc = 0;
    for (int i = 0; i < net->n_units; i++) {
        const sslc_conv_bn *u = &net->units[i];
        unit_state *s = &run->units[i];
        sslc_conv2d_desc d;
        sslc_conv2d_desc_init(&d, N, s->H, s->W, u->in, u->out, u->kernel, u->stride, u->pad);
        if ((st = sslc_conv2d_plan_create(&s->plan, &d)))
            goto fail;
        size_t n = (size_t)(N * s->P * s->Q * u->out);
        size_t in_size = (size_t)(N * s->H * s->W * u->in);
        if (!inference) {
            s->pre = run_alloc(run, n);
            s->act = run_alloc(run, n);
            s->mean = run_alloc(run, (size_t)u->out);
            s->rstd = run_alloc(run, (size_t)u->out);
            run->bn_stats_n += 2 * u->out;
            if (!s->pre || !s->act || !s->mean || !s->rstd) {
                st = SSLC_ERR_NOMEM;
                goto fail;
            }
        }
        largest = n > largest ? n : largest;
        largest = in_size > largest ? in_size : largest;
        size_t cws = sslc_conv2d_workspace_size(s->plan);
        ws = cws > ws ? cws : ws;
        maxc = u->out > maxc ? u->out : maxc;
    }
    if (!net->config.cifar_stem) {
        size_t pn = (size_t)(N * run->pool_H * run->pool_W * net->units[0].out);
        if (!inference)
            run->pooled = run_alloc(run, pn);
        run->argmax = sslc_aligned_alloc(pn * sizeof(int32_t));
        run->bytes += pn * sizeof(int32_t);
        if ((!inference && !run->pooled) || !run->argmax) {
            st = SSLC_ERR_NOMEM;
            goto fail;
        }
    }
    // Training keeps every activation and needs four gradient buffers; an
    // inference run only the four shared ones. Each is of the largest size.
    float **bufs = inference ? run->shared : run->grad;
    for (int k = 0; k < 4; k++)
        if (!(bufs[k] = run_alloc(run, largest))) {
            st = SSLC_ERR_NOMEM;
            goto fail;
        }
    if (inference)
        assign_inference_buffers(run, net);
    run->features = run_alloc(run, (size_t)(N * net->feature_dim));
    if (!inference) {
        if (!(run->bn_stats = sslc_calloc((size_t)run->bn_stats_n, sizeof(double)))) {
            st = SSLC_ERR_NOMEM;
            goto fail;
        }
        for (int i = 0, at = 0; i < net->n_units; at += 2 * (int)net->units[i].out, i++)
            run->units[i].stats = run->bn_stats + at;
    }
    run->conv_ws = ws ? run_alloc(run, ws) : NULL;
    size_t bnw = sslc_batchnorm_workspace_size(maxc);
    run->bn_ws = sslc_aligned_alloc(bnw * sizeof(double));
    run->bytes += bnw * sizeof(double);
    if (!run->features || (ws && !run->conv_ws) || !run->bn_ws) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    *out = run;
    return SSLC_OK;
fail:
    sslc_resnet_run_destroy(run);
    return st;
}

sslc_status sslc_resnet_run_create(sslc_resnet_run **run, const sslc_resnet *net, int64_t N,
                                   int64_t H, int64_t W)
{
    return run_create(run, net, N, H, W, false);
}

sslc_status sslc_resnet_inference_run_create(sslc_resnet_run **run, const sslc_resnet *net,
                                             int64_t N, int64_t H, int64_t W)
{
    return run_create(run, net, N, H, W, true);
}

void sslc_resnet_run_destroy(sslc_resnet_run *run)
{
    if (!run)
        return;
    for (int i = 0; run->units && i < run->n_units; i++) {
        unit_state *s = &run->units[i];
        sslc_conv2d_plan_destroy(s->plan);
        if (!run->inference) { // otherwise they point into run->shared
            free(s->pre);
            free(s->act);
            free(s->mean);
            free(s->rstd);
        }
    }
    free(run->units);
    if (!run->inference)
        free(run->pooled);
    free(run->argmax);
    free(run->features);
    for (int k = 0; k < 4; k++) {
        free(run->grad[k]);
        free(run->shared[k]);
    }
    free(run->conv_ws);
    free(run->bn_ws);
    free(run->bn_stats);
    free(run);
}

void sslc_resnet_run_set_grads_ready(sslc_resnet_run *run, sslc_grads_ready_fn fn, void *ctx)
{
    run->grads_ready = fn;
    run->grads_ready_ctx = ctx;
}

void sslc_resnet_run_set_bn(sslc_resnet_run *run, sslc_bn_running running,
                            const sslc_bn_sync *sync)
{
    run->bn_running = running;
    run->bn_sync = sync;
}

void sslc_resnet_bn_apply(sslc_resnet_run *run, sslc_resnet *net, int64_t batches,
                          const sslc_bn_sync *across)
{
    assert(!run->inference);
    sslc_params *p = &net->params;
    if (across) {
        across->sum(across->ctx, run->bn_stats, run->bn_stats_n);
        batches *= across->processes;
    }
    for (int i = 0; i < net->n_units; i++) {
        const sslc_conv_bn *u = &net->units[i];
        sslc_batchnorm_update_running(p->buffers + u->mean, p->buffers + u->var,
                                      run->units[i].stats, batches, u->out, BN_MOMENTUM);
        p->buffers[u->batches] += 1.0f;
    }
    memset(run->bn_stats, 0, (size_t)run->bn_stats_n * sizeof(double));
}

void sslc_resnet_prepare(sslc_resnet_run *run, const sslc_resnet *net)
{
    for (int i = 0; i < net->n_units; i++)
        sslc_conv2d_prepare(run->units[i].plan, net->params.values + net->units[i].w,
                            run->conv_ws);
}

// Convolution, then batch norm; with relu the output is ReLU'd, otherwise
// it is the pre-join value the block adds its shortcut to.
static void unit_forward(sslc_resnet_run *run, sslc_resnet *net, int i, const float *x,
                         bool training, bool relu)
{
    const sslc_conv_bn *u = &net->units[i];
    unit_state *s = &run->units[i];
    sslc_params *p = &net->params;
    int64_t rows = run->N * s->P * s->Q;
    sslc_conv2d_forward(s->plan, s->pre, x, run->conv_ws);
    unsigned flags = relu ? SSLC_BN_FUSE_RELU : 0;
    if (training) {
        bool update = run->bn_running == SSLC_BN_RUNNING_UPDATE;
        sslc_batchnorm_forward_train(
            s->act, s->mean, s->rstd, update ? p->buffers + u->mean : NULL,
            update ? p->buffers + u->var : NULL,
            run->bn_running == SSLC_BN_RUNNING_ACCUMULATE ? s->stats : NULL, s->pre,
            p->values + u->gamma, p->values + u->beta, rows, u->out, BN_MOMENTUM, BN_EPS, flags,
            run->bn_sync, run->bn_ws);
        if (update)
            p->buffers[u->batches] += 1.0f;
    } else {
        sslc_batchnorm_forward_eval(s->act, s->pre, p->values + u->gamma, p->values + u->beta,
                                    p->buffers + u->mean, p->buffers + u->var, rows, u->out,
                                    BN_EPS, flags, run->bn_ws);
    }
}

const float *sslc_resnet_forward(sslc_resnet_run *run, sslc_resnet *net, const float *x,
                                 bool training)
{
    assert(!(training && run->inference)); // an inference run keeps nothing to learn from
    run->input = x;
    unit_forward(run, net, 0, x, training, true);
    const float *cur = run->units[0].act;
    if (!net->config.cifar_stem) {
        const unit_state *s = &run->units[0];
        sslc_maxpool_forward(run->pooled, run->argmax, cur, run->N, s->P, s->Q, net->units[0].out,
                             3, 2, 1, run->pool_H, run->pool_W);
        cur = run->pooled;
    }
    for (int b = 0; b < net->n_blocks; b++) {
        const sslc_resnet_block *blk = &net->blocks[b];
        const float *in = cur;
        for (int k = 0; k < blk->count; k++) {
            bool last = k == blk->count - 1;
            unit_forward(run, net, blk->first + k, cur, training, !last);
            cur = run->units[blk->first + k].act;
        }
        const float *shortcut = in;
        if (blk->down >= 0) {
            unit_forward(run, net, blk->down, in, training, false);
            shortcut = run->units[blk->down].act;
        }
        unit_state *last = &run->units[blk->first + blk->count - 1];
        int64_t n = run->N * last->P * last->Q * net->units[blk->first + blk->count - 1].out;
        sslc_add_relu_forward(last->act, last->act, shortcut, n);
        cur = last->act;
    }
    const sslc_resnet_block *top = &net->blocks[net->n_blocks - 1];
    const unit_state *last = &run->units[top->first + top->count - 1];
    sslc_avgpool_forward(run->features, cur, run->N, last->P * last->Q, net->feature_dim);
    return run->features;
}

// Batch-norm then convolution backward for unit i. dy: gradient of the unit's
// output (masked by the ReLU when relu). Writes the unit's input gradient to
// dx (when dx is not NULL) and uses tmp as scratch for the BN input gradient.
static void unit_backward(sslc_resnet_run *run, sslc_resnet *net, int i, float *dx, float *tmp,
                          const float *dy, const float *x, bool relu)
{
    const sslc_conv_bn *u = &net->units[i];
    unit_state *s = &run->units[i];
    sslc_params *p = &net->params;
    int64_t rows = run->N * s->P * s->Q;
    sslc_batchnorm_backward(tmp, p->grads + u->gamma, p->grads + u->beta, dy, s->act, s->pre,
                            s->mean, s->rstd, p->values + u->gamma, rows, u->out,
                            relu ? SSLC_BN_FUSE_RELU : 0, run->bn_sync, run->bn_ws);
    sslc_conv2d_backward(s->plan, dx, p->grads + u->w, tmp, x, run->conv_ws);
}

void sslc_resnet_backward(sslc_resnet_run *run, sslc_resnet *net, const float *dfeatures)
{
    assert(!run->inference);
    float **g = run->grad; // g[0]: gradient of the current block's output
    int b = net->n_blocks - 1;
    const unit_state *top = &run->units[net->blocks[b].first + net->blocks[b].count - 1];
    sslc_avgpool_backward(g[0], dfeatures, run->N, top->P * top->Q, net->feature_dim);
    for (; b >= 0; b--) {
        const sslc_resnet_block *blk = &net->blocks[b];
        int last = blk->first + blk->count - 1;
        unit_state *ls = &run->units[last];
        const float *in = b > 0 ? run->units[net->blocks[b - 1].first + net->blocks[b - 1].count - 1].act
                          : (net->config.cifar_stem ? run->units[0].act : run->pooled);
        int64_t n_out = run->N * ls->P * ls->Q * net->units[last].out;
        // Through the join's ReLU, in place: both branches get this gradient.
        sslc_relu_backward(g[0], g[0], ls->act, n_out);
        float *t1 = g[1], *t2 = g[2], *sc = g[3];
        const float *shortcut_grad = g[0];
        if (blk->down >= 0) {
            unit_backward(run, net, blk->down, sc, t1, g[0], in, false);
            shortcut_grad = sc;
        }
        // Main branch, last unit to first, ping-ponging between t1 and t2.
        const float *dy = g[0];
        float *out = t2;
        for (int k = blk->count - 1; k >= 0; k--) {
            int i = blk->first + k;
            const float *x = k == 0 ? in : run->units[i - 1].act;
            out = dy == t2 ? t1 : t2;
            float *tmp = out == t1 ? t2 : t1;
            if (dy == tmp) // BN backward may run in place on its own input gradient
                tmp = (float *)dy;
            unit_backward(run, net, i, out, tmp, dy, x, k != blk->count - 1);
            dy = out;
        }
        int64_t n_in = run->N * run->units[blk->first].H * run->units[blk->first].W *
                       net->units[blk->first].in;
        sslc_add_inplace(out, shortcut_grad, n_in);
        // out becomes the next block's output gradient.
        float *old = g[0];
        for (int k = 1; k < 4; k++)
            if (g[k] == out) {
                g[k] = old;
                break;
            }
        g[0] = out;
        if (run->grads_ready) // the block's parameters come after all earlier ones
            run->grads_ready(run->grads_ready_ctx, net->units[blk->first].w);
    }
    // The stem: through the max pool (ImageNet stem), then BN + ReLU and conv1.
    float *dy = g[0];
    if (!net->config.cifar_stem) {
        const unit_state *s = &run->units[0];
        sslc_maxpool_backward(g[1], g[0], run->argmax, run->N, s->P, s->Q, net->units[0].out,
                              run->pool_H, run->pool_W);
        dy = g[1];
    }
    unit_backward(run, net, 0, NULL, dy, dy, run->input, true);
    if (run->grads_ready)
        run->grads_ready(run->grads_ready_ctx, 0);
}
