#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/resize.h"
#include "src/core/log.h"

typedef enum kind { KIND_FOLDER, KIND_IMAGEFOLDER, KIND_IDX } kind;

typedef struct item {
    char *path;     // image files: the file; IDX: NULL
    int32_t label;  // -1 unlabeled
    int32_t height, width;
} item;

enum { CACHE_EMPTY = 0, CACHE_FILLED = 1, CACHE_BAD = 2 };

typedef struct cache_entry {
    uint64_t offset;
    uint32_t height, width;
} cache_entry;

struct sslc_dataset {
    kind kind;
    int channels;
    int64_t n;
    item *items;
    int64_t num_classes;
    char **class_names;
    int64_t skipped;
    int64_t max_pixels_limit;
    char *source; // IDX: "idx:IMAGES,LABELS"
    // IDX pixels: (n, rows, cols) uint8, all in memory.
    uint8_t *idx_pixels;
    int64_t idx_rows, idx_cols, idx_channels;
    char *idx_name; // base name of the images file, for messages
    // Decoded cache (image files only).
    int cache_fd;
    uint8_t *cache_map;
    size_t cache_size;
    cache_entry *cache_table;
    uint8_t *cache_flags;
    int64_t cache_short_side;
};

static const char FASHION_DIR[] = "/usr/share/datasets/fashion-mnist";

void sslc_dataset_options_default(sslc_dataset_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_pixels = 89478485;
}

// ------------------------------------------------------------------ IDX

static sslc_status idx_read(const char *path, uint32_t want_magic, uint8_t **data, int64_t *dims,
                            int *ndims)
{
    *data = NULL;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot open IDX file '%s': %s", path,
                          errno ? strerror(errno) : "gzopen failed");
    sslc_status st = SSLC_OK;
    uint8_t hdr[4];
    if (gzread(f, hdr, 4) != 4) {
        st = sslc_error(SSLC_ERR_FORMAT, "'%s' is not an IDX file: too short", path);
        goto fail;
    }
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
                     hdr[3];
    // Magic: 0, 0, type 0x08 (uint8), number of dimensions. Images may
    // have 3 or 4 dimensions, labels 1.
    bool ok = want_magic == 0x801 ? magic == 0x801 : (magic == 0x803 || magic == 0x804);
    if (!ok) {
        st = sslc_error(SSLC_ERR_FORMAT,
                        "'%s' is not an IDX %s file (magic 0x%08x, expected 0x%08x)", path,
                        want_magic == 0x803 ? "uint8 image" : "uint8 label", magic, want_magic);
        goto fail;
    }
    *ndims = hdr[3];
    if (*ndims < 1 || *ndims > 4) {
        st = sslc_error(SSLC_ERR_FORMAT, "'%s': IDX files with %d dimensions are not supported",
                        path, *ndims);
        goto fail;
    }
    const int64_t max_total = (int64_t)1 << 40;
    int64_t total = 1;
    for (int d = 0; d < *ndims; d++) {
        if (gzread(f, hdr, 4) != 4) {
            st = sslc_error(SSLC_ERR_FORMAT, "'%s': IDX header is truncated", path);
            goto fail;
        }
        dims[d] = (int64_t)((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                            (uint32_t)hdr[2] << 8 | hdr[3]);
        // Checked before multiplying: four 32-bit sizes overflow int64.
        if (dims[d] == 0 || total > max_total / dims[d]) {
            st = sslc_error(SSLC_ERR_FORMAT, "'%s': IDX dimensions are implausible", path);
            goto fail;
        }
        total *= dims[d];
    }
    // The buffer grows with the data actually read, so a short file whose
    // header claims terabytes is refused as truncated, not by allocating them.
    int64_t cap = 0;
    for (int64_t done = 0; done < total;) {
        if (done == cap) {
            int64_t grow = cap > (1 << 20) ? cap : (1 << 20); // 1 MiB, then doubling
            cap = total - cap > grow ? cap + grow : total;
            uint8_t *grown = realloc(*data, (size_t)cap);
            if (!grown) {
                st = sslc_error(SSLC_ERR_NOMEM, "'%s': out of memory for %lld bytes of IDX data",
                                path, (long long)cap);
                goto fail;
            }
            *data = grown;
        }
        int64_t chunk = cap - done > (1 << 30) ? (1 << 30) : cap - done;
        int got = gzread(f, *data + done, (unsigned)chunk);
        if (got <= 0) {
            st = sslc_error(SSLC_ERR_FORMAT, "'%s': IDX data is truncated (%lld of %lld bytes)",
                            path, (long long)done, (long long)total);
            goto fail;
        }
        done += got;
    }
    gzclose(f);
    return SSLC_OK;
fail:
    free(*data);
    *data = NULL;
    gzclose(f);
    return st;
}

static sslc_status open_idx(sslc_dataset *ds, const char *images, const char *labels)
{
    int64_t dims[4] = {0};
    int nd = 0;
    sslc_status st = idx_read(images, 0x803, &ds->idx_pixels, dims, &nd);
    if (st != SSLC_OK)
        return st;
    // (n, rows, cols) gray, or (n, rows, cols, 1 | 3) as some tools write colour.
    if (!(nd == 3 || (nd == 4 && (dims[3] == 1 || dims[3] == 3))))
        return sslc_error(SSLC_ERR_FORMAT,
                          "'%s': expected IDX dimensions (n, rows, cols) or (n, rows, cols, 1|3)",
                          images);
    ds->idx_channels = nd == 4 ? dims[3] : 1;
    ds->n = dims[0];
    ds->idx_rows = dims[1];
    ds->idx_cols = dims[2];
    ds->kind = KIND_IDX;
    const char *base = strrchr(images, '/');
    ds->idx_name = strdup(base ? base + 1 : images);
    size_t len = strlen(images) + (labels ? strlen(labels) : 0) + 8;
    ds->source = malloc(len);
    ds->items = sslc_calloc((size_t)ds->n, sizeof(item));
    if (!ds->idx_name || !ds->source || !ds->items)
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    snprintf(ds->source, len, "idx:%s%s%s", images, labels ? "," : "", labels ? labels : "");
    for (int64_t i = 0; i < ds->n; i++) {
        ds->items[i].label = -1;
        ds->items[i].height = (int32_t)ds->idx_rows;
        ds->items[i].width = (int32_t)ds->idx_cols;
    }
    if (labels) {
        uint8_t *lab = NULL;
        int64_t ldims[4] = {0};
        st = idx_read(labels, 0x801, &lab, ldims, &nd);
        if (st != SSLC_OK)
            return st;
        if (nd != 1 || ldims[0] != ds->n) {
            free(lab);
            return sslc_error(SSLC_ERR_FORMAT, "'%s' has %lld labels but '%s' has %lld images",
                              labels, (long long)ldims[0], images, (long long)ds->n);
        }
        int64_t maxl = 0;
        for (int64_t i = 0; i < ds->n; i++) {
            ds->items[i].label = lab[i];
            if (lab[i] > maxl)
                maxl = lab[i];
        }
        ds->num_classes = maxl + 1;
        free(lab);
    }
    if (ds->channels == 0)
        ds->channels = (int)ds->idx_channels;
    return SSLC_OK;
}

// ------------------------------------------------------------------ folders

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

static bool is_dir(const char *path)
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
        if (is_dir(path)) {
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
    ds->items = sslc_calloc((size_t)(l->n ? l->n : 1), sizeof(item));
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
        item *it = &ds->items[kept++];
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

static sslc_status open_folder(sslc_dataset *ds, const char *root, const sslc_dataset_options *opt)
{
    if (!is_dir(root))
        return sslc_error(SSLC_ERR_IO, "image folder '%s' does not exist or is not a folder",
                          root);
    path_list l = {0};
    sslc_status st = walk(&l, root, 0);
    if (st == SSLC_OK && l.n == 0)
        st = sslc_error(SSLC_ERR_INVALID,
                        "image folder '%s' has no .png, .jpg or .jpeg files (searched recursively)",
                        root);
    if (st == SSLC_OK) {
        ds->kind = KIND_FOLDER;
        st = scan_files(ds, &l, NULL, opt, root);
    }
    list_free(&l);
    if (ds->channels == 0)
        ds->channels = 3;
    return st;
}

static sslc_status open_imagefolder(sslc_dataset *ds, const char *root,
                                    const sslc_dataset_options *opt)
{
    if (!is_dir(root))
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
        if (!is_dir(path))
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
        ds->kind = KIND_IMAGEFOLDER;
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

// A bare directory is an ImageFolder when it has no image files of its
// own and every sub-folder holds images.
static bool looks_like_imagefolder(const char *root)
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
        if (is_dir(path)) {
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

// ------------------------------------------------------------------ manifest

sslc_status sslc_dataset_save_manifest(const sslc_dataset *ds, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write manifest '%s': %s", tmp, strerror(errno));
    static const char *kinds[] = {"folder", "imagefolder", "idx"};
    fprintf(f, "sslc-manifest 1\nkind %s\nchannels %d\n", kinds[ds->kind], ds->channels);
    if (ds->kind == KIND_IDX) {
        fprintf(f, "source %s\n", ds->source);
    } else {
        fprintf(f, "classes %lld\n", (long long)ds->num_classes);
        for (int64_t c = 0; c < ds->num_classes; c++)
            fprintf(f, "class %s\n", ds->class_names[c]);
        fprintf(f, "items %lld\n", (long long)ds->n);
        for (int64_t i = 0; i < ds->n; i++)
            fprintf(f, "%d %d %d %s\n", ds->items[i].label, ds->items[i].height,
                    ds->items[i].width, ds->items[i].path);
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return sslc_error(SSLC_ERR_IO, "cannot write manifest '%s'", tmp);
    }
    if (rename(tmp, path) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    return SSLC_OK;
}

static sslc_status open_spec(sslc_dataset *ds, const char *spec, const sslc_dataset_options *opt,
                             int depth);

static sslc_status open_manifest(sslc_dataset *ds, const char *path,
                                 const sslc_dataset_options *opt, int depth)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot open manifest '%s': %s", path, strerror(errno));
    char line[8192], word[64];
    sslc_status st = SSLC_OK;
    int version = 0, channels = 0;
    long long classes = 0, items = 0;
#define BAD(...)                                                                                   \
    do {                                                                                           \
        st = sslc_error(SSLC_ERR_FORMAT, __VA_ARGS__);                                             \
        goto done;                                                                                 \
    } while (0)
    if (!fgets(line, sizeof line, f) || sscanf(line, "sslc-manifest %d", &version) != 1 ||
        version != 1)
        BAD("'%s' is not an sslc manifest (first line should be 'sslc-manifest 1')", path);
    if (!fgets(line, sizeof line, f) || sscanf(line, "kind %63s", word) != 1)
        BAD("manifest '%s': missing 'kind' line", path);
    if (!fgets(line, sizeof line, f) || sscanf(line, "channels %d", &channels) != 1 ||
        (channels != 1 && channels != 3))
        BAD("manifest '%s': missing or bad 'channels' line", path);
    if (!strcmp(word, "idx")) {
        if (!fgets(line, sizeof line, f) || strncmp(line, "source ", 7) != 0)
            BAD("manifest '%s': missing 'source' line", path);
        line[strcspn(line, "\n")] = 0;
        if (ds->channels == 0)
            ds->channels = channels;
        st = open_spec(ds, line + 7, opt, depth + 1);
        goto done;
    }
    ds->kind = !strcmp(word, "imagefolder") ? KIND_IMAGEFOLDER : KIND_FOLDER;
    if (ds->channels == 0)
        ds->channels = channels;
    if (!fgets(line, sizeof line, f) || sscanf(line, "classes %lld", &classes) != 1 ||
        classes < 0)
        BAD("manifest '%s': missing 'classes' line", path);
    ds->class_names = sslc_calloc((size_t)(classes ? classes : 1), sizeof(char *));
    if (!ds->class_names)
        BAD("manifest '%s': out of memory", path);
    for (long long c = 0; c < classes; c++) {
        if (!fgets(line, sizeof line, f) || strncmp(line, "class ", 6) != 0)
            BAD("manifest '%s': expected %lld 'class' lines", path, classes);
        line[strcspn(line, "\n")] = 0;
        ds->class_names[c] = strdup(line + 6);
        ds->num_classes++;
    }
    if (!fgets(line, sizeof line, f) || sscanf(line, "items %lld", &items) != 1 || items <= 0)
        BAD("manifest '%s': missing 'items' line", path);
    ds->items = sslc_calloc((size_t)items, sizeof(item));
    if (!ds->items)
        BAD("manifest '%s': out of memory", path);
    for (long long i = 0; i < items; i++) {
        int label, h, w, used = 0;
        if (!fgets(line, sizeof line, f) ||
            sscanf(line, "%d %d %d %n", &label, &h, &w, &used) != 3 || used == 0 ||
            label >= (int)classes || label < -1 || h <= 0 || w <= 0)
            BAD("manifest '%s': bad item line %lld", path, i + 1);
        line[strcspn(line, "\n")] = 0;
        item *it = &ds->items[i];
        it->path = strdup(line + used);
        it->label = label;
        it->height = h;
        it->width = w;
        ds->n = i + 1;
    }
done:
#undef BAD
    fclose(f);
    return st;
}

// ------------------------------------------------------------------ cache

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

typedef struct cache_header {
    char magic[8]; // "SSLCACH1"
    uint64_t n, channels, short_side, fingerprint, data_offset, total;
    uint64_t pad;
} cache_header;

static void cached_dims(int64_t h, int64_t w, int64_t short_side, int64_t *oh, int64_t *ow)
{
    *oh = h;
    *ow = w;
    int64_t s = h < w ? h : w;
    if (short_side <= 0 || s <= short_side)
        return; // the cache only shrinks
    // torchvision Resize(int): the short side becomes size, the long side
    // int(size * long / short).
    if (h <= w) {
        *oh = short_side;
        *ow = (int64_t)((double)short_side * (double)w / (double)h);
    } else {
        *ow = short_side;
        *oh = (int64_t)((double)short_side * (double)h / (double)w);
    }
}

static sslc_status open_cache(sslc_dataset *ds, const sslc_dataset_options *opt)
{
    ds->cache_short_side = opt->cache_short_side;
    uint64_t fp = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < ds->n; i++) {
        fp = fnv1a(fp, ds->items[i].path, strlen(ds->items[i].path));
        fp = fnv1a(fp, &ds->items[i].height, sizeof(int32_t));
        fp = fnv1a(fp, &ds->items[i].width, sizeof(int32_t));
    }
    size_t table = (size_t)ds->n * sizeof(cache_entry);
    size_t flags_at = sizeof(cache_header) + table;
    size_t data_at = (flags_at + (size_t)ds->n + 4095) / 4096 * 4096;
    size_t total = data_at;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t h, w;
        cached_dims(ds->items[i].height, ds->items[i].width, opt->cache_short_side, &h, &w);
        total += (size_t)(h * w * ds->channels);
    }
    cache_header want = {.magic = "SSLCACH", .n = (uint64_t)ds->n, .channels = (uint64_t)ds->channels,
                         .short_side = (uint64_t)opt->cache_short_side, .fingerprint = fp,
                         .data_offset = data_at, .total = total};
    memcpy(want.magic, "SSLCACH1", 8);
    int fd = open(opt->cache_path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return sslc_error(SSLC_ERR_IO, "cannot open cache '%s': %s", opt->cache_path,
                          strerror(errno));
    cache_header have;
    bool reuse = pread(fd, &have, sizeof have, 0) == (ssize_t)sizeof have &&
                 memcmp(&have, &want, sizeof have) == 0;
    if (!reuse) {
        // A different dataset or setting: start the file afresh (sparse).
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)total) != 0) {
            close(fd);
            return sslc_error(SSLC_ERR_IO, "cannot size cache '%s' to %zu bytes: %s",
                              opt->cache_path, total, strerror(errno));
        }
    }
    uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        return sslc_error(SSLC_ERR_IO, "cannot map cache '%s': %s", opt->cache_path,
                          strerror(errno));
    }
    ds->cache_fd = fd;
    ds->cache_map = map;
    ds->cache_size = total;
    ds->cache_table = (cache_entry *)(map + sizeof(cache_header));
    ds->cache_flags = map + flags_at;
    if (!reuse) {
        size_t off = data_at;
        for (int64_t i = 0; i < ds->n; i++) {
            int64_t h, w;
            cached_dims(ds->items[i].height, ds->items[i].width, opt->cache_short_side, &h, &w);
            ds->cache_table[i] = (cache_entry){off, (uint32_t)h, (uint32_t)w};
            off += (size_t)(h * w * ds->channels);
        }
        memcpy(map, &want, sizeof want);
    }
    int64_t filled = 0;
    for (int64_t i = 0; i < ds->n; i++)
        filled += ds->cache_flags[i] == CACHE_FILLED;
    sslc_info("cache '%s': %lld of %lld images already decoded (%.1f MB)", opt->cache_path,
              (long long)filled, (long long)ds->n, (double)total / 1e6);
    return SSLC_OK;
}

// ------------------------------------------------------------------ open / access

static sslc_status open_spec(sslc_dataset *ds, const char *spec, const sslc_dataset_options *opt,
                             int depth)
{
    if (depth > 4)
        return sslc_error(SSLC_ERR_INVALID, "dataset: manifests refer to each other in a loop");
    if (!strncmp(spec, "fashion-mnist:", 14)) {
        const char *dir = getenv("SSLC_FASHION_MNIST_DIR");
        if (!dir || !*dir)
            dir = FASHION_DIR;
        const char *split = spec + 14;
        const char *prefix = !strcmp(split, "train") ? "train" : !strcmp(split, "test") ? "t10k"
                                                                                        : NULL;
        if (!prefix)
            return sslc_error(SSLC_ERR_INVALID,
                              "dataset '%s': use fashion-mnist:train or fashion-mnist:test", spec);
        char img[4096], lab[4096];
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
        if (access(img, R_OK) != 0)
            return sslc_error(SSLC_ERR_IO,
                              "dataset '%s': cannot read '%s' (install the Debian package "
                              "dataset-fashion-mnist, or set SSLC_FASHION_MNIST_DIR)",
                              spec, img);
        return open_idx(ds, img, lab);
    }
    if (!strncmp(spec, "idx:", 4)) {
        char buf[8192];
        snprintf(buf, sizeof buf, "%s", spec + 4);
        char *comma = strchr(buf, ',');
        if (comma)
            *comma = 0;
        return open_idx(ds, buf, comma ? comma + 1 : NULL);
    }
    if (!strncmp(spec, "folder:", 7))
        return open_folder(ds, spec + 7, opt);
    if (!strncmp(spec, "imagefolder:", 12))
        return open_imagefolder(ds, spec + 12, opt);
    if (!strncmp(spec, "manifest:", 9))
        return open_manifest(ds, spec + 9, opt, depth);
    if (!*spec)
        return sslc_error(SSLC_ERR_INVALID, "dataset: empty spec");
    if (is_dir(spec))
        return looks_like_imagefolder(spec) ? open_imagefolder(ds, spec, opt)
                                            : open_folder(ds, spec, opt);
    FILE *f = fopen(spec, "rb");
    if (!f)
        return sslc_error(SSLC_ERR_IO,
                          "dataset '%s' does not exist (expected a folder, an IDX file, a manifest, "
                          "or fashion-mnist:train, idx:, folder:, imagefolder:, manifest:)",
                          spec);
    char head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= 13 && !memcmp(head, "sslc-manifest", 13))
        return open_manifest(ds, spec, opt, depth);
    return open_idx(ds, spec, NULL); // gzip or raw IDX; idx_read says if it is neither
}

sslc_status sslc_dataset_open(sslc_dataset **out, const char *spec,
                              const sslc_dataset_options *opt_in)
{
    *out = NULL;
    sslc_dataset_options opt;
    if (opt_in)
        opt = *opt_in;
    else
        sslc_dataset_options_default(&opt);
    if (opt.channels != 0 && opt.channels != 1 && opt.channels != 3)
        return sslc_error(SSLC_ERR_INVALID, "dataset: channels must be 1 or 3, not %d",
                          opt.channels);
    sslc_dataset *ds = sslc_calloc(1, sizeof *ds);
    if (!ds)
        return SSLC_ERR_NOMEM;
    ds->cache_fd = -1;
    ds->channels = opt.channels;
    ds->max_pixels_limit = opt.max_pixels;
    sslc_status st = open_spec(ds, spec, &opt, 0);
    if (st == SSLC_OK && ds->n == 0)
        st = sslc_error(SSLC_ERR_INVALID, "dataset '%s' has no images", spec);
    if (st == SSLC_OK && opt.cache_path && opt.cache_path[0] && ds->kind != KIND_IDX)
        st = open_cache(ds, &opt);
    if (st != SSLC_OK) {
        sslc_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return SSLC_OK;
}

void sslc_dataset_destroy(sslc_dataset *ds)
{
    if (!ds)
        return;
    if (ds->cache_map)
        munmap(ds->cache_map, ds->cache_size);
    if (ds->cache_fd >= 0)
        close(ds->cache_fd);
    for (int64_t i = 0; ds->items && i < ds->n; i++)
        free(ds->items[i].path);
    free(ds->items);
    for (int64_t c = 0; ds->class_names && c < ds->num_classes; c++)
        free(ds->class_names[c]);
    free(ds->class_names);
    free(ds->idx_pixels);
    free(ds->idx_name);
    free(ds->source);
    free(ds);
}

int64_t sslc_dataset_count(const sslc_dataset *ds) { return ds->n; }
int sslc_dataset_channels(const sslc_dataset *ds) { return ds->channels; }
int64_t sslc_dataset_num_classes(const sslc_dataset *ds) { return ds->num_classes; }
int64_t sslc_dataset_skipped(const sslc_dataset *ds) { return ds->skipped; }
bool sslc_dataset_cached(const sslc_dataset *ds) { return ds->cache_map != NULL; }

int64_t sslc_dataset_label(const sslc_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n ? ds->items[i].label : -1;
}

const char *sslc_dataset_class_name(const sslc_dataset *ds, int64_t label)
{
    if (label < 0 || label >= ds->num_classes || !ds->class_names)
        return NULL;
    return ds->class_names[label];
}

const char *sslc_dataset_name(const sslc_dataset *ds, int64_t i, char *buf, size_t cap)
{
    if (i < 0 || i >= ds->n)
        snprintf(buf, cap, "#%lld (out of range)", (long long)i);
    else if (ds->kind == KIND_IDX)
        snprintf(buf, cap, "%s[%lld]", ds->idx_name, (long long)i);
    else
        snprintf(buf, cap, "%s", ds->items[i].path);
    return buf;
}

void sslc_dataset_dims(const sslc_dataset *ds, int64_t i, int64_t *height, int64_t *width)
{
    if (ds->cache_map) {
        *height = ds->cache_table[i].height;
        *width = ds->cache_table[i].width;
    } else {
        *height = ds->items[i].height;
        *width = ds->items[i].width;
    }
}

int64_t sslc_dataset_max_pixels(const sslc_dataset *ds)
{
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t h, w;
        sslc_dataset_dims(ds, i, &h, &w);
        if (h * w > m)
            m = h * w;
    }
    return m;
}

// sslc_dataset_decode and sslc_dataset_decode_window: window (top, left,
// bottom, right) or NULL.
static sslc_status decode_item(const sslc_dataset *ds, int64_t i, sslc_image *out,
                               int (*choose_scale)(void *ctx, int64_t h, int64_t w), void *ctx,
                               int *scale_out, const int64_t *window)
{
    memset(out, 0, sizeof *out);
    if (scale_out)
        *scale_out = 1;
    if (i < 0 || i >= ds->n)
        return sslc_error(SSLC_ERR_INVALID, "dataset: index %lld out of range [0, %lld)",
                          (long long)i, (long long)ds->n);
    sslc_status st;
    int64_t C = ds->channels;
    if (ds->kind == KIND_IDX) {
        int64_t px = ds->idx_rows * ds->idx_cols;
        st = sslc_image_alloc(out, ds->idx_rows, ds->idx_cols, C);
        if (st != SSLC_OK)
            return st;
        int64_t nc = ds->idx_channels;
        const uint8_t *src = ds->idx_pixels + i * px * nc;
        if (C == nc)
            memcpy(out->data, src, (size_t)(px * C));
        else if (C == 3)
            for (int64_t p = 0; p < px; p++)
                out->data[3 * p] = out->data[3 * p + 1] = out->data[3 * p + 2] = src[p];
        else
            sslc_rgb_to_luma(out->data, src, px);
        return SSLC_OK;
    }
    if (ds->cache_map) {
        uint8_t flag = __atomic_load_n(&ds->cache_flags[i], __ATOMIC_ACQUIRE);
        const cache_entry *e = &ds->cache_table[i];
        if (flag == CACHE_FILLED) {
            st = sslc_image_alloc(out, e->height, e->width, C);
            if (st == SSLC_OK)
                memcpy(out->data, ds->cache_map + e->offset, (size_t)(e->height * e->width * C));
            return st;
        }
        if (flag == CACHE_BAD)
            return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': marked bad in the cache",
                              ds->items[i].path);
    }
    sslc_decode_options dopt = {.channels = (int)C, .max_pixels = ds->max_pixels_limit,
                                .choose_scale = ds->cache_map ? NULL : choose_scale, .ctx = ctx};
    if (window && !ds->cache_map) {
        dopt.window_top = window[0], dopt.window_left = window[1];
        dopt.window_bottom = window[2], dopt.window_right = window[3];
    }
    st = sslc_image_load(out, ds->items[i].path, &dopt, scale_out);
    if (!ds->cache_map)
        return st;
    if (st != SSLC_OK) {
        if (st == SSLC_ERR_FORMAT)
            __atomic_store_n(&ds->cache_flags[i], CACHE_BAD, __ATOMIC_RELEASE);
        return st;
    }
    const cache_entry *e = &ds->cache_table[i];
    if (out->height != ds->items[i].height || out->width != ds->items[i].width) {
        sslc_image_free(out);
        return sslc_error(SSLC_ERR_FORMAT, "'%s' changed size since the dataset was scanned",
                          ds->items[i].path);
    }
    if (e->height != out->height || e->width != out->width) {
        sslc_image small;
        st = sslc_image_alloc(&small, e->height, e->width, C);
        sslc_scratch scratch = {0};
        double box[4] = {0, 0, (double)out->width, (double)out->height};
        if (st == SSLC_OK)
            st = sslc_resize_bilinear(small.data, e->height, e->width, out->data, out->height,
                                      out->width, out->width * C, C, box, &scratch);
        sslc_scratch_free(&scratch);
        sslc_image_free(out);
        if (st != SSLC_OK) {
            sslc_image_free(&small);
            return st;
        }
        *out = small;
    }
    memcpy(ds->cache_map + e->offset, out->data, (size_t)(e->height * e->width * C));
    __atomic_store_n(&ds->cache_flags[i], CACHE_FILLED, __ATOMIC_RELEASE);
    return SSLC_OK;
}

sslc_status sslc_dataset_decode(const sslc_dataset *ds, int64_t i, sslc_image *out,
                                int (*choose_scale)(void *ctx, int64_t h, int64_t w), void *ctx,
                                int *scale_out)
{
    return decode_item(ds, i, out, choose_scale, ctx, scale_out, NULL);
}

sslc_status sslc_dataset_decode_window(const sslc_dataset *ds, int64_t i, const int64_t window[4],
                                       sslc_image *out)
{
    return decode_item(ds, i, out, NULL, NULL, NULL, window);
}

sslc_status sslc_dataset_decode_into(const sslc_dataset *ds, int64_t i, uint8_t *buf, size_t cap,
                                     int64_t *height, int64_t *width)
{
    sslc_image img;
    sslc_status st = sslc_dataset_decode(ds, i, &img, NULL, NULL, NULL);
    if (st != SSLC_OK)
        return st;
    size_t need = (size_t)(img.height * img.width * img.channels);
    if (need > cap) {
        sslc_image_free(&img);
        char name[512];
        return sslc_error(SSLC_ERR_INVALID, "dataset: '%s' needs %zu bytes, buffer has %zu",
                          sslc_dataset_name(ds, i, name, sizeof name), need, cap);
    }
    memcpy(buf, img.data, need);
    *height = img.height;
    *width = img.width;
    sslc_image_free(&img);
    return SSLC_OK;
}
