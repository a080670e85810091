// The ops of the gradient-check table (tests/gradcheck.h): what each one's
// case.size holds is in its `sizes` string.
#ifndef SSLC_TESTS_GRADCHECK_OPS_H
#define SSLC_TESTS_GRADCHECK_OPS_H

#include "tests/gradcheck.h"

// src/nn (ops_nn.c)
extern const sslc_gc_op sslc_gc_conv2d_ref;  // the double-precision reference kernels
extern const sslc_gc_op sslc_gc_conv2d;      // the fast path (oneDNN or im2col + GEMM)
extern const sslc_gc_op sslc_gc_batchnorm;
extern const sslc_gc_op sslc_gc_batchnorm_relu;
extern const sslc_gc_op sslc_gc_relu;
extern const sslc_gc_op sslc_gc_add_relu;    // the residual join
extern const sslc_gc_op sslc_gc_maxpool;
extern const sslc_gc_op sslc_gc_avgpool;
extern const sslc_gc_op sslc_gc_linear;
extern const sslc_gc_op sslc_gc_l2norm;
extern const sslc_gc_op sslc_gc_layernorm;
extern const sslc_gc_op sslc_gc_gelu;
extern const sslc_gc_op sslc_gc_attention;     // the fast path (GEMMs per head)
extern const sslc_gc_op sslc_gc_attention_ref; // the double-precision reference
extern const sslc_gc_op sslc_gc_patch_embed;

// src/models (ops_models.c)
extern const sslc_gc_op sslc_gc_simclr_head;      // Linear(no bias)-BN-ReLU-Linear
extern const sslc_gc_op sslc_gc_simclr_head_twin; // the same, numeric side in double
extern const sslc_gc_op sslc_gc_resnet_head;      // a whole ResNet + linear head
extern const sslc_gc_op sslc_gc_resnet_head_twin; // the same, numeric side in double
extern const sslc_gc_op sslc_gc_vit;              // a whole Vision Transformer

// src/models/lora.c (ops_lora.c)
extern const sslc_gc_op sslc_gc_lora_linear; // a linear layer with W + (alpha / r) B A
extern const sslc_gc_op sslc_gc_vit_prompt;  // a ViT with visual prompts (VPT)
extern const sslc_gc_op sslc_gc_lora_conv; // a convolution with W + (alpha / r) B A

// losses/ and src/eval (ops_losses.c)
extern const sslc_gc_op sslc_gc_ntxent;
extern const sslc_gc_op sslc_gc_ntxent_multi;
extern const sslc_gc_op sslc_gc_infonce;
extern const sslc_gc_op sslc_gc_mocov3;
extern const sslc_gc_op sslc_gc_xent;
extern const sslc_gc_op sslc_gc_distill;
extern const sslc_gc_op sslc_gc_logreg;

// The fixed random projection r of L = sum(y * r): (n,) N(0, 1).
float *sslc_gc_projection(const sslc_gc_case *c, size_t n);

#endif
