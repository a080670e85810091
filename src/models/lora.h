// LoRA (Hu et al. 2021) on the weights of an encoder's parameter table:
// a frozen weight W, seen as a (K, D) matrix, is adapted to
//
//     W' = W + (alpha / r) B A,    A: (r, D), B: (K, r)
//
// A linear weight W: (K, D) (the ViT's attention projections and MLP) is
// the matrix itself: A (r, D), B (K, r). For a convolution W: (K, C, R, S), D = C R S: A is a convolution with r
// outputs and W's kernel, stride and padding, B a 1x1 convolution, so
// conv(x, W') = conv(x, W) + (alpha / r) conv1x1(conv(x, A), B). The
// adapters are stored with those shapes, A (r, C, R, S) and B (K, r, 1, 1),
// named "<layer>.lora_A" / "<layer>.lora_B" after the layer's weight.
//
// sslc runs the merged weight: before each forward, W' is written over W in
// the encoder's table (one small GEMM per layer), so the convolution code is
// untouched; the gradient dW' that its backward leaves in the table gives
//
//     dA = (alpha / r) B^T dW',   dB = (alpha / r) dW' A^T
//
// The frozen W is kept in the adapter (base), so merging never accumulates
// rounding and the base can be put back bit for bit. It costs one copy of
// the targeted weights; two extra convolutions per layer would cost more
// activation memory and a second convolution path to maintain.
//
// Initialisation as loralib: A Kaiming-uniform with a = sqrt(5), i.e.
// U(-1/sqrt(D), 1/sqrt(D)), and B = 0, so before the first update W' = W
// and the adapted model computes exactly what the frozen one does.
#ifndef SSLC_MODELS_LORA_H
#define SSLC_MODELS_LORA_H

#include <stdint.h>

#include "src/nn/params.h"

enum { SSLC_LORA_TARGETS_CAP = 256 };

// One adapted weight.
typedef struct sslc_lora_site {
    int64_t w;    // the weight's offset in the encoder's values
    int64_t K, D; // the weight as a (K, D) matrix
    int64_t a, b; // offsets of A (r, D) and B (K, r) in the adapter's values
    int64_t base; // offset of the frozen weight in base
} sslc_lora_site;

typedef struct sslc_lora {
    int64_t rank;
    double alpha;
    char targets[SSLC_LORA_TARGETS_CAP];
    sslc_params params; // A and B of every site
    sslc_lora_site *sites;
    int n_sites;
    float *base; // the sites' frozen weights, copied at create
} sslc_lora;

// Adapters on the weights of enc (a model's table) that targets selects:
// comma-separated tokens, each "all" (every convolution and linear weight;
// on a ViT those of the blocks, not the patch projection conv_proj), "KxK"
// (the convolutions of that kernel, e.g. 3x3, 1x1), "attn" (a ViT's
// self_attention.in_proj_weight (3D, D) and out_proj.weight (D, D)), "mlp"
// (a ViT's mlp.0.weight (M, D) and mlp.3.weight (D, M)), or a layer-name
// prefix ("layer4", "layer3.1.conv2", "encoder.layers.encoder_layer_11";
// it matches at a '.' boundary). The adapters of in_proj_weight are named
// "<attention>.in_proj.lora_A" / ".lora_B".
// A token that matches nothing is refused with the reason. rank >= 1,
// alpha > 0. A and B are zero until sslc_lora_init; base holds enc's
// targeted weights as they are now.
sslc_status sslc_lora_create(sslc_lora *l, const sslc_params *enc, int64_t rank, double alpha,
                             const char *targets);
void sslc_lora_destroy(sslc_lora *l); // NULL-safe
// A Kaiming-uniform (loralib), B zero.
void sslc_lora_init(sslc_lora *l, uint64_t seed);
// alpha / rank.
float sslc_lora_scale(const sslc_lora *l);

// Writes W' = base + scale B A over every site's weight in enc.
void sslc_lora_merge(const sslc_lora *l, sslc_params *enc);
// Accumulates into l->params.grads the gradients of A and B from the
// gradients of W' that a backward left in enc->grads.
void sslc_lora_backward(sslc_lora *l, const sslc_params *enc);
// Writes the frozen weights back over the sites in enc.
void sslc_lora_restore(const sslc_lora *l, sslc_params *enc);

// The kernels, for one weight. w, base: (K, D); a: (r, D); b: (K, r).
// w = base + scale b a (w may equal base: then w += scale b a).
void sslc_lora_merge_weight(float *w, const float *base, const float *a, const float *b,
                            int64_t K, int64_t D, int64_t r, float scale);
// dw: (K, D). da += scale b^T dw (r, D); db += scale dw a^T (K, r).
void sslc_lora_weight_backward(float *da, float *db, const float *dw, const float *a,
                               const float *b, int64_t K, int64_t D, int64_t r, float scale);

#endif
