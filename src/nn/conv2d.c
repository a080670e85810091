// 2-d convolution: the double-precision reference, oneDNN primitives, and
// im2col + GEMM for builds without oneDNN.
//
// Measured on this machine (2 threads, 3x3 conv, 64->64 channels, 32x32,
// batch 128): oneDNN's NHWC primitive 230 GFLOP/s forward and 210-220
// backward; im2col + dnnl_sgemm 140 GFLOP/s. oneDNN's blocked layout was only
// 3% faster than NHWC, not worth reordering activations for.
#include "src/nn/layers.h"

#include <stdlib.h>
#include <string.h>

#include "src/core/gemm.h"

#if defined(SSLC_USE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#endif

void sslc_conv2d_desc_init(sslc_conv2d_desc *d, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t K, int64_t kernel, int64_t stride, int64_t pad)
{
    *d = (sslc_conv2d_desc){.N = N, .H = H, .W = W, .C = C, .K = K, .R = kernel, .S = kernel,
                            .stride = stride, .pad = pad};
    d->P = (H + 2 * pad - kernel) / stride + 1;
    d->Q = (W + 2 * pad - kernel) / stride + 1;
}

// ---- reference -----------------------------------------------------------------

void sslc_conv2d_forward_ref(float *y, const float *x, const float *w, const sslc_conv2d_desc *d)
{
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t p = 0; p < d->P; p++)
            for (int64_t q = 0; q < d->Q; q++)
                for (int64_t k = 0; k < d->K; k++) {
                    double acc = 0.0;
                    for (int64_t r = 0; r < d->R; r++) {
                        int64_t h = p * d->stride - d->pad + r;
                        if (h < 0 || h >= d->H)
                            continue;
                        for (int64_t s = 0; s < d->S; s++) {
                            int64_t ww = q * d->stride - d->pad + s;
                            if (ww < 0 || ww >= d->W)
                                continue;
                            const float *xp = x + ((n * d->H + h) * d->W + ww) * d->C;
                            for (int64_t c = 0; c < d->C; c++)
                                acc += (double)xp[c] * w[((k * d->C + c) * d->R + r) * d->S + s];
                        }
                    }
                    y[((n * d->P + p) * d->Q + q) * d->K + k] = (float)acc;
                }
}

void sslc_conv2d_backward_ref(float *dx, float *dw, const float *dy, const float *x,
                              const float *w, const sslc_conv2d_desc *d)
{
    if (dx)
        memset(dx, 0, (size_t)(d->N * d->H * d->W * d->C) * sizeof(float));
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t p = 0; p < d->P; p++)
            for (int64_t q = 0; q < d->Q; q++)
                for (int64_t k = 0; k < d->K; k++) {
                    float g = dy[((n * d->P + p) * d->Q + q) * d->K + k];
                    for (int64_t r = 0; r < d->R; r++) {
                        int64_t h = p * d->stride - d->pad + r;
                        if (h < 0 || h >= d->H)
                            continue;
                        for (int64_t s = 0; s < d->S; s++) {
                            int64_t ww = q * d->stride - d->pad + s;
                            if (ww < 0 || ww >= d->W)
                                continue;
                            int64_t xo = ((n * d->H + h) * d->W + ww) * d->C;
                            for (int64_t c = 0; c < d->C; c++) {
                                int64_t wo = ((k * d->C + c) * d->R + r) * d->S + s;
                                if (dw)
                                    dw[wo] += g * x[xo + c];
                                if (dx)
                                    dx[xo + c] += g * w[wo];
                            }
                        }
                    }
                }
}

// ---- im2col + GEMM -------------------------------------------------------------

// Rows of the column matrix are output pixels, columns (r, s, c) with c
// fastest, so each kernel tap copies C contiguous floats from NHWC input.
static void im2col(float *col, const float *x, const sslc_conv2d_desc *d, int64_t n0, int64_t nn)
{
    const int64_t C = d->C, RSC = d->R * d->S * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nn; n++)
        for (int64_t p = 0; p < d->P; p++)
            for (int64_t q = 0; q < d->Q; q++) {
                float *dst = col + ((n * d->P + p) * d->Q + q) * RSC;
                for (int64_t r = 0; r < d->R; r++) {
                    int64_t h = p * d->stride - d->pad + r;
                    for (int64_t s = 0; s < d->S; s++, dst += C) {
                        int64_t w = q * d->stride - d->pad + s;
                        if (h < 0 || h >= d->H || w < 0 || w >= d->W)
                            memset(dst, 0, (size_t)C * sizeof(float));
                        else
                            memcpy(dst, x + (((n0 + n) * d->H + h) * d->W + w) * C,
                                   (size_t)C * sizeof(float));
                    }
                }
            }
}

// The adjoint of im2col: adds column entries back into dx (zeroed by caller).
static void col2im(float *dx, const float *col, const sslc_conv2d_desc *d, int64_t n0, int64_t nn)
{
    const int64_t C = d->C, RSC = d->R * d->S * C;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < nn; n++)
        for (int64_t p = 0; p < d->P; p++)
            for (int64_t q = 0; q < d->Q; q++) {
                const float *src = col + ((n * d->P + p) * d->Q + q) * RSC;
                for (int64_t r = 0; r < d->R; r++) {
                    int64_t h = p * d->stride - d->pad + r;
                    for (int64_t s = 0; s < d->S; s++, src += C) {
                        int64_t w = q * d->stride - d->pad + s;
                        if (h < 0 || h >= d->H || w < 0 || w >= d->W)
                            continue;
                        float *out = dx + (((n0 + n) * d->H + h) * d->W + w) * C;
                        for (int64_t c = 0; c < C; c++)
                            out[c] += src[c];
                    }
                }
            }
}

#if defined(SSLC_USE_DNNL)
// An activation's blocked copy: reorders from and back to NHWC (NULL when
// the primitives take NHWC), its memory at offset bytes into the workspace.
typedef struct blocked_copy {
    dnnl_primitive_t in, out;
    dnnl_memory_t mem;
    size_t offset, bytes;
} blocked_copy;
#endif

struct sslc_conv2d_plan {
    sslc_conv2d_desc d;
    bool direct; // 1x1, stride 1, no padding: the input is its own column matrix
    int64_t chunk; // images per im2col chunk
    float *wt;     // (K, R, S, C): the weights in column order
    float *dwt;    // (K, R, S, C): weight-gradient accumulator
#if defined(SSLC_USE_DNNL)
    bool onednn;
    dnnl_primitive_t fwd, bwd_data, bwd_weights, w_to_fwd, w_to_bwd, dw_accumulate;
    dnnl_memory_t x_mem, y_mem, w_user, w_fwd, w_bwd, dx_mem, dy_mem, dw_prim, dw_user, scratch;
    size_t scratch_bytes; // the largest of the three primitives' scratchpads
    // Where the primitives want the activations in another layout than
    // NHWC (oneDNN's blocked nChw8c / nChw16c): reorders to and from copies
    // in the workspace, after the scratchpad.
    blocked_copy xb, yb; // of the input and the output
#endif
};

#if defined(SSLC_USE_DNNL)
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success)
        engine = NULL;
}
#endif

#if defined(SSLC_USE_DNNL)
static const char *forced_impl(void)
{
    const char *s = getenv("SSLC_CONV");
    return s ? s : "";
}

// The activations' layout inside the primitives. sslc's tensors are NHWC;
// on AVX2 (and below) oneDNN's convolutions are much faster on its blocked
// layout (nChw8c), enough to pay for reordering each input and output
// (measured on AMD Zen 3: a ResNet-18 training step 1.10-1.21x, eval
// forward 1.16-1.39x; docs/benchmarks.md), so there the primitives choose
// the layout and the plan reorders around them. On AVX-512 nChw16c was 3%
// ahead of NHWC before any reorder (AMD Zen 4): NHWC stays.
// SSLC_CONV_LAYOUT=nhwc|blocked overrides the choice.
static bool blocked_layout(void)
{
    const char *s = getenv("SSLC_CONV_LAYOUT");
    if (s && *s)
        return strcmp(s, "blocked") == 0;
    const char *isa = sslc_math_isa();
    return strncmp(isa, "avx512", 6) != 0 && strcmp(isa, "other") != 0;
}
#endif

const char *sslc_conv2d_impl(void)
{
#if defined(SSLC_USE_DNNL)
    if (strcmp(forced_impl(), "gemm") != 0)
        return "onednn";
#endif
    return "gemm";
}

const char *sslc_conv2d_layout(void)
{
#if defined(SSLC_USE_DNNL)
    if (strcmp(sslc_conv2d_impl(), "onednn") == 0 && blocked_layout())
        return "blocked";
#endif
    return "nhwc";
}

#if defined(SSLC_USE_DNNL)
#define DNNL_TRY(call)                                                                             \
    do {                                                                                           \
        if ((call) != dnnl_success)                                                                \
            goto fail;                                                                             \
    } while (0)

static size_t align_up(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

static dnnl_status_t make_reorder(dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                                  const dnnl_memory_desc_t *to, bool accumulate)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && accumulate) {
        // dst = src + 1.0 * dst: accumulates weight gradients in one pass.
        st = dnnl_post_ops_create(&ops);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_sum(ops, 1.0f);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr);
    if (st == dnnl_success)
        st = dnnl_primitive_create(out, pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

// Whether oneDNN fell back to its reference loops for one of them: it does
// for blocked activations whose channels are not a multiple of the block
// (measured: 4-channel layers 50x slower than on NHWC).
static bool any_reference_impl(const dnnl_primitive_desc_t *pds, int n)
{
    for (int i = 0; i < n; i++) {
        const char *impl = "";
        if (dnnl_primitive_desc_query(pds[i], dnnl_query_impl_info_str, 0, &impl) !=
                dnnl_success ||
            strncmp(impl, "ref", 3) == 0)
            return true;
    }
    return false;
}

// A blocked copy between user (NHWC) and prim, placed at *end in the
// workspace (advanced past it); nothing when the two are the same.
static dnnl_status_t blocked_copy_create(blocked_copy *b, const dnnl_memory_desc_t *user,
                                         const dnnl_memory_desc_t *prim, size_t *end)
{
    if (dnnl_memory_desc_equal(user, prim))
        return dnnl_success;
    dnnl_status_t st = make_reorder(&b->in, user, prim, false);
    if (st == dnnl_success)
        st = make_reorder(&b->out, prim, user, false);
    if (st == dnnl_success)
        st = dnnl_memory_create(&b->mem, prim, engine, DNNL_MEMORY_NONE);
    b->offset = *end;
    b->bytes = dnnl_memory_desc_get_size(prim);
    *end += align_up(b->bytes);
    return st;
}

// blocked: let the primitives choose the activations' layout (and refuse
// if one of them would then run oneDNN's reference loops).
static bool onednn_create(sslc_conv2d_plan *pl, bool blocked)
{
    pthread_once(&engine_once, engine_init);
    if (!engine)
        return false;
    const sslc_conv2d_desc *d = &pl->d;
    dnnl_memory_desc_t xd, yd, wd, wany;
    dnnl_dims_t xs = {d->N, d->C, d->H, d->W}, ys = {d->N, d->K, d->P, d->Q};
    dnnl_dims_t ws = {d->K, d->C, d->R, d->S};
    dnnl_dims_t strides = {d->stride, d->stride}, pad = {d->pad, d->pad};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    bool ok = false;
    // The caller's workspace is the scratchpad: oneDNN would otherwise
    // allocate and page in fresh reduction buffers at every call (measured:
    // 6% of a training step spent clearing new pages).
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&xd, 4, xs, dnnl_f32, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&yd, 4, ys, dnnl_f32, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wd, 4, ws, dnnl_f32, dnnl_oihw));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wany, 4, ws, dnnl_f32, dnnl_format_tag_any));

    // The activations' layout: NHWC, or the one the forward primitive
    // chooses (blocked), which the backward primitives then share.
    dnnl_memory_desc_t xp = xd, yp = yd;
    if (blocked) {
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&xp, 4, xs, dnnl_f32, dnnl_format_tag_any));
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&yp, 4, ys, dnnl_f32, dnnl_format_tag_any));
    }
    DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                                dnnl_convolution_direct, &xp, &wany, NULL, &yp,
                                                strides, pad, pad));
    DNNL_TRY(dnnl_primitive_desc_create(&fpd, &cd, attr, engine, NULL));
    xp = *dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0);
    yp = *dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &xp, &wany,
                                                      &yp, strides, pad, pad));
    DNNL_TRY(dnnl_primitive_desc_create(&dpd, &cd, attr, engine, fpd));
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &xp,
                                                         &wany, NULL, &yp, strides, pad, pad));
    DNNL_TRY(dnnl_primitive_desc_create(&wpd, &cd, attr, engine, fpd));
    const dnnl_primitive_desc_t pds[3] = {fpd, dpd, wpd};
    if (blocked && any_reference_impl(pds, 3))
        goto fail;
    const dnnl_memory_desc_t *scratch_md = NULL;
    for (int i = 0; i < 3; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pds[i], dnnl_query_scratchpad_md, 0);
        size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
        if (bytes >= pl->scratch_bytes) {
            pl->scratch_bytes = bytes;
            scratch_md = md;
        }
    }

    const dnnl_memory_desc_t *w_fwd_md = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *w_bwd_md = dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dw_md =
        dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0);

    DNNL_TRY(dnnl_primitive_create(&pl->fwd, fpd));
    DNNL_TRY(dnnl_primitive_create(&pl->bwd_data, dpd));
    DNNL_TRY(dnnl_primitive_create(&pl->bwd_weights, wpd));
    DNNL_TRY(make_reorder(&pl->w_to_fwd, &wd, w_fwd_md, false));
    DNNL_TRY(make_reorder(&pl->w_to_bwd, &wd, w_bwd_md, false));
    DNNL_TRY(make_reorder(&pl->dw_accumulate, dw_md, &wd, true));

    // User-layout memories get their data pointers at each call; the
    // primitive-layout weights are owned by the plan.
    DNNL_TRY(dnnl_memory_create(&pl->x_mem, &xd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->y_mem, &yd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->dx_mem, &xd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->dy_mem, &yd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->w_user, &wd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->dw_user, &wd, engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&pl->w_fwd, w_fwd_md, engine, DNNL_MEMORY_ALLOCATE));
    DNNL_TRY(dnnl_memory_create(&pl->w_bwd, w_bwd_md, engine, DNNL_MEMORY_ALLOCATE));
    DNNL_TRY(dnnl_memory_create(&pl->dw_prim, dw_md, engine, DNNL_MEMORY_ALLOCATE));
    if (pl->scratch_bytes)
        DNNL_TRY(dnnl_memory_create(&pl->scratch, scratch_md, engine, DNNL_MEMORY_NONE));
    size_t end = align_up(pl->scratch_bytes);
    DNNL_TRY(blocked_copy_create(&pl->xb, &xd, &xp, &end));
    DNNL_TRY(blocked_copy_create(&pl->yb, &yd, &yp, &end));
    ok = true;
fail:
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    return ok;
}

static void onednn_destroy(sslc_conv2d_plan *pl)
{
    dnnl_primitive_t prims[] = {pl->fwd,   pl->bwd_data, pl->bwd_weights, pl->w_to_fwd,
                                pl->w_to_bwd, pl->dw_accumulate, pl->xb.in, pl->xb.out,
                                pl->yb.in, pl->yb.out};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i])
            dnnl_primitive_destroy(prims[i]);
    dnnl_memory_t mems[] = {pl->x_mem, pl->y_mem, pl->w_user, pl->w_fwd, pl->w_bwd,
                            pl->dx_mem, pl->dy_mem, pl->dw_prim, pl->dw_user, pl->scratch,
                            pl->xb.mem, pl->yb.mem};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
}

// Runs a convolution primitive with the plan's scratchpad (args has room
// for one more argument at args[nargs]).
static void run_conv(sslc_conv2d_plan *pl, dnnl_primitive_t prim, int nargs,
                     dnnl_exec_arg_t *args, float *workspace)
{
    if (pl->scratch) {
        dnnl_memory_set_data_handle(pl->scratch, workspace);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pl->scratch};
    }
    dnnl_status_t st = dnnl_primitive_execute(prim, stream, nargs, args);
    (void)st; // see run()
    dnnl_stream_wait(stream);
}

static void run(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args)
{
    // Shapes and layouts were validated when the primitive was created;
    // execution on the CPU engine cannot fail for other reasons.
    dnnl_status_t st = dnnl_primitive_execute(prim, stream, nargs, args);
    (void)st;
    dnnl_stream_wait(stream);
}

static void reorder(dnnl_primitive_t prim, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    run(prim, 2, a);
}

// A blocked copy's memory, placed at its offset in the workspace.
static dnnl_memory_t blocked_at(const blocked_copy *b, float *workspace)
{
    dnnl_memory_set_data_handle(b->mem, (char *)workspace + b->offset);
    return b->mem;
}

// user, or its blocked copy when the primitives want one.
static dnnl_memory_t to_blocked(const blocked_copy *b, dnnl_memory_t user, float *workspace)
{
    if (!b->in)
        return user;
    reorder(b->in, user, blocked_at(b, workspace));
    return b->mem;
}
#endif

sslc_status sslc_conv2d_plan_create(sslc_conv2d_plan **out, const sslc_conv2d_desc *d)
{
    *out = NULL;
    if (d->P <= 0 || d->Q <= 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "conv2d: a %lldx%lld kernel with stride %lld, padding %lld does not fit "
                          "a %lldx%lld input",
                          (long long)d->R, (long long)d->S, (long long)d->stride,
                          (long long)d->pad, (long long)d->H, (long long)d->W);
    sslc_conv2d_plan *pl = sslc_calloc(1, sizeof *pl);
    if (!pl)
        return SSLC_ERR_NOMEM;
    pl->d = *d;
#if defined(SSLC_USE_DNNL)
    // oneDNN 2.6's strided 1x1 weight gradient (jit_1x1:avx2, input copied
    // to unit stride) is wrong and writes past its buffer when C is not a
    // multiple of the ISA's channel block: measured on AMD Zen 3 with C = 5,
    // 6. Such layers only occur at odd width multipliers; im2col + GEMM
    // handles them.
    bool onednn_broken = d->R == 1 && d->S == 1 && d->stride > 1 && d->C % 16 != 0;
    if (strcmp(forced_impl(), "gemm") != 0 && !onednn_broken) {
        // The blocked layout where it is wanted and oneDNN has fast kernels
        // for it, else NHWC; im2col + GEMM if neither.
        for (int blocked = blocked_layout(); blocked >= 0; blocked--) {
            pl->onednn = onednn_create(pl, blocked);
            if (pl->onednn) {
                *out = pl;
                return SSLC_OK;
            }
            onednn_destroy(pl);
            memset(pl, 0, sizeof *pl);
            pl->d = *d;
        }
    }
#endif
    pl->direct = d->R == 1 && d->S == 1 && d->stride == 1 && d->pad == 0;
    int64_t per_image = d->P * d->Q * d->R * d->S * d->C;
    // Keep the column matrix of a chunk near 16 MiB: large GEMMs, bounded memory.
    pl->chunk = per_image ? (4 << 20) / per_image : 1;
    if (pl->chunk < 1)
        pl->chunk = 1;
    if (pl->chunk > d->N)
        pl->chunk = d->N;
    size_t nw = (size_t)(d->K * d->C * d->R * d->S);
    pl->wt = sslc_aligned_alloc(nw * sizeof(float));
    pl->dwt = sslc_aligned_alloc(nw * sizeof(float));
    if (!pl->wt || !pl->dwt) {
        sslc_conv2d_plan_destroy(pl);
        return SSLC_ERR_NOMEM;
    }
    *out = pl;
    return SSLC_OK;
}

bool sslc_conv2d_plan_blocked(const sslc_conv2d_plan *pl)
{
#if defined(SSLC_USE_DNNL)
    return pl->xb.in || pl->yb.in;
#else
    (void)pl;
    return false;
#endif
}

void sslc_conv2d_plan_destroy(sslc_conv2d_plan *pl)
{
    if (!pl)
        return;
#if defined(SSLC_USE_DNNL)
    if (pl->onednn)
        onednn_destroy(pl);
#endif
    free(pl->wt);
    free(pl->dwt);
    free(pl);
}

size_t sslc_conv2d_workspace_size(const sslc_conv2d_plan *pl)
{
#if defined(SSLC_USE_DNNL)
    if (pl->onednn) {
        size_t end = pl->yb.bytes ? pl->yb.offset + pl->yb.bytes
                   : pl->xb.bytes ? pl->xb.offset + pl->xb.bytes
                                  : pl->scratch_bytes;
        return (end + sizeof(float) - 1) / sizeof(float);
    }
#endif
    if (pl->direct)
        return 0;
    return (size_t)(pl->chunk * pl->d.P * pl->d.Q * pl->d.R * pl->d.S * pl->d.C);
}

void sslc_conv2d_prepare(sslc_conv2d_plan *pl, const float *w, float *workspace)
{
    (void)workspace;
    const sslc_conv2d_desc *d = &pl->d;
#if defined(SSLC_USE_DNNL)
    if (pl->onednn) {
        dnnl_memory_set_data_handle(pl->w_user, (void *)w);
        reorder(pl->w_to_fwd, pl->w_user, pl->w_fwd);
        reorder(pl->w_to_bwd, pl->w_user, pl->w_bwd);
        return;
    }
#endif
    // OIHW -> (K, R, S, C), the column order of im2col.
    for (int64_t k = 0; k < d->K; k++)
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t r = 0; r < d->R; r++)
                for (int64_t s = 0; s < d->S; s++)
                    pl->wt[((k * d->R + r) * d->S + s) * d->C + c] =
                        w[((k * d->C + c) * d->R + r) * d->S + s];
}

void sslc_conv2d_forward(sslc_conv2d_plan *pl, float *y, const float *x, float *workspace)
{
    const sslc_conv2d_desc *d = &pl->d;
#if defined(SSLC_USE_DNNL)
    if (pl->onednn) {
        dnnl_memory_set_data_handle(pl->x_mem, (void *)x);
        dnnl_memory_set_data_handle(pl->y_mem, y);
        dnnl_memory_t src = to_blocked(&pl->xb, pl->x_mem, workspace);
        dnnl_memory_t dst = pl->yb.out ? blocked_at(&pl->yb, workspace) : pl->y_mem;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src},
                                {DNNL_ARG_WEIGHTS, pl->w_fwd},
                                {DNNL_ARG_DST, dst}};
        run_conv(pl, pl->fwd, 3, a, workspace);
        if (pl->yb.out)
            reorder(pl->yb.out, dst, pl->y_mem);
        return;
    }
#endif
    const int64_t RSC = d->R * d->S * d->C, PQ = d->P * d->Q;
    if (pl->direct) {
        sslc_sgemm(false, true, d->N * PQ, d->K, RSC, 1.0f, x, RSC, pl->wt, RSC, 0.0f, y, d->K);
        return;
    }
    for (int64_t n0 = 0; n0 < d->N; n0 += pl->chunk) {
        int64_t nn = d->N - n0 < pl->chunk ? d->N - n0 : pl->chunk;
        im2col(workspace, x, d, n0, nn);
        sslc_sgemm(false, true, nn * PQ, d->K, RSC, 1.0f, workspace, RSC, pl->wt, RSC, 0.0f,
                   y + n0 * PQ * d->K, d->K);
    }
}

void sslc_conv2d_backward(sslc_conv2d_plan *pl, float *dx, float *dw, const float *dy,
                          const float *x, float *workspace)
{
    const sslc_conv2d_desc *d = &pl->d;
#if defined(SSLC_USE_DNNL)
    if (pl->onednn) {
        dnnl_memory_set_data_handle(pl->dy_mem, (void *)dy);
        dnnl_memory_t ddst = to_blocked(&pl->yb, pl->dy_mem, workspace);
        if (dw) {
            dnnl_memory_set_data_handle(pl->x_mem, (void *)x);
            dnnl_memory_t src = to_blocked(&pl->xb, pl->x_mem, workspace);
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src},
                                    {DNNL_ARG_DIFF_DST, ddst},
                                    {DNNL_ARG_DIFF_WEIGHTS, pl->dw_prim}};
            run_conv(pl, pl->bwd_weights, 3, a, workspace);
            dnnl_memory_set_data_handle(pl->dw_user, dw);
            reorder(pl->dw_accumulate, pl->dw_prim, pl->dw_user);
        }
        if (dx) {
            dnnl_memory_set_data_handle(pl->dx_mem, dx);
            dnnl_memory_t dsrc = pl->xb.out ? blocked_at(&pl->xb, workspace) : pl->dx_mem;
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_SRC, dsrc},
                                    {DNNL_ARG_WEIGHTS, pl->w_bwd},
                                    {DNNL_ARG_DIFF_DST, ddst}};
            run_conv(pl, pl->bwd_data, 3, a, workspace);
            if (pl->xb.out)
                reorder(pl->xb.out, dsrc, pl->dx_mem);
        }
        return;
    }
#endif
    const int64_t RSC = d->R * d->S * d->C, PQ = d->P * d->Q;
    if (pl->direct) {
        if (dw) {
            sslc_sgemm(true, false, d->K, RSC, d->N * PQ, 1.0f, dy, d->K, x, RSC, 0.0f, pl->dwt,
                       RSC);
        }
        if (dx)
            sslc_sgemm(false, false, d->N * PQ, RSC, d->K, 1.0f, dy, d->K, pl->wt, RSC, 0.0f, dx,
                       RSC);
    } else {
        if (dx)
            memset(dx, 0, (size_t)(d->N * d->H * d->W * d->C) * sizeof(float));
        for (int64_t n0 = 0; n0 < d->N; n0 += pl->chunk) {
            int64_t nn = d->N - n0 < pl->chunk ? d->N - n0 : pl->chunk;
            const float *dyc = dy + n0 * PQ * d->K;
            if (dw) {
                im2col(workspace, x, d, n0, nn);
                sslc_sgemm(true, false, d->K, RSC, nn * PQ, 1.0f, dyc, d->K, workspace, RSC,
                           n0 == 0 ? 0.0f : 1.0f, pl->dwt, RSC);
            }
            if (dx) {
                sslc_sgemm(false, false, nn * PQ, RSC, d->K, 1.0f, dyc, d->K, pl->wt, RSC, 0.0f,
                           workspace, RSC);
                col2im(dx, workspace, d, n0, nn);
            }
        }
    }
    if (dw) // (K, R, S, C) -> OIHW, accumulated
        for (int64_t k = 0; k < d->K; k++)
            for (int64_t c = 0; c < d->C; c++)
                for (int64_t r = 0; r < d->R; r++)
                    for (int64_t s = 0; s < d->S; s++)
                        dw[((k * d->C + c) * d->R + r) * d->S + s] +=
                            pl->dwt[((k * d->R + r) * d->S + s) * d->C + c];
}
