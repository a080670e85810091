#include "src/models/encoder.h"

#include <stdlib.h>
#include <string.h>

struct sslc_encoder_run {
    sslc_encoder_kind kind;
    sslc_resnet_run *resnet;
    sslc_vit_run *vit;
};

bool sslc_encoder_arch_is_vit(const char *arch)
{
    return strncmp(arch, "vit", 3) == 0;
}

sslc_status sslc_encoder_parse_arch(sslc_encoder_config *config, const char *arch)
{
    if (sslc_encoder_arch_is_vit(arch)) {
        config->kind = SSLC_ENCODER_VIT;
        return sslc_vit_parse_arch(&config->vit, arch);
    }
    config->kind = SSLC_ENCODER_RESNET;
    sslc_status st = sslc_resnet_parse_arch(&config->resnet, arch);
    if (st)
        return sslc_error(st, "unknown architecture '%s' (resnet18, resnet34, resnet50, "
                              "vit-tiny, vit-small, vit-base)",
                          arch);
    return SSLC_OK;
}

const char *sslc_encoder_config_arch(const sslc_encoder_config *config)
{
    return config->kind == SSLC_ENCODER_VIT ? sslc_vit_arch(&config->vit)
                                            : sslc_resnet_arch(&config->resnet);
}

sslc_status sslc_encoder_create(sslc_encoder *enc, const sslc_encoder_config *config)
{
    memset(enc, 0, sizeof *enc);
    enc->kind = config->kind;
    sslc_status st;
    if (config->kind == SSLC_ENCODER_VIT) {
        if ((st = sslc_vit_create(&enc->net.vit, &config->vit)))
            return st;
        enc->params = &enc->net.vit.params;
        enc->feature_dim = enc->net.vit.feature_dim;
        enc->in_channels = config->vit.in_channels;
    } else {
        if ((st = sslc_resnet_create(&enc->net.resnet, &config->resnet)))
            return st;
        enc->params = &enc->net.resnet.params;
        enc->feature_dim = enc->net.resnet.feature_dim;
        enc->in_channels = config->resnet.in_channels;
    }
    return SSLC_OK;
}

void sslc_encoder_destroy(sslc_encoder *enc)
{
    if (!enc)
        return;
    if (enc->kind == SSLC_ENCODER_VIT)
        sslc_vit_destroy(&enc->net.vit);
    else
        sslc_resnet_destroy(&enc->net.resnet);
    enc->params = NULL;
}

void sslc_encoder_init(sslc_encoder *enc, uint64_t seed)
{
    if (enc->kind == SSLC_ENCODER_VIT)
        sslc_vit_init(&enc->net.vit, seed);
    else
        sslc_resnet_init(&enc->net.resnet, seed);
}

sslc_encoder_config sslc_encoder_config_of(const sslc_encoder *enc)
{
    sslc_encoder_config c = {.kind = enc->kind};
    if (enc->kind == SSLC_ENCODER_VIT)
        c.vit = enc->net.vit.config;
    else
        c.resnet = enc->net.resnet.config;
    return c;
}

const char *sslc_encoder_arch(const sslc_encoder *enc)
{
    sslc_encoder_config c = sslc_encoder_config_of(enc);
    return sslc_encoder_config_arch(&c);
}

static sslc_status run_create(sslc_encoder_run **out, const sslc_encoder *enc, int64_t N,
                              int64_t H, int64_t W, bool inference)
{
    *out = NULL;
    if (enc->kind == SSLC_ENCODER_VIT) {
        const int64_t size = enc->net.vit.config.image_size;
        if (H != size || W != size)
            return sslc_error(SSLC_ERR_INVALID,
                              "a ViT built for %lld x %lld images cannot take %lld x %lld ones "
                              "(its position embedding has one row per patch)",
                              (long long)size, (long long)size, (long long)H, (long long)W);
    }
    sslc_encoder_run *run = calloc(1, sizeof *run);
    if (!run)
        return SSLC_ERR_NOMEM;
    run->kind = enc->kind;
    sslc_status st;
    if (enc->kind == SSLC_ENCODER_VIT)
        st = sslc_vit_run_create(&run->vit, &enc->net.vit, N);
    else if (inference)
        st = sslc_resnet_inference_run_create(&run->resnet, &enc->net.resnet, N, H, W);
    else
        st = sslc_resnet_run_create(&run->resnet, &enc->net.resnet, N, H, W);
    if (st) {
        free(run);
        return st;
    }
    *out = run;
    return SSLC_OK;
}

sslc_status sslc_encoder_add_prompts(sslc_encoder *enc, int64_t prompts, bool deep)
{
    if (enc->kind != SSLC_ENCODER_VIT)
        return sslc_error(SSLC_ERR_INVALID,
                          "visual prompts are tokens of a Transformer's sequence; this encoder "
                          "is a ResNet (%s), which has no tokens: use a ViT (--arch vit-tiny)",
                          sslc_encoder_arch(enc));
    return sslc_vit_add_prompts(&enc->net.vit, prompts, deep);
}

sslc_params *sslc_encoder_prompts(sslc_encoder *enc)
{
    return enc->kind == SSLC_ENCODER_VIT && enc->net.vit.prompts ? &enc->net.vit.prompt : NULL;
}

sslc_status sslc_encoder_run_create(sslc_encoder_run **run, const sslc_encoder *enc, int64_t N,
                                    int64_t H, int64_t W)
{
    return run_create(run, enc, N, H, W, false);
}

sslc_status sslc_encoder_inference_run_create(sslc_encoder_run **run, const sslc_encoder *enc,
                                              int64_t N, int64_t H, int64_t W)
{
    return run_create(run, enc, N, H, W, true);
}

void sslc_encoder_run_destroy(sslc_encoder_run *run)
{
    if (!run)
        return;
    sslc_resnet_run_destroy(run->resnet);
    sslc_vit_run_destroy(run->vit);
    free(run);
}

size_t sslc_encoder_run_bytes(const sslc_encoder_run *run)
{
    return run->kind == SSLC_ENCODER_VIT ? sslc_vit_run_bytes(run->vit)
                                         : sslc_resnet_run_bytes(run->resnet);
}

double sslc_encoder_run_flops(const sslc_encoder_run *run, const sslc_encoder *enc)
{
    if (run->kind == SSLC_ENCODER_RESNET)
        return sslc_resnet_run_flops(run->resnet, &enc->net.resnet);
    const sslc_vit *v = &enc->net.vit;
    const sslc_vit_config *c = &v->config;
    const double N = (double)sslc_vit_run_batch(run->vit), T = (double)v->tokens;
    const double D = (double)c->hidden, S = (double)(v->grid * v->grid);
    double patch = 2.0 * S * D * (double)(c->in_channels * c->patch * c->patch);
    double layer = 2.0 * T * D * 3.0 * D         // in_proj (q, k, v)
                   + 2.0 * 2.0 * T * T * D        // q k^T and the weighted sum of v
                   + 2.0 * T * D * D              // out_proj
                   + 2.0 * 2.0 * T * D * (double)c->mlp_dim; // the MLP's two linears
    return N * (patch + (double)c->layers * layer);
}

void sslc_encoder_prepare(sslc_encoder_run *run, const sslc_encoder *enc)
{
    if (run->kind == SSLC_ENCODER_VIT)
        sslc_vit_prepare(run->vit, &enc->net.vit);
    else
        sslc_resnet_prepare(run->resnet, &enc->net.resnet);
}

const float *sslc_encoder_forward(sslc_encoder_run *run, sslc_encoder *enc, const float *x,
                                  bool training)
{
    return run->kind == SSLC_ENCODER_VIT
               ? sslc_vit_forward(run->vit, &enc->net.vit, x, training)
               : sslc_resnet_forward(run->resnet, &enc->net.resnet, x, training);
}

void sslc_encoder_backward(sslc_encoder_run *run, sslc_encoder *enc, const float *dfeatures)
{
    if (run->kind == SSLC_ENCODER_VIT)
        sslc_vit_backward(run->vit, &enc->net.vit, dfeatures);
    else
        sslc_resnet_backward(run->resnet, &enc->net.resnet, dfeatures);
}

void sslc_encoder_run_set_grads_ready(sslc_encoder_run *run, sslc_grads_ready_fn fn, void *ctx)
{
    if (run->kind == SSLC_ENCODER_RESNET)
        sslc_resnet_run_set_grads_ready(run->resnet, fn, ctx);
}

void sslc_encoder_run_set_bn(sslc_encoder_run *run, sslc_bn_running running,
                             const sslc_bn_sync *sync)
{
    if (run->kind == SSLC_ENCODER_RESNET)
        sslc_resnet_run_set_bn(run->resnet, running, sync);
}

void sslc_encoder_bn_apply(sslc_encoder_run *run, sslc_encoder *enc, int64_t batches,
                           const sslc_bn_sync *across)
{
    if (run->kind == SSLC_ENCODER_RESNET)
        sslc_resnet_bn_apply(run->resnet, &enc->net.resnet, batches, across);
}
