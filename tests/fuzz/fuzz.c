#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "src/core/status.h"

void fuzz_trace(const char *what, int status, const char *fmt, ...)
{
    static int on = -1;
    if (on < 0)
        on = getenv("SSLC_FUZZ_TRACE") != NULL;
    if (!on)
        return;
    fprintf(stderr, "fuzz: %s: status %d: %s", what, status,
            status ? sslc_error_message() : "ok");
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(", ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

uint8_t fuzz_u8(fuzz_input *in)
{
    if (in->size == 0)
        return 0;
    uint8_t v = in->data[0];
    in->data++;
    in->size--;
    return v;
}

uint16_t fuzz_u16(fuzz_input *in)
{
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

uint64_t fuzz_touch(const uint8_t *p, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return sum;
}

const char *fuzz_scratch_path(int slot, const char *tag)
{
    static char paths[4][512];
    const char *dir = "/dev/shm";
    if (access(dir, W_OK) != 0) {
        dir = getenv("TMPDIR");
        if (!dir || !*dir)
            dir = "/tmp";
    }
    // No commas: the IDX spec "idx:IMAGES,LABELS" splits on them.
    snprintf(paths[slot & 3], sizeof paths[0], "%s/sslc-fuzz-%ld-%s", dir, (long)getpid(), tag);
    return paths[slot & 3];
}

void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write scratch file '%s': %s\n", path, strerror(errno));
        abort();
    }
}

bool fuzz_read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long n = ok ? ftell(f) : -1;
    ok = n > 0 && fseek(f, 0, SEEK_SET) == 0 && (*data = malloc((size_t)n)) != NULL &&
         fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(*data);
        *data = NULL;
        return false;
    }
    *size = (size_t)n;
    return true;
}
