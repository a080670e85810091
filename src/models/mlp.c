#include "src/models/mlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"
#include "src/nn/layers.h"

static const float BN_MOMENTUM = 0.1f;
static const float BN_EPS = 1e-5f;

// bias: a Linear's bias, or a BN's affine gamma and beta.
static sslc_status add_layer(sslc_mlp *m, sslc_mlp_kind kind, int64_t out, bool bias)
{
    if (m->n_layers == SSLC_MLP_MAX_LAYERS)
        return sslc_error(SSLC_ERR_INVALID, "mlp: more than %d layers", SSLC_MLP_MAX_LAYERS);
    int idx = m->n_layers++;
    sslc_mlp_layer *l = &m->layers[idx];
    l->kind = kind;
    l->in = m->out_dim;
    l->out = kind == SSLC_MLP_LINEAR ? out : l->in;
    l->bias = kind == SSLC_MLP_LINEAR && bias;
    l->affine = kind == SSLC_MLP_BN && bias;
    char name[SSLC_TENSOR_NAME_CAP];
    sslc_params *p = &m->params;
    sslc_status st = SSLC_OK;
    if (kind == SSLC_MLP_LINEAR) {
        const int64_t wshape[2] = {l->out, l->in}, bshape[1] = {l->out};
        snprintf(name, sizeof name, "%d.weight", idx);
        st = sslc_params_add(p, name, SSLC_TENSOR_PARAM, 0, 2, wshape, &l->w);
        if (!st && bias) {
            snprintf(name, sizeof name, "%d.bias", idx);
            st = sslc_params_add(p, name, SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, bshape,
                                 &l->b);
        }
    } else if (kind == SSLC_MLP_BN) {
        const int64_t c[1] = {l->in}, one[1] = {1};
        static const char *names[] = {"weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked"};
        int64_t *offs[] = {&l->w, &l->b, &l->mean, &l->var, &l->batches};
        for (int i = l->affine ? 0 : 2; i < 5 && !st; i++) {
            snprintf(name, sizeof name, "%d.%s", idx, names[i]);
            st = sslc_params_add(p, name, i < 2 ? SSLC_TENSOR_PARAM : SSLC_TENSOR_BUFFER,
                                 i < 2 ? SSLC_TENSOR_NO_DECAY : (i == 4 ? SSLC_TENSOR_INT64 : 0),
                                 1, i == 4 ? one : c, offs[i]);
        }
    }
    m->out_dim = l->out;
    return st;
}

sslc_status sslc_mlp_create(sslc_mlp *m, int64_t in_dim, const char *spec)
{
    memset(m, 0, sizeof *m);
    sslc_params_init(&m->params);
    m->in_dim = m->out_dim = in_dim;
    sslc_status st = SSLC_OK;
    const char *s = spec;
    while (*s && !st) {
        size_t len = strcspn(s, ",");
        char item[64];
        if (len >= sizeof item) {
            st = sslc_error(SSLC_ERR_INVALID, "mlp: bad layer in '%s'", spec);
            break;
        }
        memcpy(item, s, len);
        item[len] = '\0';
        long long width = 0;
        if (strcmp(item, "bn") == 0)
            st = add_layer(m, SSLC_MLP_BN, 0, true);
        else if (strcmp(item, "bn-noaffine") == 0)
            st = add_layer(m, SSLC_MLP_BN, 0, false);
        else if (strcmp(item, "relu") == 0)
            st = add_layer(m, SSLC_MLP_RELU, 0, false);
        else if (sscanf(item, "linear:%lld", &width) == 1 && width > 0)
            st = add_layer(m, SSLC_MLP_LINEAR, width, true);
        else if (sscanf(item, "linear-nobias:%lld", &width) == 1 && width > 0)
            st = add_layer(m, SSLC_MLP_LINEAR, width, false);
        else
            st = sslc_error(SSLC_ERR_INVALID,
                            "mlp: unknown layer '%s' (linear:N, linear-nobias:N, bn, bn-noaffine, "
                            "relu)",
                            item);
        s += len + (s[len] == ',');
    }
    if (!st && m->n_layers == 0)
        st = sslc_error(SSLC_ERR_INVALID, "mlp: empty layer list");
    if (!st)
        st = sslc_params_alloc(&m->params);
    if (st)
        sslc_mlp_destroy(m);
    return st;
}

void sslc_mlp_destroy(sslc_mlp *m)
{
    if (!m)
        return;
    sslc_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

void sslc_mlp_init(sslc_mlp *m, uint64_t seed)
{
    sslc_params *p = &m->params;
    for (int i = 0; i < m->n_layers; i++) {
        const sslc_mlp_layer *l = &m->layers[i];
        sslc_rng rng = sslc_rng_make(seed, 0x3a1b, (uint64_t)i, 0, 0);
        if (l->kind == SSLC_MLP_LINEAR) {
            double bound = 1.0 / sqrt((double)l->in);
            for (int64_t k = 0; k < l->out * l->in; k++)
                p->values[l->w + k] = (float)sslc_rng_range(&rng, -bound, bound);
            if (l->bias)
                for (int64_t k = 0; k < l->out; k++)
                    p->values[l->b + k] = (float)sslc_rng_range(&rng, -bound, bound);
        } else if (l->kind == SSLC_MLP_BN) {
            for (int64_t c = 0; c < l->in; c++) {
                if (l->affine) {
                    p->values[l->w + c] = 1.0f;
                    p->values[l->b + c] = 0.0f;
                }
                p->buffers[l->mean + c] = 0.0f;
                p->buffers[l->var + c] = 1.0f;
            }
            p->buffers[l->batches] = 0.0f;
        }
    }
}

sslc_status sslc_mlp_head_spec(char *buf, size_t cap, const char *kind, int64_t hidden,
                               int64_t out, bool out_bn, int layers)
{
    const bool simclr = !strcmp(kind, "simclr"), v2 = !strcmp(kind, "moco-v2");
    const bool v3 = !strcmp(kind, "moco-v3");
    if (!simclr && !v2 && !v3 && strcmp(kind, "moco-v1") != 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "unknown head '%s' (simclr, moco-v2, moco-v3, moco-v1)", kind);
    if (!simclr && !v2 && !v3) // MoCo v1's fc, whatever layers says
        layers = 1;
    else if (layers != 2 && layers != 3)
        return sslc_error(SSLC_ERR_INVALID, "a %s head of %d layers: use 2, or 3 as SimCLRv2",
                          kind, layers);
    // (layers - 1) hidden blocks, then the output layer.
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < layers - 1 && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, simclr || v3 ? "linear-nobias:%lld,bn,relu," :
                                                               "linear:%lld,relu,", (long long)hidden);
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, v3 ? "linear-nobias:%lld,bn-noaffine" : "linear:%lld%s",
                              (long long)out, simclr && out_bn ? ",bn" : "");
    if (n >= cap)
        return sslc_error(SSLC_ERR_INVALID, "head spec too long");
    return SSLC_OK;
}

int sslc_mlp_block_end(const sslc_mlp *m, int k)
{
    int linears = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SSLC_MLP_LINEAR && linears++ == k)
            return i;
    return k == linears ? m->n_layers : -1;
}

sslc_status sslc_mlp_spec(char *buf, size_t cap, const sslc_mlp *m, int n_layers)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_layers && n < cap; i++) {
        const sslc_mlp_layer *l = &m->layers[i];
        const char *sep = i ? "," : "";
        if (l->kind == SSLC_MLP_LINEAR)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s:%lld", sep,
                                  l->bias ? "linear" : "linear-nobias", (long long)l->out);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep,
                                  l->kind == SSLC_MLP_RELU ? "relu"
                                  : l->affine              ? "bn"
                                                           : "bn-noaffine");
    }
    if (n >= cap)
        return sslc_error(SSLC_ERR_INVALID, "mlp: spec longer than %zu bytes", cap);
    return SSLC_OK;
}

sslc_status sslc_mlp_copy_layers(sslc_mlp *dst, const sslc_mlp *src, int n_layers)
{
    for (int64_t t = 0; t < src->params.count; t++) {
        const sslc_tensor *from = &src->params.tensors[t];
        if (atoi(from->name) >= n_layers)
            continue;
        const sslc_tensor *to = sslc_params_find(&dst->params, from->name);
        if (!to || to->numel != from->numel || to->kind != from->kind)
            return sslc_error(SSLC_ERR_INVALID, "mlp: layer tensor '%s' has no twin to copy to",
                              from->name);
        memcpy(sslc_params_data(&dst->params, to), sslc_params_data(&src->params, from),
               (size_t)from->numel * sizeof(float));
    }
    return SSLC_OK;
}

struct sslc_mlp_run {
    int64_t N;
    const float *input;
    float *out[SSLC_MLP_MAX_LAYERS];  // (N, layer out)
    float *mean[SSLC_MLP_MAX_LAYERS]; // BN only
    float *rstd[SSLC_MLP_MAX_LAYERS];
    float *grad[2]; // (N, widest) ping-pong
    // BN without affine (bn-noaffine): the batch-norm kernels take a gamma
    // and beta, so it runs as scale 1, shift 0, their gradients discarded.
    float *ones, *zeros, *dscratch; // (widest,), (widest,), (2 widest,)
    double *bn_ws;
    sslc_bn_running bn_running;
    const sslc_bn_sync *bn_sync;
    double *bn_stats; // (bn_stats_n,) every BN layer's summed batch statistics, one block
    int64_t bn_stats_n;
    int64_t stats_at[SSLC_MLP_MAX_LAYERS]; // a BN layer's offset in bn_stats
};

sslc_status sslc_mlp_run_create(sslc_mlp_run **out, const sslc_mlp *m, int64_t N)
{
    sslc_mlp_run *run = sslc_calloc(1, sizeof *run);
    if (!run)
        return SSLC_ERR_NOMEM;
    run->N = N;
    int64_t widest = m->in_dim;
    bool ok = true;
    for (int i = 0; i < m->n_layers; i++) {
        const sslc_mlp_layer *l = &m->layers[i];
        widest = l->out > widest ? l->out : widest;
        run->out[i] = sslc_aligned_alloc((size_t)(N * l->out) * sizeof(float));
        ok = ok && run->out[i];
        if (l->kind == SSLC_MLP_BN) {
            run->mean[i] = sslc_aligned_alloc((size_t)l->in * sizeof(float));
            run->rstd[i] = sslc_aligned_alloc((size_t)l->in * sizeof(float));
            ok = ok && run->mean[i] && run->rstd[i];
            run->stats_at[i] = run->bn_stats_n;
            run->bn_stats_n += 2 * l->in;
        }
    }
    for (int k = 0; k < 2; k++) {
        run->grad[k] = sslc_aligned_alloc((size_t)(N * widest) * sizeof(float));
        ok = ok && run->grad[k];
    }
    run->ones = sslc_aligned_alloc((size_t)widest * sizeof(float));
    run->zeros = sslc_calloc((size_t)widest, sizeof(float));
    run->dscratch = sslc_aligned_alloc((size_t)(2 * widest) * sizeof(float));
    ok = ok && run->ones && run->zeros && run->dscratch;
    for (int64_t c = 0; ok && c < widest; c++)
        run->ones[c] = 1.0f;
    run->bn_ws = sslc_aligned_alloc(sslc_batchnorm_workspace_size(widest) * sizeof(double));
    run->bn_stats = sslc_calloc((size_t)run->bn_stats_n + 1, sizeof(double));
    if (!ok || !run->bn_ws || !run->bn_stats) {
        sslc_mlp_run_destroy(run);
        return SSLC_ERR_NOMEM;
    }
    *out = run;
    return SSLC_OK;
}

void sslc_mlp_run_destroy(sslc_mlp_run *run)
{
    if (!run)
        return;
    for (int i = 0; i < SSLC_MLP_MAX_LAYERS; i++) {
        free(run->out[i]);
        free(run->mean[i]);
        free(run->rstd[i]);
    }
    free(run->grad[0]);
    free(run->grad[1]);
    free(run->ones);
    free(run->zeros);
    free(run->dscratch);
    free(run->bn_ws);
    free(run->bn_stats);
    free(run);
}

void sslc_mlp_run_set_bn(sslc_mlp_run *run, sslc_bn_running running, const sslc_bn_sync *sync)
{
    run->bn_running = running;
    run->bn_sync = sync;
}

void sslc_mlp_bn_apply(sslc_mlp_run *run, sslc_mlp *m, int64_t batches, const sslc_bn_sync *across)
{
    if (run->bn_stats_n == 0)
        return;
    if (across) {
        across->sum(across->ctx, run->bn_stats, run->bn_stats_n);
        batches *= across->processes;
    }
    sslc_params *p = &m->params;
    for (int i = 0; i < m->n_layers; i++) {
        const sslc_mlp_layer *l = &m->layers[i];
        if (l->kind != SSLC_MLP_BN)
            continue;
        sslc_batchnorm_update_running(p->buffers + l->mean, p->buffers + l->var,
                                      run->bn_stats + run->stats_at[i], batches, l->in,
                                      BN_MOMENTUM);
        p->buffers[l->batches] += 1.0f;
    }
    memset(run->bn_stats, 0, (size_t)run->bn_stats_n * sizeof(double));
}

const float *sslc_mlp_forward(sslc_mlp_run *run, sslc_mlp *m, const float *x, bool training)
{
    sslc_params *p = &m->params;
    run->input = x;
    const float *cur = x;
    for (int i = 0; i < m->n_layers; i++) {
        const sslc_mlp_layer *l = &m->layers[i];
        float *y = run->out[i];
        const float *gamma = l->affine ? p->values + l->w : run->ones;
        const float *beta = l->affine ? p->values + l->b : run->zeros;
        switch (l->kind) {
        case SSLC_MLP_LINEAR:
            sslc_linear_forward(y, cur, p->values + l->w, l->bias ? p->values + l->b : NULL,
                                run->N, l->in, l->out);
            break;
        case SSLC_MLP_BN:
            if (training) {
                bool update = run->bn_running == SSLC_BN_RUNNING_UPDATE;
                sslc_batchnorm_forward_train(
                    y, run->mean[i], run->rstd[i], update ? p->buffers + l->mean : NULL,
                    update ? p->buffers + l->var : NULL,
                    run->bn_running == SSLC_BN_RUNNING_ACCUMULATE ? run->bn_stats + run->stats_at[i]
                                                                  : NULL,
                    cur, gamma, beta, run->N, l->in, BN_MOMENTUM, BN_EPS,
                    0, run->bn_sync, run->bn_ws);
                if (update)
                    p->buffers[l->batches] += 1.0f;
            } else {
                sslc_batchnorm_forward_eval(y, cur, gamma, beta,
                                            p->buffers + l->mean, p->buffers + l->var, run->N,
                                            l->in, BN_EPS, 0, run->bn_ws);
            }
            break;
        case SSLC_MLP_RELU: sslc_relu_forward(y, cur, run->N * l->in); break;
        }
        cur = y;
    }
    return cur;
}

void sslc_mlp_backward(sslc_mlp_run *run, sslc_mlp *m, float *dx, const float *dy)
{
    sslc_params *p = &m->params;
    const float *g = dy;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const sslc_mlp_layer *l = &m->layers[i];
        const float *x = i > 0 ? run->out[i - 1] : run->input;
        float *d = i > 0 ? (g == run->grad[0] ? run->grad[1] : run->grad[0]) : dx;
        if (!d && l->kind != SSLC_MLP_LINEAR)
            d = g == run->grad[0] ? run->grad[1] : run->grad[0];
        switch (l->kind) {
        case SSLC_MLP_LINEAR:
            sslc_linear_backward(d, p->grads + l->w, l->bias ? p->grads + l->b : NULL, g, x,
                                 p->values + l->w, run->N, l->in, l->out);
            break;
        case SSLC_MLP_BN:
            sslc_batchnorm_backward(d, l->affine ? p->grads + l->w : run->dscratch,
                                    l->affine ? p->grads + l->b : run->dscratch + l->in, g, NULL,
                                    x, run->mean[i], run->rstd[i],
                                    l->affine ? p->values + l->w : run->ones, run->N, l->in, 0,
                                    run->bn_sync, run->bn_ws);
            break;
        case SSLC_MLP_RELU: sslc_relu_backward(d, g, run->out[i], run->N * l->in); break;
        }
        g = d;
    }
}
