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
#include "src/core/threads.h"

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

// ------------------------------------------------------------------ the walk

// Every folder entered, by (device, inode), so that a folder reached a
// second time through a symlink (a link to "..", a cycle of links, two
// links to one folder) is not listed again. Open addressing, at most half
// full; {0, 0} marks an empty slot (no folder has inode 0).
typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct walker {
    path_list *files;
    dir_id *seen;
    size_t seen_n, seen_cap; // seen_cap: 0 or a power of two
    // Symlinked folders met so far: walked after the real folders, so a
    // folder is listed under its own path when the tree holds it.
    char **links;
    int64_t n_links, cap_links;
    bool warn;              // print one line per link skipped
    int64_t skipped_links;
} walker;

static size_t dir_hash(dir_id id)
{
    uint64_t h = ((uint64_t)id.dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)id.ino;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (size_t)(h ^ (h >> 32));
}

// Adds id; *fresh says whether it was new.
static sslc_status seen_add(walker *w, dir_id id, bool *fresh)
{
    if (2 * (w->seen_n + 1) > w->seen_cap) {
        size_t cap = w->seen_cap ? 2 * w->seen_cap : 64;
        dir_id *t = calloc(cap, sizeof *t);
        if (!t)
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory listing folders");
        for (size_t k = 0; k < w->seen_cap; k++) {
            dir_id o = w->seen[k];
            if (!o.dev && !o.ino)
                continue;
            size_t j = dir_hash(o) & (cap - 1);
            while (t[j].dev || t[j].ino)
                j = (j + 1) & (cap - 1);
            t[j] = o;
        }
        free(w->seen);
        w->seen = t;
        w->seen_cap = cap;
    }
    size_t j = dir_hash(id) & (w->seen_cap - 1);
    for (;; j = (j + 1) & (w->seen_cap - 1)) {
        dir_id o = w->seen[j];
        if (!o.dev && !o.ino)
            break;
        if (o.dev == id.dev && o.ino == id.ino) {
            *fresh = false;
            return SSLC_OK;
        }
    }
    w->seen[j] = id;
    w->seen_n++;
    *fresh = true;
    return SSLC_OK;
}

// Marks the folder path as entered (following links); *fresh as above.
static sslc_status seen_path(walker *w, const char *path, bool *fresh)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot read folder '%s': %s", path, strerror(errno));
    return seen_add(w, (dir_id){sb.st_dev, sb.st_ino}, fresh);
}

static sslc_status link_push(walker *w, const char *path)
{
    if (w->n_links == w->cap_links) {
        int64_t cap = w->cap_links ? 2 * w->cap_links : 16;
        char **p = realloc(w->links, (size_t)cap * sizeof(char *));
        if (!p)
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory listing folders");
        w->links = p;
        w->cap_links = cap;
    }
    w->links[w->n_links] = strdup(path);
    if (!w->links[w->n_links])
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory listing folders");
    w->n_links++;
    return SSLC_OK;
}

static void walker_free(walker *w)
{
    for (int64_t i = 0; i < w->n_links; i++)
        free(w->links[i]);
    free(w->links);
    free(w->seen);
    memset(w, 0, sizeof *w);
}

// Collects image files under dir (already marked seen), recursively
// through real sub-folders; symlinked sub-folders are queued for
// walk_tree. depth bounds very deep trees.
static sslc_status walk_real(walker *w, const char *dir, int depth)
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
        struct stat lsb, sb;
        bool is_link = lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode);
        if (is_link && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = link_push(w, path);
        } else if (!is_link && S_ISDIR(lsb.st_mode)) {
            bool fresh;
            st = seen_add(w, (dir_id){lsb.st_dev, lsb.st_ino}, &fresh);
            if (st == SSLC_OK && fresh)
                st = walk_real(w, path, depth + 1);
        } else if (has_image_ext(e->d_name)) {
            // Files, links to files, and dangling links (which the scan
            // then names as unreadable), as torchvision lists them.
            st = list_push(w->files, dir, e->d_name);
        }
        if (st != SSLC_OK)
            break;
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Collects image files under dir (already marked seen), recursively,
// following symlinks as torchvision's os.walk(followlinks=True) does, but
// entering each folder once: a link to a folder already listed is skipped
// with one warning line. Links are taken in sorted order, so which of two
// links to one folder is followed does not depend on the file system.
static sslc_status walk_tree(walker *w, const char *dir)
{
    int64_t done = w->n_links;
    sslc_status st = walk_real(w, dir, 0);
    while (st == SSLC_OK && done < w->n_links) {
        int64_t end = w->n_links;
        qsort(w->links + done, (size_t)(end - done), sizeof(char *), cmp_str);
        for (; done < end && st == SSLC_OK; done++) {
            const char *link = w->links[done];
            bool fresh;
            st = seen_path(w, link, &fresh);
            if (st == SSLC_OK && fresh) {
                st = walk_real(w, link, 0);
            } else if (st == SSLC_OK) {
                w->skipped_links++;
                if (w->warn) {
                    char *target = realpath(link, NULL);
                    sslc_warn("skipping folder link '%s': it leads to '%s', a folder already "
                              "listed",
                              link, target ? target : "?");
                    free(target);
                }
            }
        }
    }
    return st;
}

// torchvision's order: for each class in sorted order (ImageFolder),
// sorted(os.walk(...)) then sorted(fnames), i.e. by class, then directory
// string, then name. The class goes first: "ant-b/..." sorts before
// "ant/..." as strings although class "ant" comes first.
static struct {
    const path_list *files;
    const int32_t *labels; // NULL: unlabeled
} sort_ctx;

static int cmp_index(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_ctx.labels && sort_ctx.labels[i] != sort_ctx.labels[j])
        return sort_ctx.labels[i] < sort_ctx.labels[j] ? -1 : 1;
    int c = strcmp(sort_ctx.files->dir[i], sort_ctx.files->dir[j]);
    return c ? c : strcmp(sort_ctx.files->name[i], sort_ctx.files->name[j]);
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

// "dir/name", or name alone for a file given by itself (dir "").
static void join_path(char *buf, size_t cap, const char *dir, const char *name)
{
    if (dir[0])
        snprintf(buf, cap, "%s/%s", dir, name);
    else
        snprintf(buf, cap, "%s", name);
}

typedef struct probe_result {
    sslc_status status;
    int64_t height, width;
    char *reason; // failures: why (malloc'd)
} probe_result;

// Probes every file of l (in parallel: the headers, or whole decodes with
// verify), keeps the good ones in sorted order as ds->items and records
// the others with their reasons, one warning line each. what names the
// folder in messages; single: l holds one file given by itself, whose
// failure is the error.
static sslc_status scan_files(sslc_dataset *ds, path_list *l, const int32_t *labels,
                              const sslc_dataset_options *opt, const char *what, bool single)
{
    int64_t n = l->n;
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    probe_result *res = calloc((size_t)(n ? n : 1), sizeof *res);
    ds->items = sslc_calloc((size_t)(n ? n : 1), sizeof(sslc_dataset_item));
    if (!order || !res || !ds->items) {
        free(order);
        free(res);
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    sort_ctx.files = l;
    sort_ctx.labels = labels;
    qsort(order, (size_t)n, sizeof(int64_t), cmp_index);
    sort_ctx.files = NULL;
    sort_ctx.labels = NULL;
    int64_t done = 0;
    // Reading headers is mostly waiting for the disk, and verify decodes
    // whole images: both gain from threads. Results land in res[k] and are
    // reported in order below, so the output does not depend on timing.
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t k = 0; k < n; k++) {
        char path[4096];
        join_path(path, sizeof path, l->dir[order[k]], l->name[order[k]]);
        probe_result *r = &res[k];
        r->status = probe_file(path, opt, &r->height, &r->width);
        if (r->status != SSLC_OK && r->status != SSLC_ERR_NOMEM) {
            char why[1024];
            r->reason = strdup(sslc_dataset_reason(why, sizeof why, sslc_error_message(), path));
            if (!r->reason)
                r->status = SSLC_ERR_NOMEM;
        }
        int64_t now = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
        if (opt->progress && sslc_thread_index() == 0)
            opt->progress(opt->progress_ctx, now, n);
    }
    if (opt->progress)
        opt->progress(opt->progress_ctx, n, n);
    sslc_status st = SSLC_OK;
    int64_t kept = 0;
    char path[4096];
    for (int64_t k = 0; k < n && st == SSLC_OK; k++) {
        int64_t i = order[k];
        const probe_result *r = &res[k];
        join_path(path, sizeof path, l->dir[i], l->name[i]);
        if (r->status == SSLC_ERR_NOMEM) {
            st = sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory scanning '%s'", path);
        } else if (r->status != SSLC_OK) {
            st = sslc_dataset_add_skip(ds, path, r->reason);
            if (st == SSLC_OK && !ds->quiet)
                sslc_warn("skipping '%s': %s", path, r->reason);
        } else {
            sslc_dataset_item *it = &ds->items[kept++];
            it->path = strdup(path);
            if (!it->path)
                st = sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
            it->label = labels ? labels[i] : -1;
            it->height = (int32_t)r->height;
            it->width = (int32_t)r->width;
        }
    }
    for (int64_t k = 0; k < n; k++)
        free(res[k].reason);
    free(res);
    free(order);
    ds->n = kept;
    if (st != SSLC_OK)
        return st;
    if (single && kept == 0)
        return sslc_error(SSLC_ERR_FORMAT, "data: cannot decode '%s': %s", ds->skip_paths[0],
                          ds->skip_reasons[0]);
    if (ds->skipped && !ds->quiet)
        sslc_warn("%s: %lld of %lld image files skipped (see the warnings above)", what,
                  (long long)ds->skipped, (long long)n);
    if (kept == 0 && !ds->allow_empty)
        return sslc_error(SSLC_ERR_FORMAT, "%s: none of its %lld image files could be read", what,
                          (long long)n);
    return SSLC_OK;
}

// Walks root (marked seen in w first) into w->files.
static sslc_status walk_root(walker *w, const char *root)
{
    bool fresh;
    sslc_status st = seen_path(w, root, &fresh);
    return st == SSLC_OK ? walk_tree(w, root) : st;
}

// An unlabeled dataset of the files in l (freed here); what and single as
// for scan_files.
static sslc_status open_unlabeled(sslc_dataset *ds, path_list *l, const sslc_dataset_options *opt,
                                  const char *what, bool single)
{
    ds->kind = SSLC_DATASET_FOLDER;
    sslc_status st = scan_files(ds, l, NULL, opt, what, single);
    list_free(l);
    if (ds->channels == 0)
        ds->channels = 3;
    return st;
}

sslc_status sslc_dataset_open_folder(sslc_dataset *ds, const char *root,
                                     const sslc_dataset_options *opt)
{
    if (!sslc_dataset_is_dir(root))
        return sslc_error(SSLC_ERR_IO, "image folder '%s' does not exist or is not a folder",
                          root);
    path_list l = {0};
    walker w = {.files = &l, .warn = !ds->quiet};
    sslc_status st = walk_root(&w, root);
    ds->skipped_links = w.skipped_links;
    walker_free(&w);
    if (st == SSLC_OK && l.n == 0)
        st = sslc_error(SSLC_ERR_INVALID,
                        "image folder '%s' has no .png, .jpg or .jpeg files (searched recursively)",
                        root);
    if (st != SSLC_OK) {
        list_free(&l);
        return st;
    }
    return open_unlabeled(ds, &l, opt, root, false);
}

sslc_status sslc_dataset_open_image_file(sslc_dataset *ds, const char *path,
                                         const sslc_dataset_options *opt)
{
    path_list l = {0};
    sslc_status st = list_push(&l, "", path);
    if (st != SSLC_OK) {
        list_free(&l);
        return st;
    }
    return open_unlabeled(ds, &l, opt, path, true);
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
    // The root and every class folder count as listed from the start, so a
    // link from one class into another (or up to the root) is skipped
    // rather than giving the same images a second label.
    walker w = {.files = &l, .warn = !ds->quiet};
    bool fresh;
    st = seen_path(&w, root, &fresh);
    for (int64_t c = 0; c < ds->num_classes && st == SSLC_OK; c++) {
        snprintf(path, sizeof path, "%s/%s", root, ds->class_names[c]);
        st = seen_path(&w, path, &fresh);
    }
    for (int64_t c = 0; c < ds->num_classes && st == SSLC_OK; c++) {
        snprintf(path, sizeof path, "%s/%s", root, ds->class_names[c]);
        int64_t before = l.n;
        st = walk_tree(&w, path);
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
    ds->skipped_links = w.skipped_links;
    walker_free(&w);
    if (st == SSLC_OK) {
        ds->kind = SSLC_DATASET_IMAGEFOLDER;
        st = scan_files(ds, &l, labels, opt, root, false);
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
            walker w = {.files = &l}; // silent: the real walk names skipped links
            bool fresh;
            if (seen_path(&w, root, &fresh) != SSLC_OK || walk_root(&w, path) != SSLC_OK ||
                l.n == 0)
                ok = false;
            walker_free(&w);
            list_free(&l);
            subdirs++;
        } else if (has_image_ext(e->d_name)) {
            ok = false;
        }
    }
    closedir(d);
    return ok && subdirs > 0;
}
