// Files that appear whole or not at all: temporary file, fsync, rename,
// folder fsync (atomic_file.h).
#include "src/io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/log.h"

static sslc_ckpt_fault injected_fault = SSLC_CKPT_FAULT_NONE;

void sslc_ckpt_inject_fault(sslc_ckpt_fault fault) { injected_fault = fault; }

sslc_status sslc_atomic_fault(sslc_ckpt_fault stage)
{
    if (injected_fault == stage)
        return sslc_error(SSLC_ERR_IO, "injected fault (testing)");
    return SSLC_OK;
}

char *sslc_atomic_tmp_path(const char *path)
{
    size_t n = strlen(path) + 32;
    char *p = sslc_malloc(n);
    if (p)
        snprintf(p, n, "%s.tmp-%ld", path, (long)getpid());
    return p;
}

// All n bytes, through short writes and signals.
static sslc_status write_fd(int fd, const char *path, const unsigned char *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        off += (size_t)w;
    }
    return SSLC_OK;
}

sslc_status sslc_atomic_write(const char *path, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    sslc_status st = write_fd(fd, path, buf, n);
    if (st == SSLC_OK && fsync(fd) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", path, strerror(errno));
    if (close(fd) != 0 && st == SSLC_OK) // NFS reports write errors here
        st = sslc_error(SSLC_ERR_IO, "cannot close '%s': %s", path, strerror(errno));
    return st;
}

sslc_status sslc_atomic_copy(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sslc_status st = SSLC_OK;
    if (in < 0 || out < 0) {
        st = sslc_error(SSLC_ERR_IO, "cannot copy '%s' to '%s': %s", from, to, strerror(errno));
        goto done;
    }
    unsigned char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = sslc_error(SSLC_ERR_IO, "cannot read '%s': %s", from, strerror(errno));
            break;
        }
        if (n == 0 || (st = write_fd(out, to, buf, (size_t)n)) != SSLC_OK)
            break;
    }
    if (st == SSLC_OK && fsync(out) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", to, strerror(errno));
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return st;
}

sslc_status sslc_atomic_sync(const char *path, bool dir)
{
    int fd = open(path, O_RDONLY | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return sslc_error(SSLC_ERR_IO, "cannot open '%s' to sync it: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", path, strerror(e));
    return SSLC_OK;
}

// The folder holding path: "." for a bare name, "/" for a file at the root.
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dir = !slash ? "." : slash == path ? "/" : path;
    size_t n = slash && slash != path ? (size_t)(slash - path) : strlen(dir);
    char *d = sslc_malloc(n + 1);
    if (d) {
        memcpy(d, dir, n);
        d[n] = '\0';
    }
    return d;
}

sslc_status sslc_atomic_commit(const char *tmp, const char *path)
{
    sslc_status st = sslc_atomic_fault(SSLC_CKPT_FAULT_RENAME);
    if (st != SSLC_OK)
        return st;
    if (rename(tmp, path) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    // The file is in place; a failed folder sync only weakens durability
    // against a power cut, so it warns rather than fails.
    char *dir = parent_dir(path);
    if (dir && sslc_atomic_sync(dir, true) != SSLC_OK)
        sslc_warn("checkpoint %s: %s", path, sslc_error_message());
    free(dir);
    return SSLC_OK;
}
