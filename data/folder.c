// Image folders: the recursive walk (in torchvision's order), the header
// scan that skips and names bad files, and the folder and ImageFolder
// layouts built on them.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_internal.h"
#include "src/core/log.h"

typedef struct path_list {
    char **dir, **name; // full path = dir + "/" + name
    int64_t n, cap;
} path_list;

static bool has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char ext[8] = {0};
    size_t len = strlen(dot + 1);
    if (len == 0 || len >= sizeof ext)
        return false;
    for (size_t i = 0; i < len && i < sizeof ext - 1; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

bool sslc_dataset_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static sslc_status list_push(path_list *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 256;
        char **d = realloc(l->dir, (size_t)cap * sizeof(char *));
        if (d)
            l->dir = d;
        char **nm = realloc(l->name, (size_t)cap * sizeof(char *));
        if (nm)
            l->name = nm;
        if (!d || !nm)
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory listing files");
        l->cap = cap;
    }
    l->dir[l->n] = strdup(dir);
    l->name[l->n] = strdup(name);
    if (!l->dir[l->n] || !l->name[l->n])
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory listing files");
    l->n++;
    return SSLC_OK;
}

static void list_free(path_list *l)
{
    for (int64_t i = 0; i < l->n; i++) {
        free(l->dir[i]);
        free(l->name[i]);
    }
    free(l->dir);
    free(l->name);
    memset(l, 0, sizeof *l);
}

// Collects image files under dir, recursively, following symlinks (as
// torchvision's os.walk(followlinks=True)). depth bounds symlink loops.
static sslc_status walk(path_list *l, const char *dir, int depth)
{
    if (depth > 64)
        return SSLC_OK;
    DIR *d = opendir(dir);
    if (!d)
        return sslc_error(SSLC_ERR_IO, "cannot read folder '%s': %s", dir, strerror(errno));
    sslc_status st = SSLC_OK;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (sslc_dataset_is_dir(path)) {
            st = walk(l, path, depth + 1);
        } else if (has_image_ext(e->d_name)) {
            st = list_push(l, dir, e->d_name);
        }
        if (st != SSLC_OK)
            break;
    }
    closedir(d);
    return st;
}

// sorted(os.walk(...)) then sorted(fnames): by directory string, then name.
static int cmp_dir_name(const char *da, const char *na, const char *db, const char *nb)
{
    int c = strcmp(da, db);
    return c ? c : strcmp(na, nb);
}

static path_list *sort_ctx;
static int cmp_index(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    return cmp_dir_name(sort_ctx->dir[i], sort_ctx->name[i], sort_ctx->dir[j], sort_ctx->name[j]);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Reads the first bytes (or the whole file when the header is not within
// them) and checks the header: size, signature, dimensions, pixel limit.
static sslc_status probe_file(const char *path, const sslc_dataset_options *opt, int64_t *h,
                              int64_t *w)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    enum { PREFIX = 65536 };
    uint8_t *buf = malloc(PREFIX);
    if (!buf) {
        fclose(f);
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    size_t got = fread(buf, 1, PREFIX, f);
    bool whole = feof(f);
    fclose(f);
    sslc_decode_options dopt = {.channels = 0, .max_pixels = opt->max_pixels};
    sslc_status st;
    if (got == 0 && whole)
        st = sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': empty file", path);
    else
        st = sslc_image_probe(buf, got, path, &dopt, h, w, NULL);
    free(buf);
    if (st == SSLC_ERR_FORMAT && !whole) {
        // The header may lie beyond the prefix (large EXIF blocks).
        uint8_t *all;
        size_t size;
        st = sslc_file_read(path, &all, &size);
        if (st == SSLC_OK) {
            st = sslc_image_probe(all, size, path, &dopt, h, w, NULL);
            free(all);
        }
    }
    if (st == SSLC_OK && opt->verify) {
        sslc_image img;
        dopt.channels = 3;
        st = sslc_image_load(&img, path, &dopt, NULL);
        sslc_image_free(&img);
    }
    return st;
}

static sslc_status scan_files(sslc_dataset *ds, path_list *l, const int32_t *labels,
                              const sslc_dataset_options *opt, const char *what)
{
    int64_t *order = malloc((size_t)(l->n ? l->n : 1) * sizeof(int64_t));
    ds->items = sslc_calloc((size_t)(l->n ? l->n : 1), sizeof(sslc_dataset_item));
    if (!order || !ds->items) {
        free(order);
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    for (int64_t i = 0; i < l->n; i++)
        order[i] = i;
    sort_ctx = l;
    qsort(order, (size_t)l->n, sizeof(int64_t), cmp_index);
    sort_ctx = NULL;
    int64_t kept = 0;
    char path[4096];
    for (int64_t k = 0; k < l->n; k++) {
        int64_t i = order[k];
        snprintf(path, sizeof path, "%s/%s", l->dir[i], l->name[i]);
        int64_t h = 0, w = 0;
        sslc_status st = probe_file(path, opt, &h, &w);
        if (st == SSLC_ERR_NOMEM) {
            free(order);
            return st;
        }
        if (st != SSLC_OK) {
            ds->skipped++;
            if (!opt->quiet)
                sslc_warn("skipping %s", sslc_error_message());
            continue;
        }
        sslc_dataset_item *it = &ds->items[kept++];
        it->path = strdup(path);
        if (!it->path) {
            free(order);
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
        }
        it->label = labels ? labels[i] : -1;
        it->height = (int32_t)h;
        it->width = (int32_t)w;
    }
    free(order);
    ds->n = kept;
    if (ds->skipped)
        sslc_warn("%s: %lld of %lld image files skipped (see the warnings above)", what,
                  (long long)ds->skipped, (long long)l->n);
    if (kept == 0)
        return sslc_error(SSLC_ERR_FORMAT, "%s: none of its %lld image files could be read", what,
                          (long long)l->n);
    return SSLC_OK;
}

sslc_status sslc_dataset_open_folder(sslc_dataset *ds, const char *root,
                                     const sslc_dataset_options *opt)
{
    if (!sslc_dataset_is_dir(root))
        return sslc_error(SSLC_ERR_IO, "image folder '%s' does not exist or is not a folder",
                          root);
    path_list l = {0};
    sslc_status st = walk(&l, root, 0);
    if (st == SSLC_OK && l.n == 0)
        st = sslc_error(SSLC_ERR_INVALID,
                        "image folder '%s' has no .png, .jpg or .jpeg files (searched recursively)",
                        root);
    if (st == SSLC_OK) {
        ds->kind = SSLC_DATASET_FOLDER;
        st = scan_files(ds, &l, NULL, opt, root);
    }
    list_free(&l);
    if (ds->channels == 0)
        ds->channels = 3;
    return st;
}

sslc_status sslc_dataset_open_imagefolder(sslc_dataset *ds, const char *root,
                                          const sslc_dataset_options *opt)
{
    if (!sslc_dataset_is_dir(root))
        return sslc_error(SSLC_ERR_IO, "image folder '%s' does not exist or is not a folder",
                          root);
    DIR *d = opendir(root);
    if (!d)
        return sslc_error(SSLC_ERR_IO, "cannot read folder '%s': %s", root, strerror(errno));
    struct dirent *e;
    char path[4096];
    int64_t cap = 0;
    sslc_status st = SSLC_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        if (!sslc_dataset_is_dir(path))
            continue;
        if (ds->num_classes == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(ds->class_names, (size_t)cap * sizeof(char *));
            if (!p) {
                closedir(d);
                return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
            }
            ds->class_names = p;
        }
        ds->class_names[ds->num_classes] = strdup(e->d_name);
        if (!ds->class_names[ds->num_classes++]) {
            closedir(d);
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
        }
    }
    closedir(d);
    if (ds->num_classes == 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "'%s' has no class sub-folders (an ImageFolder needs one per class)",
                          root);
    // torchvision: classes = sorted(entry.name for entry in os.scandir(dir) if entry.is_dir())
    qsort(ds->class_names, (size_t)ds->num_classes, sizeof(char *), cmp_str);
    path_list l = {0};
    int32_t *labels = NULL;
    int64_t lcap = 0;
    for (int64_t c = 0; c < ds->num_classes && st == SSLC_OK; c++) {
        snprintf(path, sizeof path, "%s/%s", root, ds->class_names[c]);
        int64_t before = l.n;
        st = walk(&l, path, 0);
        if (st != SSLC_OK)
            break;
        if (l.n == before) {
            st = sslc_error(SSLC_ERR_INVALID, "class folder '%s' has no .png, .jpg or .jpeg files",
                            path);
            break;
        }
        if (l.cap > lcap) {
            int32_t *p = realloc(labels, (size_t)l.cap * sizeof(int32_t));
            if (!p) {
                st = sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
                break;
            }
            labels = p;
            lcap = l.cap;
        }
        for (int64_t i = before; i < l.n; i++)
            labels[i] = (int32_t)c;
    }
    if (st == SSLC_OK) {
        ds->kind = SSLC_DATASET_IMAGEFOLDER;
        // Files sort within their class by (dir, name); dirs of different
        // classes sort by class name first, which is the class order.
        st = scan_files(ds, &l, labels, opt, root);
    }
    free(labels);
    list_free(&l);
    if (ds->channels == 0)
        ds->channels = 3;
    return st;
}

bool sslc_dataset_looks_like_imagefolder(const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return false;
    struct dirent *e;
    char path[4096];
    int subdirs = 0;
    bool ok = true;
    while ((e = readdir(d)) && ok) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        if (sslc_dataset_is_dir(path)) {
            path_list l = {0};
            if (walk(&l, path, 0) != SSLC_OK || l.n == 0)
                ok = false;
            list_free(&l);
            subdirs++;
        } else if (has_image_ext(e->d_name)) {
            ok = false;
        }
    }
    closedir(d);
    return ok && subdirs > 0;
}
