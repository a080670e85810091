#include "src/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static sslc_log_level current_level = SSLC_LOG_INFO;

void sslc_log_set_level(sslc_log_level level) { current_level = level; }
sslc_log_level sslc_log_get_level(void) { return current_level; }

static void emit(sslc_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    // Format into one buffer and write it at once, so lines from
    // augmentation workers never interleave.
    char line[2048];
    int n = snprintf(line, sizeof line, "%s", prefix);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t written = write(STDERR_FILENO, line, len);
    (void)written;
}

void sslc_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(SSLC_LOG_WARN, "sslc: warning: ", fmt, ap);
    va_end(ap);
}

void sslc_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(SSLC_LOG_INFO, "sslc: ", fmt, ap);
    va_end(ap);
}

void sslc_debug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(SSLC_LOG_DEBUG, "sslc: debug: ", fmt, ap);
    va_end(ap);
}

double sslc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
