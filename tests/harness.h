// Shared test plumbing: cmocka groups selectable by name from the command
// line (meson registers each group as its own test in a suite), fixture
// paths, array comparison that reports the largest difference and where,
// random tensors, running the sslc binary, and skips that say why.
#ifndef SSLC_TESTS_HARNESS_H
#define SSLC_TESTS_HARNESS_H

#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "src/core/status.h"

typedef struct sslc_test_group {
    const char *name; // "unit", "gradcheck", "fixture", "e2e", "slow"
    const struct CMUnitTest *tests;
    size_t count;
} sslc_test_group;

#define SSLC_GROUP(name, array) {name, array, sizeof(array) / sizeof((array)[0])}

// Runs the group named by argv[1], or every group when none is named.
int sslc_test_main(int argc, char **argv, const sslc_test_group *groups, size_t count);

// Absolute path of a committed fixture file (tests/fixtures/<name>).
const char *sslc_fixture_path(const char *name);
// A fresh empty directory under the build tree for this test's files.
const char *sslc_test_tmpdir(const char *tag);

// Fails the test when any |a-b| > atol + rtol*|b|; prints the largest
// difference, its index, and both values. Returns the max abs difference.
double sslc_assert_close(const char *what, const float *a, const float *b, size_t n, double atol,
                         double rtol);

// Loads a float32 dataset from an HDF5 fixture file into a new buffer; fails
// the test if it is missing. count receives its number of elements.
float *sslc_fixture_floats(const char *file, const char *dataset, size_t *count);
// Reads an integer-array attribute of an object (group or dataset) into out;
// fails the test unless it has exactly n elements.
void sslc_fixture_attr_ints(const char *file, const char *object, const char *attr, int64_t *out,
                            size_t n);
// Reads an integer attribute (or scalar dataset) as double.
double sslc_fixture_scalar(const char *file, const char *dataset);
// A numeric scalar attribute of an object, as double.
double sslc_fixture_attr_double(const char *file, const char *object, const char *attr);
// A string attribute of an object, in a new malloc'd buffer.
char *sslc_fixture_attr_string(const char *file, const char *object, const char *attr);

// x: (n,) filled with scale * N(0, 1) drawn from the stream keyed by seed:
// the same numbers on every machine and thread count.
void sslc_test_fill_randn(float *x, size_t n, uint64_t seed, double scale);
// A new malloc'd buffer of n such numbers (the test fails when out of memory).
float *sslc_test_randn(size_t n, uint64_t seed, double scale);

// Runs cmd through the shell with stdout and stderr redirected to the file
// log, then reads the log into out (at most cap - 1 bytes, NUL-terminated).
// Returns the exit status, or -1 when the command did not exit (a signal).
int sslc_test_run_cmd(const char *cmd, const char *log, char *out, size_t cap);

// Skips the current test, first printing "SKIP-REASON: <reason>" on stdout:
// scripts/count_tests.py counts a skip as explained only with that line, and
// in CI (the environment variable CI set) an unexplained skip is a failure.
#define sslc_test_skip(...)                                                                     \
    do {                                                                                        \
        sslc_test_skip_reason(__VA_ARGS__);                                                     \
        skip();                                                                                 \
    } while (0)
void sslc_test_skip_reason(const char *fmt, ...) SSLC_PRINTF(1, 2);

// The Python that can import torch, torchvision and h5py (Debian's
// /usr/bin/python3, or $SSLC_PYTHON, e.g. to check the skip), or NULL with
// why (cap bytes) saying what is missing, for a skip reason.
const char *sslc_test_torch_python(char *why, size_t cap);

// Writes x, (dims[0], ..., dims[ndim-1]) float32, as dataset name of the
// open HDF5 file, for reference data handed to a script.
void sslc_test_write_floats(hid_t file, const char *name, int ndim, const hsize_t *dims,
                            const float *x);

#endif
