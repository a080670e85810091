// Shared by the libFuzzer targets of tests/fuzz (docs/fuzzing.md): the
// check that turns a broken API promise into a finding, reading option bytes
// off the front of an input, and scratch files for readers that take a path.
//
// An image or IDX target's input is a few option bytes followed by the
// file itself, so a seed is "options + a real file" and the fuzzer varies
// both (fuzz_ckpt's is a recipe for a file, see there). Test code, not
// library code: a broken promise aborts, which libFuzzer reports like a
// crash and saves the input.
#ifndef SSLC_TESTS_FUZZ_H
#define SSLC_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// The file name the targets give the decoders; every refusal must name it.
#define FUZZ_NAME "fuzz-input"

// Images over this many pixels are refused by the decoders' own limit check
// (sslc_decode_options.max_pixels), so one input never takes more than a few
// milliseconds; sslc's default limit (89478485) differs only in the number.
enum { FUZZ_MAX_PIXELS = 1 << 22 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Stops the run when cond is false, saying which promise broke.
#define FUZZ_CHECK(cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz: %s:%d: broken promise (%s): ", __FILE__, __LINE__,  \
                    #cond);                                                             \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

// With SSLC_FUZZ_TRACE set in the environment, prints what a call gave
// (reproducing a finding: `SSLC_FUZZ_TRACE=1 fuzz_x crash-...`).
void fuzz_trace(const char *what, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// The input, consumed from the front.
typedef struct fuzz_input {
    const uint8_t *data;
    size_t size;
} fuzz_input;

// The next byte, or 0 when none is left.
uint8_t fuzz_u8(fuzz_input *in);
// The next two bytes, little-endian (0 past the end).
uint16_t fuzz_u16(fuzz_input *in);

// Reads every byte of an image buffer, so ASan checks that all of
// (height, width, channels) was allocated; returns a sum so the reads stay.
uint64_t fuzz_touch(const uint8_t *p, size_t n);

// A path for scratch file `tag` of this process, in /dev/shm when it is
// writable (no disk traffic at thousands of files a second), else in
// $TMPDIR or /tmp. The string is static per tag slot (0..3).
const char *fuzz_scratch_path(int slot, const char *tag);
// Reads a whole file into a new buffer (free with free()); false on failure.
bool fuzz_read_file(const char *path, uint8_t **data, size_t *size);
// Writes bytes to path; aborts when the scratch folder cannot be written
// (a broken set-up, not a finding).
void fuzz_write_file(const char *path, const uint8_t *data, size_t size);

#endif
