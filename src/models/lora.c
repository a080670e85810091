#include "src/models/lora.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/gemm.h"
#include "src/core/rng.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// A weight LoRA can adapt: a convolution (K, C, R, S) or a linear (K, D)
// weight, named "<layer>.weight", or the ViT attention's packed (3D, D)
// "<attention>.in_proj_weight" (torchvision's name; its layer is
// "<attention>.in_proj"). Both suffixes are 7 characters long.
static bool adaptable(const sslc_tensor *t)
{
    return t->kind == SSLC_TENSOR_PARAM && (t->ndim == 4 || t->ndim == 2) &&
           strlen(t->name) > 7 && (ends_with(t->name, ".weight") ||
                                   (t->ndim == 2 && ends_with(t->name, ".in_proj_weight")));
}

// Whether name has ".part." inside it ("encoder.layers.encoder_layer_0.mlp.0.weight").
static bool has_part(const char *name, const char *part)
{
    char dotted[32];
    snprintf(dotted, sizeof dotted, ".%s.", part);
    return strstr(name, dotted) != NULL;
}

// Whether one target token (len bytes of tok) selects weight t.
static bool token_matches(const char *tok, size_t len, const sslc_tensor *t)
{
    // The ViT's patch projection is its stem, not a block: "all" means the
    // blocks' layers, as LoRA on ViTs adapts the Transformer (name conv_proj
    // to adapt it too). A ResNet has no conv_proj: all is every convolution.
    if (len == 3 && !strncmp(tok, "all", 3))
        return strcmp(t->name, "conv_proj.weight") != 0;
    // The ViT blocks' attention projections (in_proj, out_proj) and MLP.
    if (len == 4 && !strncmp(tok, "attn", 4))
        return has_part(t->name, "self_attention");
    if (len == 3 && !strncmp(tok, "mlp", 3))
        return has_part(t->name, "mlp");
    int k1, k2, used = 0;
    char spec[32];
    if (len < sizeof spec) {
        memcpy(spec, tok, len);
        spec[len] = '\0';
        if (sscanf(spec, "%dx%d%n", &k1, &k2, &used) == 2 && (size_t)used == len)
            return t->ndim == 4 && t->shape[2] == k1 && t->shape[3] == k2;
    }
    // A layer-name prefix, ending at a '.' of the name (layer1 is not layer10).
    return !strncmp(t->name, tok, len) && (t->name[len] == '.' || t->name[len] == '\0');
}

// Marks in selected (count,) the weights that targets chooses; refuses a
// token that matches none.
static sslc_status select_sites(bool *selected, const sslc_params *enc, const char *targets)
{
    const char *tok = targets;
    while (true) {
        size_t len = strcspn(tok, ",");
        if (!len)
            return sslc_error(SSLC_ERR_INVALID, "lora: empty entry in the targets '%s'", targets);
        int64_t hits = 0;
        for (int64_t i = 0; i < enc->count; i++)
            if (adaptable(&enc->tensors[i]) && token_matches(tok, len, &enc->tensors[i])) {
                selected[i] = true;
                hits++;
            }
        if (!hits)
            return sslc_error(SSLC_ERR_INVALID,
                              "lora: target '%.*s' matches no convolution or linear weight "
                              "(give all, 3x3, 1x1, attn, mlp, or layer-name prefixes such as "
                              "layer4 or encoder.layers.encoder_layer_11)",
                              (int)len, tok);
        if (!tok[len])
            return SSLC_OK;
        tok += len + 1;
    }
}

sslc_status sslc_lora_create(sslc_lora *l, const sslc_params *enc, int64_t rank, double alpha,
                             const char *targets)
{
    memset(l, 0, sizeof *l);
    sslc_params_init(&l->params);
    if (rank < 1 || !(alpha > 0))
        return sslc_error(SSLC_ERR_INVALID, "lora: rank %lld must be >= 1 and alpha %g > 0",
                          (long long)rank, alpha);
    if (strlen(targets) >= sizeof l->targets)
        return sslc_error(SSLC_ERR_INVALID, "lora: the targets '%s' are too long", targets);
    l->rank = rank;
    l->alpha = alpha;
    snprintf(l->targets, sizeof l->targets, "%s", targets);
    bool *selected = calloc((size_t)enc->count + 1, sizeof *selected);
    sslc_status st = SSLC_ERR_NOMEM;
    if (!selected)
        goto fail;
    if ((st = select_sites(selected, enc, targets)))
        goto fail;
    int n = 0;
    for (int64_t i = 0; i < enc->count; i++)
        n += selected[i];
    l->sites = calloc((size_t)n, sizeof *l->sites);
    if (!l->sites) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    int64_t base_n = 0;
    for (int64_t i = 0; i < enc->count; i++) {
        if (!selected[i])
            continue;
        const sslc_tensor *t = &enc->tensors[i];
        sslc_lora_site *s = &l->sites[l->n_sites++];
        s->w = t->offset;
        s->K = t->shape[0];
        s->D = t->numel / t->shape[0];
        s->base = base_n;
        base_n += t->numel;
        char layer[SSLC_TENSOR_NAME_CAP], name[SSLC_TENSOR_NAME_CAP + 8];
        snprintf(layer, sizeof layer, "%.*s", (int)(strlen(t->name) - 7), t->name);
        // A: like the weight with r outputs; B: a 1x1 convolution (linear: (K, r)).
        int64_t ashape[4] = {rank, 0, 0, 0}, bshape[4] = {s->K, rank, 1, 1};
        for (int d = 1; d < t->ndim; d++)
            ashape[d] = t->shape[d];
        snprintf(name, sizeof name, "%s.lora_A", layer);
        if ((st = sslc_params_add(&l->params, name, SSLC_TENSOR_PARAM, 0, t->ndim, ashape, &s->a)))
            goto fail;
        snprintf(name, sizeof name, "%s.lora_B", layer);
        if ((st = sslc_params_add(&l->params, name, SSLC_TENSOR_PARAM, 0, t->ndim, bshape, &s->b)))
            goto fail;
    }
    if ((st = sslc_params_alloc(&l->params)))
        goto fail;
    if (!(l->base = sslc_aligned_alloc((size_t)base_n * sizeof(float)))) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < l->n_sites; i++) {
        const sslc_lora_site *s = &l->sites[i];
        memcpy(l->base + s->base, enc->values + s->w, (size_t)(s->K * s->D) * sizeof(float));
    }
    free(selected);
    return SSLC_OK;
fail:
    free(selected);
    sslc_lora_destroy(l);
    return st;
}

void sslc_lora_destroy(sslc_lora *l)
{
    if (!l)
        return;
    sslc_params_free(&l->params);
    free(l->sites);
    free(l->base);
    memset(l, 0, sizeof *l);
}

void sslc_lora_init(sslc_lora *l, uint64_t seed)
{
    for (int i = 0; i < l->n_sites; i++) {
        const sslc_lora_site *s = &l->sites[i];
        // kaiming_uniform_(a=sqrt(5)) as loralib: gain sqrt(2 / (1 + 5)), bound
        // gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in), fan_in = D.
        double bound = 1.0 / sqrt((double)s->D);
        sslc_rng rng = sslc_rng_make(seed, 0x10a4, (uint64_t)i, 0, 0);
        float *a = l->params.values + s->a;
        for (int64_t k = 0; k < l->rank * s->D; k++)
            a[k] = (float)sslc_rng_range(&rng, -bound, bound);
        memset(l->params.values + s->b, 0, (size_t)(s->K * l->rank) * sizeof(float));
    }
}

float sslc_lora_scale(const sslc_lora *l) { return (float)(l->alpha / (double)l->rank); }

void sslc_lora_merge_weight(float *w, const float *base, const float *a, const float *b,
                            int64_t K, int64_t D, int64_t r, float scale)
{
    if (w != base)
        memcpy(w, base, (size_t)(K * D) * sizeof(float));
    sslc_sgemm(false, false, K, D, r, scale, b, r, a, D, 1.0f, w, D);
}

void sslc_lora_weight_backward(float *da, float *db, const float *dw, const float *a,
                               const float *b, int64_t K, int64_t D, int64_t r, float scale)
{
    sslc_sgemm(true, false, r, D, K, scale, b, r, dw, D, 1.0f, da, D);
    sslc_sgemm(false, true, K, r, D, scale, dw, D, a, D, 1.0f, db, r);
}

void sslc_lora_merge(const sslc_lora *l, sslc_params *enc)
{
    const float scale = sslc_lora_scale(l), *v = l->params.values;
    for (int i = 0; i < l->n_sites; i++) {
        const sslc_lora_site *s = &l->sites[i];
        sslc_lora_merge_weight(enc->values + s->w, l->base + s->base, v + s->a, v + s->b, s->K,
                               s->D, l->rank, scale);
    }
}

void sslc_lora_backward(sslc_lora *l, const sslc_params *enc)
{
    const float scale = sslc_lora_scale(l), *v = l->params.values;
    float *g = l->params.grads;
    for (int i = 0; i < l->n_sites; i++) {
        const sslc_lora_site *s = &l->sites[i];
        sslc_lora_weight_backward(g + s->a, g + s->b, enc->grads + s->w, v + s->a, v + s->b, s->K,
                                  s->D, l->rank, scale);
    }
}

void sslc_lora_restore(const sslc_lora *l, sslc_params *enc)
{
    for (int i = 0; i < l->n_sites; i++) {
        const sslc_lora_site *s = &l->sites[i];
        memcpy(enc->values + s->w, l->base + s->base, (size_t)(s->K * s->D) * sizeof(float));
    }
}
