// Progress output for long work: a live bar redrawn in place on a terminal,
// one plain line every `every` updates otherwise (logs, CI, pipes).
#ifndef SSLC_CORE_PROGRESS_H
#define SSLC_CORE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sslc_progress {
    FILE *out;
    bool tty;
    int64_t every; // plain mode: print when done passes a multiple of this
    int64_t total; // updates in all (0: unknown)
    double start;  // sslc_now() at init
    int64_t done_at_start;
    bool dirty;   // a bar is on screen without its newline
    int64_t last; // done at the previous update
    const char *label; // plain lines start "<label> done/total" ("step" unless set after init)
} sslc_progress;

// out: usually stderr; total: expected updates; done: already done (resume).
void sslc_progress_init(sslc_progress *p, FILE *out, int64_t every, int64_t total, int64_t done);
// done: updates so far; text: what to show after the counter ("loss 5.1 ...").
void sslc_progress_update(sslc_progress *p, int64_t done, const char *text);
// Ends a bar line so that ordinary output can follow.
void sslc_progress_break(sslc_progress *p);
// "1:02:03" or "2:03" into buf.
const char *sslc_format_seconds(char *buf, size_t cap, double seconds);

#endif
