// Time of one optimizer step over ResNet-18's parameter table (11.2 M
// parameters, CIFAR stem, width 64), median of 15 after 3 warm-up steps.
// Not a test: tests never assert on time.
//   OMP_NUM_THREADS=2 flock /tmp/sslc-cpu.lock build/tests/optim/bench_optim
#include <stdio.h>
#include <stdlib.h>

#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/models/resnet.h"
#include "src/optim/optimizer.h"

enum { WARMUP = 3, REPS = 15 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    sslc_resnet net;
    sslc_resnet_config cfg = {.depth = 18, .in_channels = 3, .width = 64, .cifar_stem = true};
    if (sslc_resnet_create(&net, &cfg) != SSLC_OK)
        return 1;
    sslc_resnet_init(&net, 1);
    sslc_rng r = sslc_rng_make(2, 0, 0, 0, 0);
    for (int64_t i = 0; i < net.params.n_values; i++)
        net.params.grads[i] = (float)(1e-3 * sslc_rng_normal(&r));
    printf("resnet18: %lld parameter floats, %lld tensors, %d threads\n",
           (long long)net.params.n_values, (long long)net.params.count, sslc_get_threads());
    const sslc_optim_kind kinds[] = {SSLC_OPTIM_SGD, SSLC_OPTIM_LARS, SSLC_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        sslc_optim_config c = sslc_optim_defaults(kinds[k]);
        sslc_optim *o = NULL;
        if (sslc_optim_create(&o, &c, &net.params) != SSLC_OK)
            return 1;
        double t[REPS];
        for (int i = 0; i < WARMUP + REPS; i++) {
            double t0 = sslc_now();
            if (sslc_optim_step(o, &net.params, 1e-3f) != SSLC_OK)
                return 1;
            if (i >= WARMUP)
                t[i - WARMUP] = sslc_now() - t0;
        }
        qsort(t, REPS, sizeof *t, cmp_double);
        printf("%-5s step: %.2f ms\n", sslc_optim_kind_name(kinds[k]), 1e3 * t[REPS / 2]);
        sslc_optim_destroy(o);
    }
    sslc_resnet_destroy(&net);
    return 0;
}
