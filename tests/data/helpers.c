// Helpers shared by the data/ test executables: files, fixtures, links,
// and capturing stderr.
#include "tests/data/helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/image.h"
#include "tests/harness.h"

char *td_tmpdir(const char *tag)
{
    return strdup(sslc_test_tmpdir(tag));
}

void td_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

uint8_t *td_read_file(const char *path, size_t *n)
{
    uint8_t *b;
    assert_int_equal(sslc_file_read(path, &b, n), SSLC_OK);
    return b;
}

void td_copy_fixture(const char *name, const char *to, size_t keep)
{
    size_t n;
    uint8_t *b = td_read_file(sslc_fixture_path(name), &n);
    td_write_bytes(to, b, keep && keep < n ? keep : n);
    free(b);
}

void td_write_png(const char *path, int64_t h, int64_t w, int64_t c, int seed)
{
    uint8_t *px = malloc((size_t)(h * w * c));
    for (int64_t i = 0; i < h * w * c; i++)
        px[i] = (uint8_t)(i * 7 + seed * 31 + (i / (w * c)) * 3);
    assert_int_equal(sslc_png_write(path, px, h, w, c), SSLC_OK);
    free(px);
}

void td_write_cut_png(const char *path)
{
    td_write_png(path, 16, 16, 3, 5);
    size_t n;
    uint8_t *b = td_read_file(path, &n);
    td_write_bytes(path, b, n - 40);
    free(b);
}

void td_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

void td_make_link(const char *dir, const char *name, const char *target)
{
    char path[4200];
    td_join(path, sizeof path, dir, name);
    assert_int_equal(symlink(target, path), 0);
}

void td_capture_begin(td_capture *c, const char *dir)
{
    td_join(c->path, sizeof c->path, dir, "stderr.txt");
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

char *td_capture_end(td_capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    static char text[1 << 16];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return text;
}

int td_count_lines_with(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

bool td_dataset_has_name(const sslc_dataset *ds, const char *suffix)
{
    char name[4096];
    for (int64_t i = 0; i < sslc_dataset_count(ds); i++) {
        const char *s = sslc_dataset_name(ds, i, name, sizeof name);
        size_t a = strlen(s), b = strlen(suffix);
        if (a >= b && !strcmp(s + a - b, suffix))
            return true;
    }
    return false;
}
