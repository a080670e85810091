// Status codes and the thread-local error message.
//
// Every fallible function returns an sslc_status. The function that detects
// a problem records one message saying what, where and why with sslc_error(),
// and returns the status it gave; callers pass the status up unchanged (or
// add context with sslc_error_prefix). Only main() turns it into an exit code.
#ifndef SSLC_CORE_STATUS_H
#define SSLC_CORE_STATUS_H

#include <stddef.h>

typedef enum sslc_status {
    SSLC_OK = 0,
    SSLC_ERR_NOMEM = -1,       // an allocation failed
    SSLC_ERR_IO = -2,          // a file could not be opened, read or written
    SSLC_ERR_FORMAT = -3,      // a file's contents are not what they should be
    SSLC_ERR_INVALID = -4,     // an argument or configuration is impossible
    SSLC_ERR_UNSUPPORTED = -5, // valid, but not implemented here
    SSLC_ERR_INTERRUPTED = -6, // stopped by a signal; state is consistent
    SSLC_ERR_INTERNAL = -7,    // a library (oneDNN, HDF5) failed unexpectedly
} sslc_status;

#if defined(__GNUC__)
#define SSLC_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define SSLC_PRINTF(fmt_index, args_index)
#endif

// Records "msg" as this thread's error message and returns status.
sslc_status sslc_error(sslc_status status, const char *fmt, ...) SSLC_PRINTF(2, 3);

// Prepends "prefix: " to the current message (e.g. the file being loaded).
sslc_status sslc_error_prefix(sslc_status status, const char *fmt, ...) SSLC_PRINTF(2, 3);

// This thread's last message ("" when none).
const char *sslc_error_message(void);
void sslc_error_clear(void);

// "out of memory", "I/O error", ...
const char *sslc_status_string(sslc_status status);

// Allocation helpers that record SSLC_ERR_NOMEM with the size on failure.
void *sslc_malloc(size_t bytes);
void *sslc_calloc(size_t count, size_t size);
// 64-byte aligned, for float buffers handed to SIMD kernels; free with free().
void *sslc_aligned_alloc(size_t bytes);


#endif
