// Patch embedding (torchvision's ViT conv_proj): a P x P stride-P
// convolution with bias on the conv2d fast path. Its NHWC output
// (N, H/P, W/P, D) already is the token sequence (N, S, D) in torchvision's
// row-major patch order, so no reshaping is needed.
#include "src/nn/layers.h"

#include <string.h>

sslc_status sslc_patch_embed_create(sslc_patch_embed *pe, int64_t N, int64_t H, int64_t W,
                                    int64_t C, int64_t D, int64_t patch)
{
    memset(pe, 0, sizeof *pe);
    if (patch < 1 || H % patch || W % patch || H < patch || W < patch)
        return sslc_error(SSLC_ERR_INVALID,
                          "patch embedding: a %lldx%lld image does not split into %lldx%lld "
                          "patches",
                          (long long)H, (long long)W, (long long)patch, (long long)patch);
    sslc_conv2d_desc_init(&pe->d, N, H, W, C, D, patch, patch, 0);
    return sslc_conv2d_plan_create(&pe->plan, &pe->d);
}

void sslc_patch_embed_destroy(sslc_patch_embed *pe)
{
    if (!pe)
        return;
    sslc_conv2d_plan_destroy(pe->plan);
    pe->plan = NULL;
}

size_t sslc_patch_embed_workspace_size(const sslc_patch_embed *pe)
{
    return sslc_conv2d_workspace_size(pe->plan);
}

void sslc_patch_embed_prepare(sslc_patch_embed *pe, const float *w, float *workspace)
{
    sslc_conv2d_prepare(pe->plan, w, workspace);
}

void sslc_patch_embed_forward(sslc_patch_embed *pe, float *y, const float *x, const float *b,
                              float *workspace)
{
    sslc_conv2d_forward(pe->plan, y, x, workspace);
    sslc_bias_forward(y, b, pe->d.N * pe->d.P * pe->d.Q, pe->d.K);
}

void sslc_patch_embed_backward(sslc_patch_embed *pe, float *dx, float *dw, float *db,
                               const float *dy, const float *x, float *workspace)
{
    sslc_bias_backward(db, dy, pe->d.N * pe->d.P * pe->d.Q, pe->d.K);
    sslc_conv2d_backward(pe->plan, dx, dw, dy, x, workspace);
}
