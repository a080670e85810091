// Vision Transformer encoders exactly as torchvision's VisionTransformer
// (same tensor names, shapes and initialisation), as the encoder of
// contrastive learning: the output is the class token after the final
// layer norm (torchvision's `heads` classifier is not part of it).
//
//   x (N, H, W, C) -> conv_proj (P x P, stride P) -> (N, S, D) patch tokens
//   -> [class_token; tokens] + encoder.pos_embedding         (N, T = S + 1, D)
//   -> encoder_layer_i: x = x + self_attention(ln_1(x));
//                       x = x + mlp(ln_2(x))   (Linear-GELU-Linear)
//   -> encoder.ln on the class token -> features (N, D)
//
// Position embeddings are learned (torchvision: a parameter drawn N(0, 0.02))
// or MoCo v3's fixed 2-d sin-cos table, stored under the same name as a
// buffer: it is not trained and has no gradient. docs/vit.md has the
// tensor table and what is tested.
#ifndef SSLC_MODELS_VIT_H
#define SSLC_MODELS_VIT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/nn/layers.h"
#include "src/nn/params.h"

typedef enum sslc_vit_pos {
    SSLC_VIT_POS_LEARNED, // torchvision's
    SSLC_VIT_POS_SINCOS,  // MoCo v3's fixed 2-d sin-cos, not trained
} sslc_vit_pos;

typedef struct sslc_vit_config {
    int64_t hidden;      // D: 192 / 384 / 768 (vit-tiny / -small / -base)
    int64_t layers;      // 12 for the presets
    int64_t heads;       // 3 / 6 / 12; D must be a multiple
    int64_t mlp_dim;     // 4 D for the presets
    int64_t patch;       // P: 16 for 224 px, 4 for 28-32 px images
    int64_t image_size;  // square images; a multiple of P
    int64_t in_channels; // 1 or 3 (torchvision's own is 3)
    sslc_vit_pos pos;
    // conv_proj flagged SSLC_TENSOR_FROZEN: the patch projection stays at its
    // random initialisation (MoCo v3's stability trick; pretraining only,
    // not stored: a loaded checkpoint trains it).
    bool frozen_patch;
} sslc_vit_config;

// One encoder layer's tensors: offsets in params.values.
typedef struct sslc_vit_block {
    int64_t ln1_w, ln1_b;  // ln_1
    int64_t in_w, in_b;    // self_attention.in_proj_weight (3D, D), in_proj_bias (3D,)
    int64_t out_w, out_b;  // self_attention.out_proj.weight (D, D), .bias (D,)
    int64_t ln2_w, ln2_b;  // ln_2
    int64_t fc1_w, fc1_b;  // mlp.0: (mlp_dim, D), (mlp_dim,)
    int64_t fc2_w, fc2_b;  // mlp.3: (D, mlp_dim), (D,)
} sslc_vit_block;

typedef struct sslc_vit {
    sslc_vit_config config;
    sslc_params params;
    int64_t conv_w, conv_b; // conv_proj.weight (D, C, P, P), conv_proj.bias (D,)
    int64_t cls;            // class_token (1, 1, D)
    int64_t pos;            // encoder.pos_embedding (1, T, D): in values (learned) or buffers
    int64_t ln_w, ln_b;     // encoder.ln
    sslc_vit_block *blocks;
    int64_t grid;        // patches per side: image_size / P
    int64_t tokens;      // T = grid^2 + 1
    int64_t feature_dim; // D
    // Visual prompts (sslc_vit_add_prompts): 0 for none.
    int64_t prompts;        // P tokens per image
    bool deep_prompts;      // VPT-deep: a set per block; shallow: one at the input
    sslc_params prompt;     // "prompt_embeddings" (layers or 1, P, D), apart from params
} sslc_vit;

// Fills hidden, layers, heads and mlp_dim from "vit-tiny", "vit-small" or
// "vit-base"; the other fields are the caller's.
sslc_status sslc_vit_parse_arch(sslc_vit_config *config, const char *arch);
// The preset the config's hidden, layers, heads and mlp_dim match, or "vit"
// for any other shape (the test-sized overrides).
const char *sslc_vit_arch(const sslc_vit_config *config);

// Declares and allocates every tensor; weights are zero (and a sin-cos
// table already filled) until init.
sslc_status sslc_vit_create(sslc_vit *net, const sslc_vit_config *config);
void sslc_vit_destroy(sslc_vit *net); // NULL-safe
// torchvision's initialisation: conv_proj weight truncated normal with std
// sqrt(1 / fan_in), bias 0; class token 0; learned position embedding
// N(0, 0.02^2); layer norms 1 and 0; in_proj_weight Xavier uniform,
// out_proj.weight U(+-1/sqrt(D)) (nn.Linear's default), both biases 0;
// MLP weights Xavier uniform, biases N(0, 1e-6^2).
void sslc_vit_init(sslc_vit *net, uint64_t seed);

// Visual prompt tuning (VPT, Jia et al. 2022): P learned tokens inserted
// after the class token, with no position embedding:
//
//   shallow: tokens = [cls + pos_0; prompt[0]; patches + pos]     (N, T + P, D)
//            and the blocks run as they are
//   deep:    the same at the input; before block i > 0 the P prompt rows
//            of block i - 1's output are replaced by prompt[i]
//
// The features are still the class token's. The prompts live in their own
// table (net->prompt), so the encoder's table, its checkpoints and its hash
// do not change; runs created after this call are sized for T + P tokens
// and backward accumulates into net->prompt.grads. prompts >= 1, once.
sslc_status sslc_vit_add_prompts(sslc_vit *net, int64_t prompts, bool deep);
// Frees the prompts: the ViT is as before sslc_vit_add_prompts.
void sslc_vit_drop_prompts(sslc_vit *net);
// VPT's initialisation: U(+-sqrt(6 / (C P_patch^2 + D))), Xavier uniform over
// a patch's fan-in and the width.
void sslc_vit_init_prompts(sslc_vit *net, uint64_t seed);

// Activations and scratch for batches of N images.
typedef struct sslc_vit_run sslc_vit_run;
sslc_status sslc_vit_run_create(sslc_vit_run **run, const sslc_vit *net, int64_t N);
void sslc_vit_run_destroy(sslc_vit_run *run);
int64_t sslc_vit_run_batch(const sslc_vit_run *run);
size_t sslc_vit_run_bytes(const sslc_vit_run *run);

// Call after the weights change and before forward (the patch projection's
// convolution repacks its weights).
void sslc_vit_prepare(sslc_vit_run *run, const sslc_vit *net);
// x: (N, image_size, image_size, in_channels). Returns the features (N, D),
// owned by the run and valid until its next forward. x must stay valid
// until backward. The ViT has no batch norm and no dropout (torchvision's
// default 0), so training only says whether a backward may follow; the
// numbers are the same.
const float *sslc_vit_forward(sslc_vit_run *run, const sslc_vit *net, const float *x,
                              bool training);
// dfeatures: (N, D). Accumulates into net->params.grads; the forward before
// it must have been in training mode.
void sslc_vit_backward(sslc_vit_run *run, sslc_vit *net, const float *dfeatures);

#endif
