// Helpers shared by the data/ test executables (test_input.c, test_scan.c).
#ifndef SSLC_TESTS_DATA_HELPERS_H
#define SSLC_TESTS_DATA_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

// A fresh temporary folder for this test (malloc'd path).
char *td_tmpdir(const char *tag);
void td_write_bytes(const char *path, const void *data, size_t n);
uint8_t *td_read_file(const char *path, size_t *n);
// Copies tests/fixtures/<name> to to, only its first keep bytes when keep > 0.
void td_copy_fixture(const char *name, const char *to, size_t keep);
// An (h, w, c) PNG of a pattern that depends on seed.
void td_write_png(const char *path, int64_t h, int64_t w, int64_t c, int seed);
// A PNG whose header is intact but whose pixel data is cut: passes the
// header scan, fails a decode.
void td_write_cut_png(const char *path);
// out = dir + "/" + name; fails the test when it does not fit.
void td_join(char *out, size_t cap, const char *dir, const char *name);
// dir/name -> target
void td_make_link(const char *dir, const char *name, const char *target);

// Captures what is written to stderr (sslc_warn) between begin and end.
typedef struct td_capture {
    int saved;
    char path[4200];
} td_capture;

void td_capture_begin(td_capture *c, const char *dir);
// What was written since td_capture_begin (a static buffer).
char *td_capture_end(td_capture *c);
int td_count_lines_with(const char *text, const char *what);
// Whether some image of ds has a name ending with suffix.
bool td_dataset_has_name(const sslc_dataset *ds, const char *suffix);

#endif
