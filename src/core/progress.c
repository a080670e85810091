#include "src/core/progress.h"

#include <unistd.h>

#include "src/core/log.h"

void sslc_progress_init(sslc_progress *p, FILE *out, int64_t every, int64_t total, int64_t done)
{
    p->out = out;
    p->tty = isatty(fileno(out)) != 0;
    p->every = every > 0 ? every : 1;
    p->total = total;
    p->start = sslc_now();
    p->done_at_start = done;
    p->dirty = false;
    p->last = done;
    p->label = "step";
}

const char *sslc_format_seconds(char *buf, size_t cap, double seconds)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

void sslc_progress_update(sslc_progress *p, int64_t done, const char *text)
{
    double elapsed = sslc_now() - p->start;
    int64_t since = done - p->done_at_start;
    char eta[32] = "?";
    if (p->total > 0 && since > 0)
        sslc_format_seconds(eta, sizeof eta, elapsed / (double)since * (double)(p->total - done));
    if (p->tty) {
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        int filled = p->total > 0 ? (int)(WIDTH * done / p->total) : 0;
        for (int i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
        bar[WIDTH] = '\0';
        fprintf(p->out, "\r[%s] %lld/%lld %s ETA %s\033[K", bar, (long long)done,
                (long long)p->total, text, eta);
        p->dirty = true;
    } else if (done / p->every != p->last / p->every || done == p->total) {
        fprintf(p->out, "%s %lld/%lld %s ETA %s\n", p->label, (long long)done, (long long)p->total,
                text, eta);
    }
    p->last = done;
    fflush(p->out);
}

void sslc_progress_break(sslc_progress *p)
{
    if (p->dirty) {
        fputc('\n', p->out);
        p->dirty = false;
    }
}
