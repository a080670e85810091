#include "src/models/vit.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"

static const float LN_EPS = 1e-6f; // torchvision's ViT: partial(nn.LayerNorm, eps=1e-6)

typedef struct preset {
    const char *name;
    int64_t hidden, layers, heads;
} preset;

// ViT-Ti/S/B (DeiT, timm; torchvision has B and larger): MLP 4x.
static const preset PRESETS[] = {
    {"vit-tiny", 192, 12, 3}, {"vit-small", 384, 12, 6}, {"vit-base", 768, 12, 12}};
enum { N_PRESETS = sizeof PRESETS / sizeof PRESETS[0] };

sslc_status sslc_vit_parse_arch(sslc_vit_config *config, const char *arch)
{
    for (int i = 0; i < N_PRESETS; i++)
        if (strcmp(arch, PRESETS[i].name) == 0) {
            config->hidden = PRESETS[i].hidden;
            config->layers = PRESETS[i].layers;
            config->heads = PRESETS[i].heads;
            config->mlp_dim = 4 * PRESETS[i].hidden;
            return SSLC_OK;
        }
    return sslc_error(SSLC_ERR_INVALID,
                      "unknown architecture '%s' (vit-tiny, vit-small, vit-base)", arch);
}

const char *sslc_vit_arch(const sslc_vit_config *config)
{
    for (int i = 0; i < N_PRESETS; i++)
        if (config->hidden == PRESETS[i].hidden && config->layers == PRESETS[i].layers &&
            config->heads == PRESETS[i].heads && config->mlp_dim == 4 * PRESETS[i].hidden)
            return PRESETS[i].name;
    return "vit";
}

// ---- building the table ----------------------------------------------------------

static sslc_status add(sslc_vit *net, const char *name, sslc_tensor_kind kind, unsigned flags,
                       int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int64_t *offset)
{
    const int64_t shape[4] = {a, b, c, d};
    return sslc_params_add(&net->params, name, kind, flags, ndim, shape, offset);
}

static sslc_status add_block(sslc_vit *net, int i)
{
    sslc_vit_block *b = &net->blocks[i];
    const int64_t D = net->config.hidden, M = net->config.mlp_dim;
    const unsigned NO_DECAY = SSLC_TENSOR_NO_DECAY;
    const sslc_tensor_kind P = SSLC_TENSOR_PARAM;
    // torchvision's names; biases and layer norms are not decayed.
    const struct {
        const char *suffix;
        unsigned flags;
        int ndim;
        int64_t rows, cols;
        int64_t *offset;
    } t[] = {
        {"ln_1.weight", NO_DECAY, 1, D, 0, &b->ln1_w},
        {"ln_1.bias", NO_DECAY, 1, D, 0, &b->ln1_b},
        {"self_attention.in_proj_weight", 0, 2, 3 * D, D, &b->in_w},
        {"self_attention.in_proj_bias", NO_DECAY, 1, 3 * D, 0, &b->in_b},
        {"self_attention.out_proj.weight", 0, 2, D, D, &b->out_w},
        {"self_attention.out_proj.bias", NO_DECAY, 1, D, 0, &b->out_b},
        {"ln_2.weight", NO_DECAY, 1, D, 0, &b->ln2_w},
        {"ln_2.bias", NO_DECAY, 1, D, 0, &b->ln2_b},
        {"mlp.0.weight", 0, 2, M, D, &b->fc1_w},
        {"mlp.0.bias", NO_DECAY, 1, M, 0, &b->fc1_b},
        {"mlp.3.weight", 0, 2, D, M, &b->fc2_w},
        {"mlp.3.bias", NO_DECAY, 1, D, 0, &b->fc2_b},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char name[SSLC_TENSOR_NAME_CAP];
        snprintf(name, sizeof name, "encoder.layers.encoder_layer_%d.%s", i, t[k].suffix);
        sslc_status st = add(net, name, P, t[k].flags, t[k].ndim, t[k].rows, t[k].cols, 0, 0,
                             t[k].offset);
        if (st)
            return st;
    }
    return SSLC_OK;
}

// MoCo v3's build_2d_sincos_position_embedding (temperature 10000), row 0
// (the class token) zero. Its meshgrid is (w, h) in "ij" order, so token
// m = i h + j takes i for the first half of the channels and j for the
// second: for row-major patches, the row index first. pos: (T, D).
static void fill_sincos(float *pos, int64_t grid, int64_t D)
{
    const int64_t q = D / 4;
    memset(pos, 0, (size_t)D * sizeof(float));
    for (int64_t m = 0; m < grid * grid; m++) {
        float *row = pos + (m + 1) * D;
        const double i = (double)(m / grid), j = (double)(m % grid);
        for (int64_t k = 0; k < q; k++) {
            // torch computes omega in float32: 1 / 10000^(k / q)
            const float omega = 1.0f / powf(10000.0f, (float)k / (float)q);
            const float a = (float)i * omega, b = (float)j * omega;
            row[k] = sinf(a);
            row[q + k] = cosf(a);
            row[2 * q + k] = sinf(b);
            row[3 * q + k] = cosf(b);
        }
    }
}

static sslc_status check_config(const sslc_vit_config *c)
{
    if (c->hidden < 1 || c->layers < 1 || c->heads < 1 || c->mlp_dim < 1 ||
        c->hidden % c->heads)
        return sslc_error(SSLC_ERR_INVALID,
                          "vit: hidden %lld, layers %lld, heads %lld, mlp_dim %lld: all must be "
                          ">= 1 and hidden a multiple of heads",
                          (long long)c->hidden, (long long)c->layers, (long long)c->heads,
                          (long long)c->mlp_dim);
    if (c->in_channels < 1 || c->patch < 1 || c->image_size < c->patch ||
        c->image_size % c->patch)
        return sslc_error(SSLC_ERR_INVALID,
                          "vit: a %lld px image does not split into %lld px patches (or %lld "
                          "input channels): the image size must be a multiple of --patch",
                          (long long)c->image_size, (long long)c->patch,
                          (long long)c->in_channels);
    if (c->pos == SSLC_VIT_POS_SINCOS && c->hidden % 4)
        return sslc_error(SSLC_ERR_INVALID,
                          "vit: sin-cos position embeddings need hidden %lld to be a multiple of 4",
                          (long long)c->hidden);
    return SSLC_OK;
}

sslc_status sslc_vit_create(sslc_vit *net, const sslc_vit_config *config)
{
    memset(net, 0, sizeof *net);
    sslc_status st = check_config(config);
    if (st)
        return st;
    net->config = *config;
    sslc_params_init(&net->params);
    const int64_t D = config->hidden, C = config->in_channels, P = config->patch;
    net->grid = config->image_size / P;
    net->tokens = net->grid * net->grid + 1;
    net->feature_dim = D;
    net->blocks = sslc_calloc((size_t)config->layers, sizeof *net->blocks);
    if (!net->blocks)
        return SSLC_ERR_NOMEM;
    const sslc_tensor_kind PARAM = SSLC_TENSOR_PARAM;
    const bool fixed = config->pos == SSLC_VIT_POS_SINCOS;
    const unsigned frozen = config->frozen_patch ? SSLC_TENSOR_FROZEN : 0;
    // Table order is torchvision's state_dict order: class_token, conv_proj,
    // encoder.pos_embedding, the layers, encoder.ln.
    if ((st = add(net, "class_token", PARAM, SSLC_TENSOR_NO_DECAY, 3, 1, 1, D, 0, &net->cls)) ||
        (st = add(net, "conv_proj.weight", PARAM, frozen, 4, D, C, P, P, &net->conv_w)) ||
        (st = add(net, "conv_proj.bias", PARAM, SSLC_TENSOR_NO_DECAY | frozen, 1, D, 0, 0, 0,
                  &net->conv_b)) ||
        (st = add(net, "encoder.pos_embedding", fixed ? SSLC_TENSOR_BUFFER : PARAM,
                  SSLC_TENSOR_NO_DECAY, 3, 1, net->tokens, D, 0, &net->pos)))
        goto fail;
    for (int i = 0; i < config->layers; i++)
        if ((st = add_block(net, i)))
            goto fail;
    if ((st = add(net, "encoder.ln.weight", PARAM, SSLC_TENSOR_NO_DECAY, 1, D, 0, 0, 0,
                  &net->ln_w)) ||
        (st = add(net, "encoder.ln.bias", PARAM, SSLC_TENSOR_NO_DECAY, 1, D, 0, 0, 0,
                  &net->ln_b)) ||
        (st = sslc_params_alloc(&net->params)))
        goto fail;
    if (fixed)
        fill_sincos(net->params.buffers + net->pos, net->grid, D);
    return SSLC_OK;
fail:
    sslc_vit_destroy(net);
    return st;
}

void sslc_vit_destroy(sslc_vit *net)
{
    if (!net)
        return;
    sslc_params_free(&net->params);
    sslc_params_free(&net->prompt);
    free(net->blocks);
    memset(net, 0, sizeof *net);
}

sslc_status sslc_vit_add_prompts(sslc_vit *net, int64_t prompts, bool deep)
{
    if (prompts < 1 || prompts > 4096 || net->prompts)
        return sslc_error(SSLC_ERR_INVALID, "vit: %lld prompts (1 to 4096, added once)",
                          (long long)prompts);
    const int64_t shape[3] = {deep ? net->config.layers : 1, prompts, net->config.hidden};
    sslc_params_init(&net->prompt);
    sslc_status st = sslc_params_add(&net->prompt, "prompt_embeddings", SSLC_TENSOR_PARAM, 0, 3,
                                     shape, NULL);
    if (!st)
        st = sslc_params_alloc(&net->prompt);
    if (st) {
        sslc_params_free(&net->prompt);
        return st;
    }
    net->prompts = prompts;
    net->deep_prompts = deep;
    return SSLC_OK;
}

void sslc_vit_drop_prompts(sslc_vit *net)
{
    sslc_params_free(&net->prompt);
    net->prompts = 0;
    net->deep_prompts = false;
}

// ---- initialisation --------------------------------------------------------------

static void fill_uniform(float *w, int64_t n, double bound, sslc_rng *rng)
{
    for (int64_t k = 0; k < n; k++)
        w[k] = (float)sslc_rng_range(rng, -bound, bound);
}

static void fill_normal(float *w, int64_t n, double std, sslc_rng *rng)
{
    for (int64_t k = 0; k < n; k++)
        w[k] = (float)(std * sslc_rng_normal(rng));
}

static void fill_const(float *w, int64_t n, float v)
{
    for (int64_t k = 0; k < n; k++)
        w[k] = v;
}

void sslc_vit_init(sslc_vit *net, uint64_t seed)
{
    float *v = net->params.values;
    const sslc_vit_config *c = &net->config;
    const int64_t D = c->hidden, M = c->mlp_dim, fan_in = c->in_channels * c->patch * c->patch;
    sslc_rng rng = sslc_rng_make(seed, 0x717, 0, 0, 0);
    // nn.init.trunc_normal_(std=sqrt(1/fan_in)) cuts at +-2 (absolute, not
    // in standard deviations): redraw outside.
    const double std = sqrt(1.0 / (double)fan_in);
    for (int64_t k = 0; k < D * fan_in; k++) {
        double w;
        do
            w = std * sslc_rng_normal(&rng);
        while (w < -2.0 || w > 2.0);
        v[net->conv_w + k] = (float)w;
    }
    fill_const(v + net->conv_b, D, 0.0f);
    fill_const(v + net->cls, D, 0.0f);
    if (c->pos == SSLC_VIT_POS_LEARNED) {
        rng = sslc_rng_make(seed, 0x717, 1, 0, 0);
        fill_normal(v + net->pos, net->tokens * D, 0.02, &rng); // Encoder: normal_(std=0.02)
    }
    for (int64_t i = 0; i < c->layers; i++) {
        const sslc_vit_block *b = &net->blocks[i];
        rng = sslc_rng_make(seed, 0x717, 2, (uint64_t)i, 0);
        fill_const(v + b->ln1_w, D, 1.0f);
        fill_const(v + b->ln1_b, D, 0.0f);
        fill_const(v + b->ln2_w, D, 1.0f);
        fill_const(v + b->ln2_b, D, 0.0f);
        // MultiheadAttention._reset_parameters: xavier_uniform_ over the packed
        // (3D, D) in_proj_weight, zero biases; out_proj keeps nn.Linear's
        // kaiming_uniform_(a=sqrt 5) weight, U(+-1/sqrt(D)).
        fill_uniform(v + b->in_w, 3 * D * D, sqrt(6.0 / (double)(D + 3 * D)), &rng);
        fill_const(v + b->in_b, 3 * D, 0.0f);
        fill_uniform(v + b->out_w, D * D, 1.0 / sqrt((double)D), &rng);
        fill_const(v + b->out_b, D, 0.0f);
        // MLPBlock: xavier_uniform_ weights, normal_(std=1e-6) biases.
        const double bound = sqrt(6.0 / (double)(D + M));
        fill_uniform(v + b->fc1_w, M * D, bound, &rng);
        fill_normal(v + b->fc1_b, M, 1e-6, &rng);
        fill_uniform(v + b->fc2_w, D * M, bound, &rng);
        fill_normal(v + b->fc2_b, D, 1e-6, &rng);
    }
    fill_const(v + net->ln_w, D, 1.0f);
    fill_const(v + net->ln_b, D, 0.0f);
}

void sslc_vit_init_prompts(sslc_vit *net, uint64_t seed)
{
    const sslc_vit_config *c = &net->config;
    // VPT's code: val = sqrt(6 / (3 * patch^2 + D)), 3 its input channels.
    const double bound = sqrt(6.0 / (double)(c->in_channels * c->patch * c->patch + c->hidden));
    sslc_rng rng = sslc_rng_make(seed, 0x7e7, 0, 0, 0);
    fill_uniform(net->prompt.values, net->prompt.n_values, bound, &rng);
}

// ---- running it ------------------------------------------------------------------

typedef struct block_state {
    float *ln1_mean, *ln1_rstd; // (N T,)
    float *h1;                  // (N, T, D): ln_1 output, attention input
    float *qkv;                 // (N, T, 3D)
    float *probs;               // (N, heads, T, T)
    float *ctx;                 // (N, T, D)
    float *mid;                 // (N, T, D): after the attention residual
    float *ln2_mean, *ln2_rstd; // (N T,)
    float *h2;                  // (N, T, D): ln_2 output, MLP input
    float *pre;                 // (N, T, M): mlp.0 output, GELU input
    float *act;                 // (N, T, M): GELU output
    float *out;                 // (N, T, D): the block's output
} block_state;

struct sslc_vit_run {
    int64_t N, T, D, M;
    int64_t P;         // prompt tokens, after the class token (0: none)
    sslc_attention_desc attn;
    sslc_patch_embed embed;
    const float *input;
    float *patches;    // (N, S, D) conv_proj output, with bias
    float *tokens;     // (N, T, D) the first block's input
    block_state *blocks;
    int64_t n_blocks;
    float *cls_in;     // (N, D) the last block's class tokens
    float *ln_mean, *ln_rstd; // (N,)
    float *features;   // (N, D)
    float *grad[3];    // (N, T, D) activation gradients
    float *grad_m;     // (N, T, M)
    float *dcls;       // (N, D)
    float *work;       // attention or convolution scratch
    bool trained;      // the last forward was in training mode
    size_t bytes;
};

static float *run_alloc(sslc_vit_run *run, int64_t floats, bool *ok)
{
    run->bytes += (size_t)floats * sizeof(float);
    float *p = sslc_aligned_alloc((size_t)floats * sizeof(float));
    *ok = *ok && p;
    return p;
}

int64_t sslc_vit_run_batch(const sslc_vit_run *run) { return run->N; }
size_t sslc_vit_run_bytes(const sslc_vit_run *run) { return run->bytes; }

sslc_status sslc_vit_run_create(sslc_vit_run **out, const sslc_vit *net, int64_t N)
{
    *out = NULL;
    const sslc_vit_config *c = &net->config;
    sslc_vit_run *run = sslc_calloc(1, sizeof *run);
    if (!run)
        return SSLC_ERR_NOMEM;
    run->N = N;
    run->P = net->prompts;
    run->T = net->tokens + run->P;
    run->D = c->hidden;
    run->M = c->mlp_dim;
    run->attn = (sslc_attention_desc){.N = N, .S = run->T, .D = run->D, .heads = c->heads};
    sslc_status st = sslc_patch_embed_create(&run->embed, N, c->image_size, c->image_size,
                                             c->in_channels, run->D, c->patch);
    if (st)
        goto fail;
    run->n_blocks = c->layers;
    st = SSLC_ERR_NOMEM;
    if (!(run->blocks = sslc_calloc((size_t)c->layers, sizeof *run->blocks)))
        goto fail;
    const int64_t NT = N * run->T, ND = NT * run->D, NM = NT * run->M;
    bool ok = true;
    run->patches = run_alloc(run, N * (net->tokens - 1) * run->D, &ok);
    run->tokens = run_alloc(run, ND, &ok);
    for (int64_t i = 0; i < c->layers; i++) {
        block_state *b = &run->blocks[i];
        b->ln1_mean = run_alloc(run, NT, &ok);
        b->ln1_rstd = run_alloc(run, NT, &ok);
        b->h1 = run_alloc(run, ND, &ok);
        b->qkv = run_alloc(run, 3 * ND, &ok);
        b->probs = run_alloc(run, N * c->heads * run->T * run->T, &ok);
        b->ctx = run_alloc(run, ND, &ok);
        b->mid = run_alloc(run, ND, &ok);
        b->ln2_mean = run_alloc(run, NT, &ok);
        b->ln2_rstd = run_alloc(run, NT, &ok);
        b->h2 = run_alloc(run, ND, &ok);
        b->pre = run_alloc(run, NM, &ok);
        b->act = run_alloc(run, NM, &ok);
        b->out = run_alloc(run, ND, &ok);
    }
    run->cls_in = run_alloc(run, N * run->D, &ok);
    run->ln_mean = run_alloc(run, N, &ok);
    run->ln_rstd = run_alloc(run, N, &ok);
    run->features = run_alloc(run, N * run->D, &ok);
    for (int k = 0; k < 3; k++)
        run->grad[k] = run_alloc(run, ND, &ok);
    run->grad_m = run_alloc(run, NM, &ok);
    run->dcls = run_alloc(run, N * run->D, &ok);
    size_t ws = sslc_attention_workspace_size(&run->attn);
    size_t cws = sslc_patch_embed_workspace_size(&run->embed);
    run->work = run_alloc(run, (int64_t)(ws > cws ? ws : cws), &ok);
    if (!ok)
        goto fail;
    *out = run;
    return SSLC_OK;
fail:
    sslc_vit_run_destroy(run);
    return st;
}

void sslc_vit_run_destroy(sslc_vit_run *run)
{
    if (!run)
        return;
    sslc_patch_embed_destroy(&run->embed);
    for (int64_t i = 0; run->blocks && i < run->n_blocks; i++) {
        block_state *b = &run->blocks[i];
        float *bufs[] = {b->ln1_mean, b->ln1_rstd, b->h1,       b->qkv,      b->probs,
                         b->ctx,      b->mid,      b->ln2_mean, b->ln2_rstd, b->h2,
                         b->pre,      b->act,      b->out};
        for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
            free(bufs[k]);
    }
    free(run->blocks);
    free(run->patches), free(run->tokens), free(run->cls_in), free(run->ln_mean);
    free(run->ln_rstd), free(run->features), free(run->grad_m), free(run->dcls), free(run->work);
    for (int k = 0; k < 3; k++)
        free(run->grad[k]);
    free(run);
}

void sslc_vit_prepare(sslc_vit_run *run, const sslc_vit *net)
{
    sslc_patch_embed_prepare(&run->embed, net->params.values + net->conv_w, run->work);
}

static const float *pos_table(const sslc_vit *net)
{
    return net->config.pos == SSLC_VIT_POS_SINCOS ? net->params.buffers + net->pos
                                                  : net->params.values + net->pos;
}

const float *sslc_vit_forward(sslc_vit_run *run, const sslc_vit *net, const float *x,
                              bool training)
{
    const float *v = net->params.values, *pos = pos_table(net), *prompt = net->prompt.values;
    const int64_t N = run->N, T = run->T, D = run->D, M = run->M, NT = N * T, P = run->P;
    const int64_t S = net->tokens - 1; // patches
    assert(P == net->prompts);
    run->input = x;
    run->trained = training;
    sslc_patch_embed_forward(&run->embed, run->patches, x, v + net->conv_b, run->work);
    // tokens[n] = [class_token + pos_0; prompt[0]; patches[n] + pos_1..]
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++) {
            float *dst = run->tokens + (n * T + t) * D;
            if (t >= 1 && t <= P) {
                memcpy(dst, prompt + (t - 1) * D, (size_t)D * sizeof(float));
                continue;
            }
            const int64_t p = t ? t - P : 0; // the row of the position table
            const float *src = t ? run->patches + (n * S + p - 1) * D : v + net->cls;
            for (int64_t k = 0; k < D; k++)
                dst[k] = src[k] + pos[p * D + k];
        }
    float *cur = run->tokens;
    for (int64_t i = 0; i < run->n_blocks; i++) {
        const sslc_vit_block *b = &net->blocks[i];
        block_state *s = &run->blocks[i];
        if (P && net->deep_prompts && i) // VPT-deep: this block's own prompts
            for (int64_t n = 0; n < N; n++)
                memcpy(cur + (n * T + 1) * D, prompt + i * P * D, (size_t)(P * D) * sizeof(float));
        sslc_layernorm_forward(s->h1, s->ln1_mean, s->ln1_rstd, cur, v + b->ln1_w, v + b->ln1_b,
                               NT, D, LN_EPS);
        sslc_attention_forward(s->mid, s->qkv, s->probs, s->ctx, s->h1, v + b->in_w, v + b->in_b,
                               v + b->out_w, v + b->out_b, &run->attn);
        sslc_add_inplace(s->mid, cur, NT * D);
        sslc_layernorm_forward(s->h2, s->ln2_mean, s->ln2_rstd, s->mid, v + b->ln2_w,
                               v + b->ln2_b, NT, D, LN_EPS);
        sslc_linear_forward(s->pre, s->h2, v + b->fc1_w, v + b->fc1_b, NT, D, M);
        sslc_gelu_forward(s->act, s->pre, NT * M);
        sslc_linear_forward(s->out, s->act, v + b->fc2_w, v + b->fc2_b, NT, M, D);
        sslc_add_inplace(s->out, s->mid, NT * D);
        cur = s->out;
    }
    // encoder.ln acts on every token, but each row on its own and only the
    // class token is kept: normalising the class tokens alone is the same.
    for (int64_t n = 0; n < N; n++)
        memcpy(run->cls_in + n * D, cur + n * T * D, (size_t)D * sizeof(float));
    sslc_layernorm_forward(run->features, run->ln_mean, run->ln_rstd, run->cls_in, v + net->ln_w,
                           v + net->ln_b, N, D, LN_EPS);
    return run->features;
}

void sslc_vit_backward(sslc_vit_run *run, sslc_vit *net, const float *dfeatures)
{
    assert(run->trained);
    const float *v = net->params.values;
    float *g = net->params.grads;
    const int64_t N = run->N, T = run->T, D = run->D, M = run->M, NT = N * T, P = run->P;
    const int64_t S = net->tokens - 1;
    float *dprompt = net->prompt.grads;
    // a: the gradient of the current block's output; b, c: scratch.
    float *a = run->grad[0], *b = run->grad[1], *c = run->grad[2];
    sslc_layernorm_backward(run->dcls, g + net->ln_w, g + net->ln_b, dfeatures, run->cls_in,
                            run->ln_mean, run->ln_rstd, v + net->ln_w, N, D);
    memset(a, 0, (size_t)(NT * D) * sizeof(float));
    for (int64_t n = 0; n < N; n++)
        memcpy(a + n * T * D, run->dcls + n * D, (size_t)D * sizeof(float));
    for (int64_t i = run->n_blocks - 1; i >= 0; i--) {
        const sslc_vit_block *k = &net->blocks[i];
        block_state *s = &run->blocks[i];
        const float *in = i ? run->blocks[i - 1].out : run->tokens;
        // out = mid + mlp(ln_2(mid))
        sslc_linear_backward(run->grad_m, g + k->fc2_w, g + k->fc2_b, a, s->act, v + k->fc2_w, NT,
                             M, D);
        sslc_gelu_backward(run->grad_m, run->grad_m, s->pre, NT * M);
        sslc_linear_backward(b, g + k->fc1_w, g + k->fc1_b, run->grad_m, s->h2, v + k->fc1_w, NT,
                             D, M);
        sslc_layernorm_backward(c, g + k->ln2_w, g + k->ln2_b, b, s->mid, s->ln2_mean,
                                s->ln2_rstd, v + k->ln2_w, NT, D);
        sslc_add_inplace(c, a, NT * D); // c: the gradient of mid
        // mid = in + self_attention(ln_1(in))
        sslc_attention_backward(b, g + k->in_w, g + k->in_b, g + k->out_w, g + k->out_b, c, s->h1,
                                s->qkv, s->probs, s->ctx, v + k->in_w, v + k->out_w, &run->attn,
                                run->work);
        sslc_layernorm_backward(a, g + k->ln1_w, g + k->ln1_b, b, in, s->ln1_mean, s->ln1_rstd,
                                v + k->ln1_w, NT, D);
        sslc_add_inplace(a, c, NT * D); // a: the gradient of in
        // The prompt rows of the input: this block's prompts (deep; shallow
        // and deep at block 0). Deep: block i - 1's outputs there were
        // replaced, so they get no gradient.
        if (P && (net->deep_prompts || i == 0)) {
            float *dp = dprompt + (net->deep_prompts ? i : 0) * P * D;
            for (int64_t n = 0; n < N; n++) {
                float *an = a + (n * T + 1) * D;
                for (int64_t k = 0; k < P * D; k++)
                    dp[k] += an[k];
                memset(an, 0, (size_t)(P * D) * sizeof(float));
            }
        }
    }
    // tokens = [class_token; prompts; patches] + pos_embedding (not on the prompts)
    float *dpos = net->config.pos == SSLC_VIT_POS_LEARNED ? g + net->pos : NULL;
    for (int64_t n = 0; n < N; n++) {
        const float *an = a + n * T * D, *ap = an + (1 + P) * D; // class token, patches
        for (int64_t k = 0; k < D; k++)
            g[net->cls + k] += an[k];
        if (dpos) {
            for (int64_t k = 0; k < D; k++)
                dpos[k] += an[k];
            for (int64_t k = 0; k < S * D; k++)
                dpos[D + k] += ap[k];
        }
        memcpy(b + n * S * D, ap, (size_t)(S * D) * sizeof(float));
    }
    sslc_patch_embed_backward(&run->embed, NULL, g + net->conv_w, g + net->conv_b, b, run->input,
                              run->work);
}
