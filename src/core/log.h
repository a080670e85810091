// Logging to stderr. Library code logs warnings (a skipped image, say);
// progress bars and results belong to src/ (the CLI), not here.
#ifndef SSLC_CORE_LOG_H
#define SSLC_CORE_LOG_H

#include "src/core/status.h"

typedef enum sslc_log_level {
    SSLC_LOG_QUIET = 0,
    SSLC_LOG_WARN = 1,
    SSLC_LOG_INFO = 2,
    SSLC_LOG_DEBUG = 3,
} sslc_log_level;

void sslc_log_set_level(sslc_log_level level);
sslc_log_level sslc_log_get_level(void);

// One line, prefixed "sslc: warning: " / "sslc: "; thread-safe (one write).
void sslc_warn(const char *fmt, ...) SSLC_PRINTF(1, 2);
void sslc_info(const char *fmt, ...) SSLC_PRINTF(1, 2);
void sslc_debug(const char *fmt, ...) SSLC_PRINTF(1, 2);

// Seconds on a monotonic clock.
double sslc_now(void);

#endif
