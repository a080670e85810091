// Throughput of the augmentation pipeline, for scripts/bench_augment.py
// (a benchmark, not a test). Prints one line of key=value pairs:
//   views_per_s (median over timed batches), batch_ms, peak_rss_mb, ...
// Usage: sslc_bench_augment SPEC RECIPE SIZE BATCH THREADS WARMUP TIMED [cache|scaled|async]...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/pipeline.h"
#include "src/core/log.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s SPEC RECIPE SIZE BATCH THREADS WARMUP TIMED [cache=PATH] "
                        "[scaled] [async]\n",
                argv[0]);
        return 2;
    }
    const char *spec = argv[1], *recipe = argv[2];
    int64_t size = atoll(argv[3]), B = atoll(argv[4]);
    int threads = atoi(argv[5]);
    int warmup = atoi(argv[6]), timed = atoi(argv[7]);
    bool scaled = false, async = false;
    sslc_dataset_options dopt;
    sslc_dataset_options_default(&dopt);
    for (int i = 8; i < argc; i++) {
        if (!strncmp(argv[i], "cache=", 6))
            dopt.cache_path = argv[i] + 6;
        else if (!strcmp(argv[i], "scaled"))
            scaled = true;
        else if (!strcmp(argv[i], "async"))
            async = true;
    }
    sslc_log_set_level(SSLC_LOG_WARN);
    sslc_dataset *ds;
    sslc_status st = sslc_dataset_open(&ds, spec, &dopt);
    if (st != SSLC_OK) {
        fprintf(stderr, "%s\n", sslc_error_message());
        return 1;
    }
    sslc_recipe r;
    st = sslc_recipe_defaults(&r, recipe, size, sslc_dataset_channels(ds));
    if (st != SSLC_OK) {
        fprintf(stderr, "%s\n", sslc_error_message());
        return 1;
    }
    r.scaled_decode = scaled;
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = B;
    cfg.threads = threads;
    cfg.async = async;
    cfg.seed = 1;
    sslc_pipeline *p;
    st = sslc_pipeline_create(&p, ds, &r, &cfg);
    if (st != SSLC_OK) {
        fprintf(stderr, "%s\n", sslc_error_message());
        return 1;
    }
    double *t = malloc((size_t)timed * sizeof(double));
    int64_t epoch = 0, done = 0;
    sslc_pipeline_begin_epoch(p, epoch, 0);
    double first_epoch_s = -1, t_epoch = sslc_now();
    while (done < warmup + timed) {
        const sslc_batch *b;
        double t0 = sslc_now();
        st = sslc_pipeline_next(p, &b);
        if (st != SSLC_OK) {
            fprintf(stderr, "%s\n", sslc_error_message());
            return 1;
        }
        if (!b) {
            if (first_epoch_s < 0)
                first_epoch_s = sslc_now() - t_epoch;
            sslc_pipeline_begin_epoch(p, ++epoch, 0);
            continue;
        }
        double dt = sslc_now() - t0;
        if (done >= warmup)
            t[done - warmup] = dt;
        done++;
    }
    qsort(t, (size_t)timed, sizeof(double), cmp_double);
    double med = t[timed / 2];
    // VmHWM, not getrusage: ru_maxrss of a process started from a large
    // parent (python) includes the parent's pages from before exec.
    double hwm_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            hwm_kb = atof(line + 6);
    if (f)
        fclose(f);
    printf("views_per_s=%.1f batch_ms=%.3f views_per_batch=%lld peak_rss_mb=%.1f "
           "ring_mb=%.1f skipped=%lld epochs_started=%lld\n",
           (double)(2 * B) / med, med * 1e3, (long long)(2 * B), hwm_kb / 1024.0,
           (double)sslc_pipeline_buffer_bytes(p) / 1e6, (long long)sslc_pipeline_skipped(p),
           (long long)(epoch + 1));
    free(t);
    sslc_pipeline_destroy(p);
    sslc_dataset_destroy(ds);
    return 0;
}
