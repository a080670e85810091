// Multi-head self-attention as torch.nn.MultiheadAttention (batch_first,
// packed in_proj, query = key = value): the fast path over sslc_sgemm, and
// the double-precision reference.
//
// The fast path: the two projections are one GEMM each over all N*S tokens;
// between them, one task per (sample, head) runs the head's two products
// (q k^T and P v) as single GEMM calls, reading q, k and v in place from the
// packed (N, S, 3D) projections through the leading dimension 3D, with the
// row softmax and its 1/sqrt(dh) scaling fused in one pass over the scores.
// The tasks run in parallel; a GEMM inside an OpenMP region runs on its
// caller's thread (oneDNN and OpenMP BLAS do not nest), so the small
// per-head products keep every core busy instead of splitting each one.
#include "src/nn/layers.h"

#include <assert.h>
#include <math.h>

#include "src/core/gemm.h"
#include "src/core/vmath.h"

static int64_t head_dim(const sslc_attention_desc *d)
{
    assert(d->heads > 0 && d->D % d->heads == 0);
    return d->D / d->heads;
}

// p: (rows, cols) raw scores s -> softmax(scale * s) by rows, in place.
static void softmax_rows(float *p, int64_t rows, int64_t cols, float scale)
{
    for (int64_t i = 0; i < rows; i++) {
        float *r = p + i * cols;
        float m = r[0];
        for (int64_t j = 1; j < cols; j++)
            m = r[j] > m ? r[j] : m;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < cols; j++) {
            r[j] = sslc_vexpf(scale * (r[j] - m));
            sum += r[j];
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < cols; j++)
            r[j] *= inv;
    }
}

// dp: (rows, cols) the gradient of P = softmax(scale * s), in place -> the
// gradient of s: scale * P (dP - rowsum(dP P)).
static void softmax_backward_rows(float *dp, const float *p, int64_t rows, int64_t cols,
                                  float scale)
{
    for (int64_t i = 0; i < rows; i++) {
        float *g = dp + i * cols;
        const float *r = p + i * cols;
        float dot = 0.0f;
        for (int64_t j = 0; j < cols; j++)
            dot += g[j] * r[j];
        for (int64_t j = 0; j < cols; j++)
            g[j] = scale * r[j] * (g[j] - dot);
    }
}

void sslc_attention_forward(float *y, float *qkv, float *probs, float *ctx, const float *x,
                            const float *w_in, const float *b_in, const float *w_out,
                            const float *b_out, const sslc_attention_desc *d)
{
    const int64_t N = d->N, S = d->S, D = d->D, H = d->heads, dh = head_dim(d), D3 = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    sslc_linear_forward(qkv, x, w_in, b_in, N * S, D, D3);
#pragma omp parallel for schedule(static)
    for (int64_t nh = 0; nh < N * H; nh++) {
        const int64_t n = nh / H, h = nh % H;
        const float *q = qkv + n * S * D3 + h * dh, *k = q + D, *v = q + 2 * D;
        float *p = probs + nh * S * S;
        sslc_sgemm(false, true, S, S, dh, 1.0f, q, D3, k, D3, 0.0f, p, S); // q k^T
        softmax_rows(p, S, S, scale);
        sslc_sgemm(false, false, S, dh, S, 1.0f, p, S, v, D3, 0.0f, ctx + n * S * D + h * dh, D);
    }
    sslc_linear_forward(y, ctx, w_out, b_out, N * S, D, D);
}

size_t sslc_attention_workspace_size(const sslc_attention_desc *d)
{
    // dctx (N, S, D), dqkv (N, S, 3D), the scores' gradient (N, heads, S, S)
    return (size_t)(d->N * d->S * 4 * d->D + d->N * d->heads * d->S * d->S);
}

void sslc_attention_backward(float *dx, float *dw_in, float *db_in, float *dw_out, float *db_out,
                             const float *dy, const float *x, const float *qkv,
                             const float *probs, const float *ctx, const float *w_in,
                             const float *w_out, const sslc_attention_desc *d, float *work)
{
    const int64_t N = d->N, S = d->S, D = d->D, H = d->heads, dh = head_dim(d), D3 = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    float *dctx = work, *dqkv = dctx + N * S * D, *ds = dqkv + N * S * D3;
    sslc_linear_backward(dctx, dw_out, db_out, dy, ctx, w_out, N * S, D, D);
#pragma omp parallel for schedule(static)
    for (int64_t nh = 0; nh < N * H; nh++) {
        const int64_t n = nh / H, h = nh % H, at = n * S * D3 + h * dh;
        const float *q = qkv + at, *k = q + D, *v = q + 2 * D, *p = probs + nh * S * S;
        const float *dc = dctx + n * S * D + h * dh;
        float *dq = dqkv + at, *dk = dq + D, *dv = dq + 2 * D, *g = ds + nh * S * S;
        sslc_sgemm(false, true, S, S, dh, 1.0f, dc, D, v, D3, 0.0f, g, S);   // dP = dctx v^T
        sslc_sgemm(true, false, S, dh, S, 1.0f, p, S, dc, D, 0.0f, dv, D3);  // dV = P^T dctx
        softmax_backward_rows(g, p, S, S, scale);
        sslc_sgemm(false, false, S, dh, S, 1.0f, g, S, k, D3, 0.0f, dq, D3); // dQ = dS K
        sslc_sgemm(true, false, S, dh, S, 1.0f, g, S, q, D3, 0.0f, dk, D3);  // dK = dS^T Q
    }
    sslc_linear_backward(dx, dw_in, db_in, dqkv, x, w_in, N * S, D, D3);
}

// ---- reference -------------------------------------------------------------------

size_t sslc_attention_ref_workspace_size(const sslc_attention_desc *d)
{
    // qkv and dqkv (N, S, 3D), ctx and dctx (N, S, D), P and dP (N, heads, S, S)
    return (size_t)(2 * d->N * d->S * 4 * d->D + 2 * d->N * d->heads * d->S * d->S);
}

// The forward in double, leaving qkv, P and ctx in work; y may be NULL.
static void ref_forward(float *y, const float *x, const float *w_in, const float *b_in,
                        const float *w_out, const float *b_out, const sslc_attention_desc *d,
                        double *work)
{
    const int64_t N = d->N, S = d->S, D = d->D, H = d->heads, dh = head_dim(d), D3 = 3 * D;
    const double scale = 1.0 / sqrt((double)dh);
    double *qkv = work, *ctx = qkv + N * S * D3, *P = ctx + N * S * D;
    for (int64_t t = 0; t < N * S; t++)
        for (int64_t j = 0; j < D3; j++) {
            double s = b_in[j];
            for (int64_t c = 0; c < D; c++)
                s += (double)w_in[j * D + c] * x[t * D + c];
            qkv[t * D3 + j] = s;
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < S; i++) {
                double *p = P + ((n * H + h) * S + i) * S, m = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < S; j++) {
                    double s = 0.0;
                    for (int64_t e = 0; e < dh; e++)
                        s += qkv[(n * S + i) * D3 + h * dh + e] *
                             qkv[(n * S + j) * D3 + D + h * dh + e];
                    p[j] = scale * s;
                    m = fmax(m, p[j]);
                }
                for (int64_t j = 0; j < S; j++)
                    sum += (p[j] = exp(p[j] - m));
                for (int64_t j = 0; j < S; j++)
                    p[j] /= sum;
                for (int64_t e = 0; e < dh; e++) {
                    double s = 0.0;
                    for (int64_t j = 0; j < S; j++)
                        s += p[j] * qkv[(n * S + j) * D3 + 2 * D + h * dh + e];
                    ctx[(n * S + i) * D + h * dh + e] = s;
                }
            }
    if (y)
        for (int64_t t = 0; t < N * S; t++)
            for (int64_t o = 0; o < D; o++) {
                double s = b_out[o];
                for (int64_t c = 0; c < D; c++)
                    s += (double)w_out[o * D + c] * ctx[t * D + c];
                y[t * D + o] = (float)s;
            }
}

void sslc_attention_forward_ref(float *y, const float *x, const float *w_in, const float *b_in,
                                const float *w_out, const float *b_out,
                                const sslc_attention_desc *d, double *work)
{
    ref_forward(y, x, w_in, b_in, w_out, b_out, d, work);
}

void sslc_attention_backward_ref(float *dx, float *dw_in, float *db_in, float *dw_out,
                                 float *db_out, const float *dy, const float *x,
                                 const float *w_in, const float *b_in, const float *w_out,
                                 const float *b_out, const sslc_attention_desc *d, double *work)
{
    const int64_t N = d->N, S = d->S, D = d->D, H = d->heads, dh = head_dim(d), D3 = 3 * D;
    const double scale = 1.0 / sqrt((double)dh);
    ref_forward(NULL, x, w_in, b_in, w_out, b_out, d, work);
    double *qkv = work, *ctx = qkv + N * S * D3, *P = ctx + N * S * D;
    double *dqkv = P + N * H * S * S, *dctx = dqkv + N * S * D3, *dP = dctx + N * S * D;
    for (int64_t t = 0; t < N * S; t++)
        for (int64_t c = 0; c < D; c++) {
            double s = 0.0;
            for (int64_t o = 0; o < D; o++)
                s += (double)dy[t * D + o] * w_out[o * D + c];
            dctx[t * D + c] = s;
        }
    for (int64_t o = 0; o < D; o++) {
        double sb = 0.0;
        for (int64_t t = 0; t < N * S; t++)
            sb += dy[t * D + o];
        db_out[o] += (float)sb;
        for (int64_t c = 0; c < D; c++) {
            double s = 0.0;
            for (int64_t t = 0; t < N * S; t++)
                s += (double)dy[t * D + o] * ctx[t * D + c];
            dw_out[o * D + c] += (float)s;
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++) {
            const double *p = P + (n * H + h) * S * S;
            double *g = dP + (n * H + h) * S * S;
#define Q(i, e) qkv[(n * S + (i)) * D3 + h * dh + (e)]
#define K(i, e) qkv[(n * S + (i)) * D3 + D + h * dh + (e)]
#define V(i, e) qkv[(n * S + (i)) * D3 + 2 * D + h * dh + (e)]
#define DC(i, e) dctx[(n * S + (i)) * D + h * dh + (e)]
            for (int64_t i = 0; i < S; i++) {
                double dot = 0.0;
                for (int64_t j = 0; j < S; j++) {
                    double s = 0.0;
                    for (int64_t e = 0; e < dh; e++)
                        s += DC(i, e) * V(j, e);
                    g[i * S + j] = s;
                    dot += s * p[i * S + j];
                }
                for (int64_t j = 0; j < S; j++) // through the softmax and its scaling
                    g[i * S + j] = scale * p[i * S + j] * (g[i * S + j] - dot);
            }
            for (int64_t j = 0; j < S; j++)
                for (int64_t e = 0; e < dh; e++) {
                    double sq = 0.0, sk = 0.0, sv = 0.0;
                    for (int64_t i = 0; i < S; i++) {
                        sq += g[j * S + i] * K(i, e);
                        sk += g[i * S + j] * Q(i, e);
                        sv += p[i * S + j] * DC(i, e);
                    }
                    dqkv[(n * S + j) * D3 + h * dh + e] = sq;
                    dqkv[(n * S + j) * D3 + D + h * dh + e] = sk;
                    dqkv[(n * S + j) * D3 + 2 * D + h * dh + e] = sv;
                }
#undef Q
#undef K
#undef V
#undef DC
        }
    for (int64_t t = 0; t < N * S; t++)
        for (int64_t c = 0; c < D; c++) {
            double s = 0.0;
            for (int64_t j = 0; j < D3; j++)
                s += dqkv[t * D3 + j] * w_in[j * D + c];
            dx[t * D + c] = (float)s;
        }
    for (int64_t j = 0; j < D3; j++) {
        double sb = 0.0;
        for (int64_t t = 0; t < N * S; t++)
            sb += dqkv[t * D3 + j];
        db_in[j] += (float)sb;
        for (int64_t c = 0; c < D; c++) {
            double s = 0.0;
            for (int64_t t = 0; t < N * S; t++)
                s += dqkv[t * D3 + j] * x[t * D + c];
            dw_in[j * D + c] += (float)s;
        }
    }
}
