#include "src/eval/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void sslc_metrics_free(sslc_metrics *m)
{
    if (!m)
        return;
    free(m->per_class);
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

sslc_status sslc_metrics_compute(sslc_metrics *m, const float *scores, const int64_t *labels,
                                 int64_t n, int64_t classes)
{
    memset(m, 0, sizeof *m);
    if (n <= 0 || classes <= 0)
        return sslc_error(SSLC_ERR_INVALID, "metrics: no images (%lld) or classes (%lld)",
                          (long long)n, (long long)classes);
    m->n = n;
    m->classes = classes;
    m->per_class = sslc_calloc((size_t)classes, sizeof(double));
    m->confusion = sslc_calloc((size_t)(classes * classes), sizeof(int64_t));
    int64_t *count = sslc_calloc((size_t)classes, sizeof(int64_t));
    if (!m->per_class || !m->confusion || !count) {
        free(count);
        sslc_metrics_free(m);
        return SSLC_ERR_NOMEM;
    }
    int64_t k = classes < 5 ? classes : 5, top1 = 0, topk = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t y = labels[i];
        if (y < 0 || y >= classes) {
            free(count);
            sslc_metrics_free(m);
            return sslc_error(SSLC_ERR_INVALID, "metrics: label %lld of image %lld outside [0, %lld)",
                              (long long)y, (long long)i, (long long)classes);
        }
        const float *s = scores + i * classes;
        int64_t arg = 0, above = 0; // classes ranked before y (ties: lower class first)
        for (int64_t c = 0; c < classes; c++) {
            if (s[c] > s[arg])
                arg = c;
            if (s[c] > s[y] || (s[c] == s[y] && c < y))
                above++;
        }
        top1 += arg == y;
        topk += above < k;
        count[y]++;
        m->confusion[y * classes + arg]++;
    }
    for (int64_t c = 0; c < classes; c++)
        m->per_class[c] = count[c] ? (double)m->confusion[c * classes + c] / (double)count[c] : NAN;
    m->top1 = (double)top1 / (double)n;
    m->top5 = (double)topk / (double)n;
    free(count);
    return SSLC_OK;
}

void sslc_metrics_print(FILE *out, const sslc_metrics *m, const char *const *class_names)
{
    fprintf(out, "top-1 %.2f%%  top-%d %.2f%%  (%lld images)\n", 100.0 * m->top1,
            m->classes < 5 ? (int)m->classes : 5, 100.0 * m->top5, (long long)m->n);
    fprintf(out, "per-class accuracy:\n");
    for (int64_t c = 0; c < m->classes; c++) {
        if (class_names && class_names[c])
            fprintf(out, "  %3lld %-14s %6.2f%%\n", (long long)c, class_names[c],
                    100.0 * m->per_class[c]);
        else
            fprintf(out, "  %3lld %6.2f%%\n", (long long)c, 100.0 * m->per_class[c]);
    }
    fprintf(out, "confusion matrix (row: true class, column: predicted):\n     ");
    for (int64_t c = 0; c < m->classes; c++)
        fprintf(out, " %5lld", (long long)c);
    fputc('\n', out);
    for (int64_t r = 0; r < m->classes; r++) {
        fprintf(out, "  %3lld", (long long)r);
        for (int64_t c = 0; c < m->classes; c++)
            fprintf(out, " %5lld", (long long)m->confusion[r * m->classes + c]);
        fputc('\n', out);
    }
}

sslc_status sslc_metrics_write_confusion(const sslc_metrics *m, const char *const *class_names,
                                         const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    for (int64_t c = 0; c < m->classes; c++) {
        // Names go in quotes with inner quotes doubled (RFC 4180).
        fputc('"', f);
        if (class_names && class_names[c])
            for (const char *p = class_names[c]; *p; p++) {
                if (*p == '"')
                    fputc('"', f);
                fputc(*p, f);
            }
        else
            fprintf(f, "%lld", (long long)c);
        fprintf(f, "\"%s", c + 1 < m->classes ? "," : "\n");
    }
    for (int64_t r = 0; r < m->classes; r++)
        for (int64_t c = 0; c < m->classes; c++)
            fprintf(f, "%lld%s", (long long)m->confusion[r * m->classes + c],
                    c + 1 < m->classes ? "," : "\n");
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s'", path);
    return SSLC_OK;
}
