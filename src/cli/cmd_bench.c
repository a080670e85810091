// sslc bench: times the encoder's training step (forward + backward) and its
// eval-mode forward on random images. scripts/bench_encoder.py runs it next
// to PyTorch on the same work and prints the ratio.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/models/resnet.h"
#include "src/nn/layers.h"

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double sslc_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; // Linux reports KiB
}

int sslc_cmd_bench(int argc, char **argv)
{
    static const sslc_command_help help = {
        "bench", "sslc bench [options]",
        "Times the encoder on random images: a training step (forward + backward, batch\n"
        "statistics) and an eval-mode forward, reporting medians, images/s, GFLOP/s\n"
        "and peak memory. Compare with PyTorch: scripts/bench_encoder.py."};
    const char *arch = "resnet18";
    int64_t width = 64, in_channels = 3, size = 32, batch = 512, steps = 5, warmup = 1;
    int64_t threads = 0;
    bool cifar_stem = true, json = false;
    const sslc_arg args[] = {
        {"arch", SSLC_ARG_CHOICE, &arch, "encoder", "resnet18|resnet34|resnet50", 0, 0},
        {"width", SSLC_ARG_INT, &width, "base width (64 = torchvision)", NULL, 1, 1024},
        {"in-channels", SSLC_ARG_INT, &in_channels, "input channels", NULL, 1, 4},
        {"cifar-stem", SSLC_ARG_FLAG, &cifar_stem, "3x3 stride-1 stem, no max pool", NULL, 0, 0},
        {"size", SSLC_ARG_INT, &size, "image height and width", NULL, 8, 4096},
        {"batch", SSLC_ARG_INT, &batch, "images per step", NULL, 1, 1 << 16},
        {"steps", SSLC_ARG_INT, &steps, "timed steps", NULL, 1, 1000},
        {"warmup", SSLC_ARG_INT, &warmup, "untimed steps first", NULL, 0, 100},
        {"threads", SSLC_ARG_INT, &threads, "threads (0: OpenMP default)", NULL, 0, 1024},
        {"json", SSLC_ARG_FLAG, &json, "print one JSON object instead of text", NULL, 0, 0},
    };
    int st = sslc_args_parse(&help, args, sizeof args / sizeof args[0], argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st != SSLC_OK)
        return sslc_cli_fail("bench", st);
    sslc_set_threads((int)threads);

    sslc_resnet_config rc = {.in_channels = in_channels, .width = width, .cifar_stem = cifar_stem};
    sslc_resnet net = {0};
    sslc_resnet_run *run = NULL, *infer = NULL; // training, and eval forward as linear-eval's
    float *x = NULL, *dfeat = NULL;
    double *train_t = calloc((size_t)steps, sizeof(double));
    double *eval_t = calloc((size_t)steps, sizeof(double));
    if ((st = sslc_resnet_parse_arch(&rc, arch)) || (st = sslc_resnet_create(&net, &rc)))
        goto done;
    sslc_resnet_init(&net, 0);
    if ((st = sslc_resnet_run_create(&run, &net, batch, size, size)))
        goto done;
    size_t nx = (size_t)(batch * size * size * in_channels);
    size_t nf = (size_t)(batch * net.feature_dim);
    x = sslc_aligned_alloc(nx * sizeof(float));
    dfeat = sslc_aligned_alloc(nf * sizeof(float));
    if (!x || !dfeat || !train_t || !eval_t) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_rng rng = sslc_rng_make(0, 1, 0, 0, 0);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)sslc_rng_normal(&rng);
    for (size_t i = 0; i < nf; i++)
        dfeat[i] = (float)sslc_rng_normal(&rng) * 1e-3f;
    for (int64_t i = 0; i < warmup + steps; i++) {
        double t0 = sslc_now();
        sslc_params_zero_grad(&net.params);
        sslc_resnet_prepare(run, &net);
        sslc_resnet_forward(run, &net, x, true);
        sslc_resnet_backward(run, &net, dfeat);
        if (i >= warmup)
            train_t[i - warmup] = sslc_now() - t0;
    }
    // The training run goes first, so the peak RSS is the larger of the two.
    double flops = sslc_resnet_run_flops(run, &net);
    size_t train_bytes = sslc_resnet_run_bytes(run);
    sslc_resnet_run_destroy(run);
    run = NULL;
    if ((st = sslc_resnet_inference_run_create(&infer, &net, batch, size, size)))
        goto done;
    sslc_resnet_prepare(infer, &net);
    for (int64_t i = 0; i < warmup + steps; i++) {
        double t0 = sslc_now();
        sslc_resnet_forward(infer, &net, x, false);
        if (i >= warmup)
            eval_t[i - warmup] = sslc_now() - t0;
    }
    double tt = median(train_t, steps), te = median(eval_t, steps);
    if (json)
        printf("{\"arch\": \"%s\", \"width\": %lld, \"batch\": %lld, \"size\": %lld, "
               "\"threads\": %d, \"conv\": \"%s\", \"train_step_s\": %.6f, \"eval_s\": %.6f, "
               "\"train_images_per_s\": %.2f, \"eval_images_per_s\": %.2f, "
               "\"train_gflops\": %.1f, \"eval_gflops\": %.1f, \"peak_rss_mib\": %.0f}\n",
               arch, (long long)width, (long long)batch, (long long)size, sslc_get_threads(),
               sslc_conv2d_impl(), tt, te, batch / tt, batch / te, 3.0 * flops / tt * 1e-9,
               flops / te * 1e-9, sslc_peak_rss_mib());
    else
        printf("%s width %lld, %lldx%lldx%lld, batch %lld, %d threads, conv %s\n"
               "  train step (fwd+bwd): %.3f s median of %lld  %.1f images/s  %.0f GFLOP/s\n"
               "  eval forward:         %.3f s median of %lld  %.1f images/s  %.0f GFLOP/s\n"
               "  peak RSS %.0f MiB (activations: training %.0f MiB, eval %.0f MiB)\n",
               arch, (long long)width, (long long)size, (long long)size, (long long)in_channels,
               (long long)batch, sslc_get_threads(), sslc_conv2d_impl(), tt, (long long)steps,
               batch / tt, 3.0 * flops / tt * 1e-9, te, (long long)steps, batch / te,
               flops / te * 1e-9, sslc_peak_rss_mib(),
               (double)train_bytes / (1 << 20),
               (double)sslc_resnet_run_bytes(infer) / (1 << 20));
done:
    free(x);
    free(dfeat);
    free(train_t);
    free(eval_t);
    sslc_resnet_run_destroy(run);
    sslc_resnet_run_destroy(infer);
    sslc_resnet_destroy(&net);
    return st ? sslc_cli_fail("bench", st) : 0;
}
