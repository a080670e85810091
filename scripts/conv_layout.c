// oneDNN's convolution primitives on ResNet-18 (CIFAR stem) shapes with the
// activations in NHWC (what sslc and PyTorch's channels_last use) against
// oneDNN's blocked layout for this ISA (nChw8c on AVX2, nChw16c on
// AVX-512): GFLOP/s of forward (training), backward-data and
// backward-weights, best of 3 after one untimed run. Weights in the layout
// each primitive prefers. A measurement for docs/benchmarks.md, not part of
// sslc:
//
//   gcc -std=c11 -O2 -o /tmp/conv_layout scripts/conv_layout.c -ldnnl
//   OMP_NUM_THREADS=2 flock /tmp/sslc-cpu.lock /tmp/conv_layout [8|16]
#define _POSIX_C_SOURCE 200809L
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(x)                                                                                  \
    do {                                                                                          \
        dnnl_status_t s_ = (x);                                                                   \
        if (s_ != dnnl_success) {                                                                 \
            fprintf(stderr, "conv_layout: %s failed (%d)\n", #x, (int)s_);                        \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static dnnl_memory_t filled(const dnnl_memory_desc_t *d)
{
    dnnl_memory_t m;
    void *p;
    CHECK(dnnl_memory_create(&m, d, engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_get_data_handle(m, &p));
    size_t n = dnnl_memory_desc_get_size(d) / sizeof(float);
    for (size_t i = 0; i < n; i++)
        ((float *)p)[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    return m;
}

static double best_seconds(const dnnl_primitive_desc_t pd, int nargs, dnnl_exec_arg_t *args)
{
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t = now();
        CHECK(dnnl_primitive_execute(p, stream, nargs, args));
        CHECK(dnnl_stream_wait(stream));
        t = now() - t;
        if (r > 0 && t < best)
            best = t;
    }
    dnnl_primitive_destroy(p);
    return best;
}

static void measure(int N, int C, int K, int H, int stride, dnnl_format_tag_t act, const char *name)
{
    const int P = (H + 2 - 3) / stride + 1;
    dnnl_dims_t src_dims = {N, C, H, H}, wei_dims = {K, C, 3, 3}, dst_dims = {N, K, P, P};
    dnnl_dims_t strides = {stride, stride}, pad = {1, 1};
    dnnl_memory_desc_t src, dst, any;
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, src_dims, dnnl_f32, act));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims, dnnl_f32, act));
    CHECK(dnnl_memory_desc_init_by_tag(&any, 4, wei_dims, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t fpd, dpd, wpd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                             &src, &any, NULL, &dst, strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL));
    CHECK(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src, &any, &dst,
                                                   strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&dpd, &dd, NULL, engine, fpd));
    CHECK(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &src, &any,
                                                      NULL, &dst, strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&wpd, &wd, NULL, engine, fpd));
    dnnl_memory_t x = filled(&src), y = filled(&dst);
    dnnl_memory_t w_fwd = filled(dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0));
    dnnl_memory_t w_bwd = filled(dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0));
    dnnl_memory_t dw = filled(dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0));
    dnnl_exec_arg_t fa[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w_fwd}, {DNNL_ARG_DST, y}};
    dnnl_exec_arg_t da[] = {{DNNL_ARG_DIFF_SRC, x}, {DNNL_ARG_WEIGHTS, w_bwd}, {DNNL_ARG_DIFF_DST, y}};
    dnnl_exec_arg_t wa[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_DST, y}};
    const char *impl[3];
    CHECK(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl[0]));
    CHECK(dnnl_primitive_desc_query(dpd, dnnl_query_impl_info_str, 0, &impl[1]));
    CHECK(dnnl_primitive_desc_query(wpd, dnnl_query_impl_info_str, 0, &impl[2]));
    const double gflop = 2e-9 * N * K * P * P * C * 9;
    double tf = best_seconds(fpd, 3, fa), td = best_seconds(dpd, 3, da), tw = best_seconds(wpd, 3, wa);
    printf("%-8s N %3d  %3d -> %3d  %2dx%-2d stride %d: forward %6.1f  backward-data %6.1f  "
           "backward-weights %6.1f GFLOP/s  (%s, %s, %s)\n",
           name, N, C, K, H, H, stride, gflop / tf, gflop / td, gflop / tw, impl[0], impl[1], impl[2]);
    dnnl_memory_destroy(x), dnnl_memory_destroy(y), dnnl_memory_destroy(w_fwd);
    dnnl_memory_destroy(w_bwd), dnnl_memory_destroy(dw);
    dnnl_primitive_desc_destroy(fpd), dnnl_primitive_desc_destroy(dpd), dnnl_primitive_desc_destroy(wpd);
}

int main(int argc, char **argv)
{
    const int block = argc > 1 ? atoi(argv[1]) : 8;
    const dnnl_format_tag_t blocked = block == 16 ? dnnl_aBcd16b : dnnl_aBcd8b;
    const char *blocked_name = block == 16 ? "nChw16c" : "nChw8c";
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    // The 3x3 convolutions of ResNet-18 (CIFAR stem) at the query batch of
    // MoCo (256) and a shuffle-BN key group (32).
    const int shapes[][5] = {{256, 64, 64, 32, 1},   {256, 128, 128, 16, 1}, {256, 256, 256, 8, 1},
                             {256, 512, 512, 4, 1},  {256, 64, 128, 32, 2},  {32, 64, 64, 32, 1},
                             {32, 256, 256, 8, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        measure(s[0], s[1], s[2], s[3], s[4], dnnl_acdb, "NHWC");
        measure(s[0], s[1], s[2], s[3], s[4], blocked, blocked_name);
        fflush(stdout);
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
