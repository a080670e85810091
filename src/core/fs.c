#include "src/core/fs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

sslc_status sslc_make_dir(const char *path, const char *what)
{
    if (!path[0])
        return sslc_error(SSLC_ERR_INVALID, "%s: the path is empty", what);
    if (is_dir(path))
        return SSLC_OK;
    char *p = sslc_malloc(strlen(path) + 1);
    if (!p)
        return SSLC_ERR_NOMEM;
    strcpy(p, path);
    sslc_status st = SSLC_OK;
    // Each prefix ending before a '/' in turn, then the whole path.
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && !(errno == EEXIST && is_dir(p))) {
            const char *why = errno == EEXIST ? "a file of that name is in the way" : strerror(errno);
            st = !strcmp(p, path)
                     ? sslc_error(SSLC_ERR_IO, "cannot create %s '%s': %s", what, path, why)
                     : sslc_error(SSLC_ERR_IO, "cannot create %s '%s': cannot make '%s': %s",
                                  what, path, p, why);
            break;
        }
        *s = saved;
        if (!saved)
            break;
    }
    free(p);
    return st;
}

sslc_status sslc_make_parent_dir(const char *path, const char *what)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return SSLC_OK;
    char *dir = sslc_malloc((size_t)(slash - path) + 1);
    if (!dir)
        return SSLC_ERR_NOMEM;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    char label[128];
    snprintf(label, sizeof label, "the folder of %s", what);
    sslc_status st = sslc_make_dir(dir, label);
    free(dir);
    return st;
}

sslc_status sslc_write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    bool written = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        written = false;
    if (!written)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return SSLC_OK;
}
