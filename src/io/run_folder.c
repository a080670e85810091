// Run folders: numbered checkpoints rotated, last.h5 and best.h5 swapped in
// as hard links, temporary files of killed processes cleared; and which file
// a --resume / --ckpt RUN_OR_CKPT names.
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/io/atomic_file.h"
#include "src/io/checkpoint.h"

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sslc_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// Parses "ckpt-<step>.h5"; -1 otherwise.
static int64_t ckpt_step(const char *name)
{
    if (strncmp(name, "ckpt-", 5) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long s = strtoll(name + 5, &end, 10);
    if (errno || end == name + 5 || strcmp(end, ".h5") != 0 || s < 0)
        return -1;
    return (int64_t)s;
}

// "<anything>.tmp-<pid>" files of processes that no longer exist are what a
// kill -9 mid-save leaves behind; they never replaced a good checkpoint.
static void remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp-");
        if (!t)
            continue;
        char *end = NULL;
        long pid = strtol(t + 5, &end, 10);
        if (end == t + 5 || *end || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char *p = join_path(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
    }
    closedir(d);
}

// Points dir/name at target (a file in dir) by swapping in a hard link.
static sslc_status link_atomically(const char *dir, const char *target, const char *name)
{
    char *dst = join_path(dir, name);
    char *tmp = dst ? sslc_atomic_tmp_path(dst) : NULL;
    sslc_status st = SSLC_OK;
    if (!tmp) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    unlink(tmp);
    if (link(target, tmp) != 0)
        st = sslc_atomic_copy(target, tmp);
    if (st == SSLC_OK && rename(tmp, dst) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
    if (st != SSLC_OK)
        unlink(tmp);
done:
    free(tmp);
    free(dst);
    return st;
}

static int compare_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

// Removes dir/ckpt-<s>.h5 beyond the newest keep, never the one just saved.
static void rotate(const char *dir, int64_t keep, int64_t current)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    int64_t *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = ckpt_step(e->d_name);
        if (s < 0 || s == current)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(steps, cap * sizeof *grown);
            if (!grown)
                break;
            steps = grown;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (steps)
        qsort(steps, n, sizeof *steps, compare_desc);
    for (size_t i = (size_t)(keep - 1); i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", steps[i]);
        char *p = join_path(dir, name);
        if (p && unlink(p) != 0 && errno != ENOENT)
            sslc_warn("cannot remove old checkpoint %s: %s", p, strerror(errno));
        free(p);
    }
    free(steps);
}

sslc_status sslc_ckpt_save_run(const char *dir, const sslc_ckpt *c, int64_t keep, bool is_best)
{
    sslc_status st = sslc_make_dir(dir, "run folder");
    if (st)
        return st;
    remove_stale_tmp(dir);
    char name[64];
    snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", c->step);
    char *path = join_path(dir, name);
    if (!path)
        return SSLC_ERR_NOMEM;
    st = sslc_ckpt_save(path, c);
    if (st == SSLC_OK)
        st = link_atomically(dir, path, "last.h5");
    if (st == SSLC_OK && is_best)
        st = link_atomically(dir, path, "best.h5");
    if (st == SSLC_OK) {
        if (sslc_atomic_sync(dir, true) != SSLC_OK)
            sslc_warn("%s", sslc_error_message());
        if (keep > 0)
            rotate(dir, keep, c->step);
    }
    free(path);
    return st;
}

sslc_status sslc_ckpt_resolve(const char *run_or_ckpt, char *path, size_t cap)
{
    struct stat sb;
    if (stat(run_or_ckpt, &sb) != 0)
        // Neutral: callers resume, probe, export...; they add what for.
        return sslc_error(SSLC_ERR_IO, "cannot open checkpoint '%s': %s", run_or_ckpt,
                          strerror(errno));
    const char *pick = run_or_ckpt;
    char *owned = NULL;
    if (S_ISDIR(sb.st_mode)) {
        owned = join_path(run_or_ckpt, "last.h5");
        if (!owned)
            return SSLC_ERR_NOMEM;
        if (stat(owned, &sb) != 0) {
            free(owned);
            owned = NULL;
            int64_t best = -1;
            DIR *d = opendir(run_or_ckpt);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                int64_t s = ckpt_step(e->d_name);
                if (s > best)
                    best = s;
            }
            if (d)
                closedir(d);
            if (best < 0)
                return sslc_error(SSLC_ERR_IO,
                                  "run folder %s has no checkpoint (no last.h5, no ckpt-*.h5)",
                                  run_or_ckpt);
            char name[64];
            snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", best);
            owned = join_path(run_or_ckpt, name);
            if (!owned)
                return SSLC_ERR_NOMEM;
        }
        pick = owned;
    }
    sslc_status st = SSLC_OK;
    if (strlen(pick) + 1 > cap)
        st = sslc_error(SSLC_ERR_INVALID, "checkpoint path '%s' is too long", pick);
    else
        memcpy(path, pick, strlen(pick) + 1);
    free(owned);
    return st;
}
