// Layers as forward/backward function pairs over plain float arrays.
//
// Activations are NHWC: (N, H, W, C) with C contiguous, so a convolution over
// a whole batch is one oneDNN primitive (or one GEMM per chunk of images) and
// per-channel work (batch norm) is a vector loop over C. Weights are stored in
// PyTorch's layout (OIHW, (out, in)) so checkpoints need no conversion.
//
// Gradient conventions: backward functions ACCUMULATE into parameter
// gradients (+=), so several uses of a parameter add up, and WRITE (=) the
// gradient of their input: every activation has one consumer here, and the
// two-branch residual sum is an explicit add in the model. Forward and
// backward never allocate; callers pass workspaces.
#ifndef SSLC_NN_LAYERS_H
#define SSLC_NN_LAYERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// ---- 2-d convolution, no bias ----------------------------------------------

typedef struct sslc_conv2d_desc {
    int64_t N, H, W, C; // input (N, H, W, C)
    int64_t K, R, S;    // K output channels, R x S kernel
    int64_t stride, pad;
    int64_t P, Q; // output (N, P, Q, K); filled by sslc_conv2d_desc_init
} sslc_conv2d_desc;

void sslc_conv2d_desc_init(sslc_conv2d_desc *d, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t K, int64_t kernel, int64_t stride, int64_t pad);

// Direct loops in double precision: the reference every fast path is tested
// against. y: (N, P, Q, K), x: (N, H, W, C), w: (K, C, R, S).
void sslc_conv2d_forward_ref(float *y, const float *x, const float *w, const sslc_conv2d_desc *d);
// dx: (N, H, W, C) written, or NULL; dw: (K, C, R, S) accumulated, or NULL.
void sslc_conv2d_backward_ref(float *dx, float *dw, const float *dy, const float *x,
                              const float *w, const sslc_conv2d_desc *d);

// The fast path, planned once per shape: oneDNN convolution primitives when
// built with oneDNN, im2col + sslc_sgemm otherwise.
typedef struct sslc_conv2d_plan sslc_conv2d_plan;

sslc_status sslc_conv2d_plan_create(sslc_conv2d_plan **plan, const sslc_conv2d_desc *d);
void sslc_conv2d_plan_destroy(sslc_conv2d_plan *plan);
// Floats of scratch that forward and backward need.
size_t sslc_conv2d_workspace_size(const sslc_conv2d_plan *plan);
// Must be called after the weights change and before forward/backward: lets
// the plan repack weights into the layout its kernels want.
void sslc_conv2d_prepare(sslc_conv2d_plan *plan, const float *w, float *workspace);
void sslc_conv2d_forward(sslc_conv2d_plan *plan, float *y, const float *x, float *workspace);
void sslc_conv2d_backward(sslc_conv2d_plan *plan, float *dx, float *dw, const float *dy,
                          const float *x, float *workspace);
// "onednn" or "gemm".
const char *sslc_conv2d_impl(void);
// The activations' layout inside the convolutions: "nhwc", or "blocked"
// (oneDNN's nChw8c, reordered to and from NHWC around each primitive, for
// the layers whose channels fit oneDNN's fast blocked kernels; the default
// below AVX-512, SSLC_CONV_LAYOUT=nhwc|blocked overrides).
const char *sslc_conv2d_layout(void);
// Whether this plan's primitives run on the blocked layout.
bool sslc_conv2d_plan_blocked(const sslc_conv2d_plan *plan);

// ---- batch norm (2-d over N*H*W rows of C channels; 1-d is H = W = 1) -------

enum { SSLC_BN_FUSE_RELU = 1 };

// Batch statistics over the rows of several processes (sync-BN): sum adds
// buf (n,) over the processes in place; every process holds the same number
// of rows. NULL where a layer takes one: this process's rows only.
typedef struct sslc_bn_sync {
    void (*sum)(void *ctx, double *buf, int64_t n);
    void *ctx;
    int64_t processes;
} sslc_bn_sync;

// Training mode, as PyTorch: normalise with the batch mean and biased
// variance; update running_mean/var with momentum (running_var uses the
// unbiased variance n/(n-1)). mean, rstd: (C,) saved for backward.
// y: (rows, C), x: (rows, C); y may alias x (backward then needs no x: it
// is not supported, backward recomputes x-hat from x). running_* may be NULL.
// stats (2C,) or NULL: the batch mean and unbiased variance are added to
// stats[0..C) and stats[C..2C), for a running-statistics update made later
// from several batches (sslc_batchnorm_update_running).
// work: sslc_batchnorm_workspace_size(C) doubles of scratch, in all three.
void sslc_batchnorm_forward_train(float *y, float *mean, float *rstd, float *running_mean,
                                  float *running_var, double *stats, const float *x,
                                  const float *gamma, const float *beta, int64_t rows, int64_t C,
                                  float momentum, float eps, unsigned flags,
                                  const sslc_bn_sync *sync, double *work);
// The running statistics moved towards the mean of `batches` batches'
// statistics summed in stats (2C,), as MoCo's SplitBatchNorm does for its
// groups: running = (1 - momentum) running + momentum * stats / batches.
void sslc_batchnorm_update_running(float *running_mean, float *running_var, const double *stats,
                                   int64_t batches, int64_t C, float momentum);
// What a training-mode forward of a model does with its layers' running
// statistics: move them with each batch (PyTorch's train(), the default),
// add each batch's statistics up for one update later from their mean (the
// groups of a batch: shuffle-BN, BN groups, data-parallel ranks, as MoCo's
// SplitBatchNorm), or leave them (a forward recomputed for its backward).
typedef enum sslc_bn_running {
    SSLC_BN_RUNNING_UPDATE,
    SSLC_BN_RUNNING_ACCUMULATE,
    SSLC_BN_RUNNING_FROZEN,
} sslc_bn_running;

// Eval mode: normalise with the running statistics.
void sslc_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 int64_t rows, int64_t C, float eps, unsigned flags,
                                 double *work);
// dx written; dgamma, dbeta accumulated. With FUSE_RELU, y is the forward
// output (the ReLU mask); otherwise y may be NULL. dx may alias dy.
// With sync, the statistics were over every process's rows: dx takes the
// sums over all of them; dgamma, dbeta stay this process's (its gradients
// are summed with the rest of the parameters').
void sslc_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *y, const float *x, const float *mean, const float *rstd,
                             const float *gamma, int64_t rows, int64_t C, unsigned flags,
                             const sslc_bn_sync *sync, double *work);
// Doubles of scratch: per-thread partial sums, combined in thread order so
// results do not depend on timing.
size_t sslc_batchnorm_workspace_size(int64_t C);

// ---- elementwise -------------------------------------------------------------

// y = max(x, 0); y may alias x.
void sslc_relu_forward(float *y, const float *x, int64_t n);
// dx = dy * (y > 0); dx may alias dy.
void sslc_relu_backward(float *dx, const float *dy, const float *y, int64_t n);
// y = max(a + b, 0): the residual join. y may alias a or b.
void sslc_add_relu_forward(float *y, const float *a, const float *b, int64_t n);
// y += x
void sslc_add_inplace(float *y, const float *x, int64_t n);
// GELU, exact erf form as torch.nn.GELU(): y = x/2 (1 + erf(x / sqrt 2)).
// y may alias x.
void sslc_gelu_forward(float *y, const float *x, int64_t n);
// dx = dy * GELU'(x), x the forward's input; dx may alias dy.
void sslc_gelu_backward(float *dx, const float *dy, const float *x, int64_t n);
// A bias over the last dimension: y (rows, C) += b (C,).
void sslc_bias_forward(float *y, const float *b, int64_t rows, int64_t C);
// db (C,) += the column sums of dy (rows, C), as sslc_sum_task says.
void sslc_bias_backward(float *db, const float *dy, int64_t rows, int64_t C);

// Column sums (bias and layer-norm gradients) that do not depend on the
// thread count: a (rows, C) matrix is cut into tasks of SSLC_SUM_ROWS rows by
// SSLC_SUM_COLS columns; each task sums its rows in order on the stack,
// streaming contiguous row segments, and the tasks' sums are added to the
// result in task order (an `omp ordered` loop over sslc_sum_tasks tasks).
enum { SSLC_SUM_ROWS = 256, SSLC_SUM_COLS = 256 };
typedef struct sslc_sum_task {
    int64_t r0, r1; // rows [r0, r1)
    int64_t c0, n;  // columns [c0, c0 + n)
} sslc_sum_task;
static inline int64_t sslc_sum_tasks(int64_t rows, int64_t C)
{
    return (rows + SSLC_SUM_ROWS - 1) / SSLC_SUM_ROWS * ((C + SSLC_SUM_COLS - 1) / SSLC_SUM_COLS);
}
static inline sslc_sum_task sslc_sum_task_at(int64_t t, int64_t rows, int64_t C)
{
    const int64_t chunks = (rows + SSLC_SUM_ROWS - 1) / SSLC_SUM_ROWS;
    sslc_sum_task k = {.r0 = t % chunks * SSLC_SUM_ROWS, .c0 = t / chunks * SSLC_SUM_COLS};
    k.r1 = k.r0 + SSLC_SUM_ROWS < rows ? k.r0 + SSLC_SUM_ROWS : rows;
    k.n = k.c0 + SSLC_SUM_COLS < C ? SSLC_SUM_COLS : C - k.c0;
    return k;
}

// ---- pooling -------------------------------------------------------------------

// Max pool, kernel k, stride s, padding p (padding never wins), as PyTorch.
// y: (N, P, Q, C), x: (N, H, W, C), argmax: (N, P, Q, C) int32 offsets into
// the image's H*W plane, saved for backward.
void sslc_maxpool_forward(float *y, int32_t *argmax, const float *x, int64_t N, int64_t H,
                          int64_t W, int64_t C, int64_t kernel, int64_t stride, int64_t pad,
                          int64_t P, int64_t Q);
// dx written (zeroed first).
void sslc_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int64_t N,
                           int64_t H, int64_t W, int64_t C, int64_t P, int64_t Q);
// Global average pool: y (N, C), x (N, H*W, C).
void sslc_avgpool_forward(float *y, const float *x, int64_t N, int64_t HW, int64_t C);
void sslc_avgpool_backward(float *dx, const float *dy, int64_t N, int64_t HW, int64_t C);

// ---- linear ------------------------------------------------------------------

// y: (N, out) = x (N, in) W^T + b; w: (out, in), b: (out,) or NULL.
void sslc_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N,
                         int64_t in, int64_t out);
// dx (N, in) written or NULL; dw, db accumulated (db may be NULL).
void sslc_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int64_t N, int64_t in, int64_t out);

// ---- layer norm over the last dimension ---------------------------------------------

// As torch.nn.LayerNorm(C, eps): each row normalised by its own mean and
// biased variance, then gamma * x-hat + beta (torchvision's ViT: eps 1e-6).
// y, x: (rows, C); mean, rstd: (rows,) saved for backward. y may not alias x.
void sslc_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                            const float *gamma, const float *beta, int64_t rows, int64_t C,
                            float eps);
// dx (rows, C) written (may not alias dy); dgamma, dbeta (C,) accumulated.
void sslc_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *x, const float *mean, const float *rstd,
                             const float *gamma, int64_t rows, int64_t C);

// ---- multi-head self-attention -----------------------------------------------------

// torch.nn.MultiheadAttention(D, heads, batch_first=True) called with
// query = key = value = x: a packed input projection qkv = x W_in^T + b_in
// (W_in: (3D, D), rows q, then k, then v; b_in: (3D,)), per head h the
// columns h*dh .. (h+1)*dh of q, k, v (dh = D / heads), softmax(q k^T /
// sqrt(dh)) v, the heads' outputs side by side, and out_proj: y = ctx
// W_out^T + b_out (W_out: (D, D), b_out: (D,)).
typedef struct sslc_attention_desc {
    int64_t N, S, D, heads; // x, y: (N, S, D)
} sslc_attention_desc;

// What forward saves for backward, in caller-owned buffers:
//   qkv: (N, S, 3D) the projections; probs: (N, heads, S, S) the softmax;
//   ctx: (N, S, D) the heads' outputs, out_proj's input.
// y: (N, S, D) written; may not alias x.
void sslc_attention_forward(float *y, float *qkv, float *probs, float *ctx, const float *x,
                            const float *w_in, const float *b_in, const float *w_out,
                            const float *b_out, const sslc_attention_desc *d);
// dx (N, S, D) written (may not alias dy); dw_in, db_in, dw_out, db_out
// accumulated. work: sslc_attention_workspace_size floats.
void sslc_attention_backward(float *dx, float *dw_in, float *db_in, float *dw_out, float *db_out,
                             const float *dy, const float *x, const float *qkv,
                             const float *probs, const float *ctx, const float *w_in,
                             const float *w_out, const sslc_attention_desc *d, float *work);
size_t sslc_attention_workspace_size(const sslc_attention_desc *d);
// Direct loops in double, no GEMM: the reference the fast path is tested
// against. The backward recomputes the forward from x; both keep their
// intermediates in work: sslc_attention_ref_workspace_size doubles.
void sslc_attention_forward_ref(float *y, const float *x, const float *w_in, const float *b_in,
                                const float *w_out, const float *b_out,
                                const sslc_attention_desc *d, double *work);
void sslc_attention_backward_ref(float *dx, float *dw_in, float *db_in, float *dw_out,
                                 float *db_out, const float *dy, const float *x,
                                 const float *w_in, const float *b_in, const float *w_out,
                                 const float *b_out, const sslc_attention_desc *d, double *work);
size_t sslc_attention_ref_workspace_size(const sslc_attention_desc *d);

// ---- patch embedding ---------------------------------------------------------------

// torchvision's ViT conv_proj: a P x P convolution of stride P with bias, its
// output (N, H/P, W/P, D) read as the token sequence (N, S, D), S = (H/P)(W/P)
// in row-major patch order (as torchvision's reshape + permute). Runs on the
// conv2d fast path; the reference is sslc_conv2d_forward_ref plus the bias.
typedef struct sslc_patch_embed {
    sslc_conv2d_desc d; // kernel = stride = P, no padding; K = D
    sslc_conv2d_plan *plan;
} sslc_patch_embed;

// x: (N, H, W, C) with H and W multiples of patch; refused otherwise.
sslc_status sslc_patch_embed_create(sslc_patch_embed *pe, int64_t N, int64_t H, int64_t W,
                                    int64_t C, int64_t D, int64_t patch);
void sslc_patch_embed_destroy(sslc_patch_embed *pe); // NULL-safe
size_t sslc_patch_embed_workspace_size(const sslc_patch_embed *pe);
// After the weights change, before forward/backward (sslc_conv2d_prepare).
void sslc_patch_embed_prepare(sslc_patch_embed *pe, const float *w, float *workspace);
// y: (N, S, D); w: (D, C, P, P); b: (D,).
void sslc_patch_embed_forward(sslc_patch_embed *pe, float *y, const float *x, const float *b,
                              float *workspace);
// dx (N, H, W, C) written, or NULL (the images need none); dw, db accumulated.
void sslc_patch_embed_backward(sslc_patch_embed *pe, float *dx, float *dw, float *db,
                               const float *dy, const float *x, float *workspace);

#endif
