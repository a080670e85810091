#include "src/core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

enum { MESSAGE_CAP = 1024 };
static _Thread_local char message[MESSAGE_CAP];

sslc_status sslc_error(sslc_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return status;
}

sslc_status sslc_error_prefix(sslc_status status, const char *fmt, ...)
{
    char old[MESSAGE_CAP];
    memcpy(old, message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used + 3 < sizeof message) {
        message[used++] = ':';
        message[used++] = ' ';
        size_t rest = strnlen(old, sizeof old - 1);
        if (rest > sizeof message - 1 - used)
            rest = sizeof message - 1 - used;
        memcpy(message + used, old, rest);
        message[used + rest] = '\0';
    }
    return status;
}

const char *sslc_error_message(void) { return message; }

void sslc_error_clear(void) { message[0] = '\0'; }

const char *sslc_status_string(sslc_status status)
{
    switch (status) {
    case SSLC_OK: return "ok";
    case SSLC_ERR_NOMEM: return "out of memory";
    case SSLC_ERR_IO: return "I/O error";
    case SSLC_ERR_FORMAT: return "bad format";
    case SSLC_ERR_INVALID: return "invalid argument";
    case SSLC_ERR_UNSUPPORTED: return "unsupported";
    case SSLC_ERR_INTERRUPTED: return "interrupted";
    case SSLC_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void *sslc_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        sslc_error(SSLC_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *sslc_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        sslc_error(SSLC_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *sslc_aligned_alloc(size_t bytes)
{
    // Large buffers (activations, mostly) start on a 2 MiB boundary and ask
    // for transparent huge pages: fewer TLB misses and page faults in the
    // passes over them. Where the kernel says no, they are plain pages.
    enum { HUGE_PAGE = 2 << 20 };
    size_t align = bytes >= 2 * HUGE_PAGE ? HUGE_PAGE : 64;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : 64);
    if (!p)
        sslc_error(SSLC_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    else if (align == HUGE_PAGE)
        madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}
