// sslc scan's work: open the dataset (the header scan), decode every
// accepted image fully in parallel, and summarise.
#include "data/scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"
#include "data/image.h"
#include "src/core/hash.h"
#include "src/core/log.h"
#include "src/core/threads.h"

typedef struct item_result {
    uint64_t hash; // of the file's bytes (IDX: the image's pixels)
    int64_t bytes;
    int32_t height, width;
    int8_t format, channels;
    sslc_status status;
    char *reason; // failures: why (malloc'd)
} item_result;

struct sslc_scan {
    sslc_scan_summary sum;
    char *spec;
    sslc_dataset *ds;
    item_result *res; // (ds->n)
    uint8_t *ok;      // (ds->n) decoded fully
    // Every skipped file in scan order: the header scan's, then the
    // decode failures in dataset order.
    int64_t n_skips;
    const char **skip_paths, **skip_reasons; // borrowed from ds and res
    sslc_scan_reason *reasons;
    sslc_scan_duplicate *dups;
    int64_t *class_counts;
};

static const int64_t bucket_limits[SSLC_SCAN_SIZE_BUCKETS] = {32, 64, 128, 256, 512, 1024, 2048, 0};

int64_t sslc_scan_bucket_limit(int b)
{
    return b >= 0 && b < SSLC_SCAN_SIZE_BUCKETS ? bucket_limits[b] : 0;
}

const char *sslc_scan_format_name(int format)
{
    static const char *names[SSLC_SCAN_FORMATS] = {"PNG", "JPEG", "IDX"};
    return format >= 0 && format < SSLC_SCAN_FORMATS ? names[format] : "?";
}

void sslc_scan_options_default(sslc_scan_options *opt)
{
    memset(opt, 0, sizeof *opt);
    sslc_dataset_options_default(&opt->dataset);
    opt->examples = 3;
}

// Reads, probes and decodes one file; the result says what it is or why not.
static void check_file(const char *path, int64_t max_pixels, bool hash, item_result *r)
{
    uint8_t *bytes = NULL;
    size_t size = 0;
    sslc_status st = sslc_file_read(path, &bytes, &size);
    if (st == SSLC_OK) {
        r->bytes = (int64_t)size;
        if (hash)
            r->hash = sslc_hash64(SSLC_HASH64_INIT, bytes, size);
        r->format = sslc_image_sniff(bytes, size) == SSLC_IMAGE_PNG ? SSLC_SCAN_PNG
                                                                     : SSLC_SCAN_JPEG;
        // channels 0: the file's own, the cheapest full decode.
        sslc_decode_options dopt = {.channels = 0, .max_pixels = max_pixels};
        int64_t h = 0, w = 0, c = 0;
        st = sslc_image_probe(bytes, size, path, &dopt, &h, &w, &c);
        if (st == SSLC_OK) {
            sslc_image img;
            st = sslc_image_decode(&img, bytes, size, path, &dopt, NULL);
            sslc_image_free(&img);
        }
        r->height = (int32_t)h;
        r->width = (int32_t)w;
        r->channels = (int8_t)c;
    }
    free(bytes);
    r->status = st;
    if (st != SSLC_OK && st != SSLC_ERR_NOMEM) {
        char why[1024];
        r->reason = strdup(sslc_dataset_reason(why, sizeof why, sslc_error_message(), path));
        if (!r->reason)
            r->status = SSLC_ERR_NOMEM;
    }
}

static void check_idx(const sslc_dataset *ds, int64_t i, bool hash, item_result *r)
{
    int64_t px = ds->idx_rows * ds->idx_cols * ds->idx_channels;
    r->bytes = px;
    if (hash)
        r->hash = sslc_hash64(SSLC_HASH64_INIT, ds->idx_pixels + i * px, (size_t)px);
    r->format = SSLC_SCAN_IDX;
    r->height = (int32_t)ds->idx_rows;
    r->width = (int32_t)ds->idx_cols;
    r->channels = (int8_t)ds->idx_channels;
    r->status = SSLC_OK;
}

static void header_progress(void *ctx, int64_t done, int64_t total)
{
    const sslc_scan_options *opt = ctx;
    opt->progress(opt->progress_ctx, "reading headers", done, total);
}

// The group key of a reason: numbers replaced by N ("0x1f" by "0xN").
static void reason_key(char *out, size_t cap, const char *reason)
{
    size_t o = 0;
    for (const char *p = reason; *p && o + 2 < cap;) {
        if (p[0] == '0' && p[1] == 'x' && p[2] && strchr("0123456789abcdefABCDEF", p[2])) {
            out[o++] = '0';
            out[o++] = 'x';
            if (o + 1 < cap)
                out[o++] = 'N';
            for (p += 2; *p && strchr("0123456789abcdefABCDEF", *p); p++)
                ;
        } else if (*p >= '0' && *p <= '9') {
            out[o++] = 'N';
            while (*p >= '0' && *p <= '9')
                p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

typedef struct group {
    char *key, *first; // the first member's exact reason
    bool varied;       // members differ (in numbers): show the key
    int64_t count, order;
    int64_t n_examples;
    char **examples;
} group;

static int cmp_group(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static sslc_status group_reasons(sslc_scan *s, int examples)
{
    group *g = NULL;
    int64_t n = 0, cap = 0;
    sslc_status st = SSLC_OK;
    for (int64_t k = 0; k < s->n_skips && st == SSLC_OK; k++) {
        char key[1024];
        reason_key(key, sizeof key, s->skip_reasons[k]);
        int64_t j = 0;
        while (j < n && strcmp(g[j].key, key))
            j++;
        if (j == n) {
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                group *p = realloc(g, (size_t)cap * sizeof *g);
                if (!p) {
                    st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
                    break;
                }
                g = p;
            }
            g[n] = (group){.key = strdup(key), .first = strdup(s->skip_reasons[k]), .order = k,
                           .examples = calloc((size_t)examples, sizeof(char *))};
            if (!g[n].key || !g[n].first || !g[n].examples) {
                free(g[n].key), free(g[n].first), free(g[n].examples);
                st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
                break;
            }
            n++;
        }
        group *gr = &g[j];
        gr->count++;
        gr->varied |= strcmp(gr->first, s->skip_reasons[k]) != 0;
        if (gr->n_examples < examples) {
            gr->examples[gr->n_examples] = strdup(s->skip_paths[k]);
            if (!gr->examples[gr->n_examples])
                st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
            else
                gr->n_examples++;
        }
    }
    if (n)
        qsort(g, (size_t)n, sizeof *g, cmp_group);
    s->reasons = calloc((size_t)(n ? n : 1), sizeof *s->reasons);
    if (!s->reasons && st == SSLC_OK)
        st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
    for (int64_t j = 0; j < n; j++) {
        if (s->reasons) {
            s->reasons[j] = (sslc_scan_reason){.reason = g[j].varied ? g[j].key : g[j].first,
                                               .count = g[j].count,
                                               .n_examples = g[j].n_examples,
                                               .examples = g[j].examples};
            free(g[j].varied ? g[j].first : g[j].key);
        } else {
            free(g[j].key), free(g[j].first);
            for (int64_t e = 0; e < g[j].n_examples; e++)
                free(g[j].examples[e]);
            free(g[j].examples);
        }
    }
    free(g);
    s->sum.reasons = s->reasons;
    s->sum.n_reasons = s->reasons ? n : 0;
    return st;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct hash_entry {
    uint64_t hash;
    int64_t bytes, index;
} hash_entry;

static int cmp_hash(const void *a, const void *b)
{
    const hash_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static sslc_status find_duplicates(sslc_scan *s)
{
    const sslc_dataset *ds = s->ds;
    hash_entry *e = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *e);
    if (!e)
        return sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++)
        if (s->ok[i])
            e[m++] = (hash_entry){s->res[i].hash, s->res[i].bytes, i};
    qsort(e, (size_t)m, sizeof *e, cmp_hash);
    int64_t groups = 0;
    for (int64_t a = 0, b; a < m; a = b) {
        for (b = a + 1; b < m && e[b].hash == e[a].hash && e[b].bytes == e[a].bytes; b++)
            ;
        groups += b - a > 1;
    }
    s->dups = calloc((size_t)(groups ? groups : 1), sizeof *s->dups);
    int64_t *first = malloc((size_t)(groups ? groups : 1) * sizeof *first);
    sslc_status st = s->dups && first ? SSLC_OK : sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
    int64_t g = 0;
    for (int64_t a = 0, b; a < m && st == SSLC_OK; a = b) {
        for (b = a + 1; b < m && e[b].hash == e[a].hash && e[b].bytes == e[a].bytes; b++)
            ;
        if (b - a < 2)
            continue;
        sslc_scan_duplicate *d = &s->dups[g];
        first[g++] = e[a].index;
        d->paths = calloc((size_t)(b - a), sizeof(char *));
        if (!d->paths) {
            st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
            break;
        }
        for (int64_t k = a; k < b; k++) {
            char name[4096];
            d->paths[d->count] = strdup(sslc_dataset_name(ds, e[k].index, name, sizeof name));
            if (!d->paths[d->count]) {
                st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
                break;
            }
            d->count++;
        }
        s->sum.duplicate_files += d->count - 1;
    }
    // Order the groups by the dataset index of their first file.
    for (int64_t i = 1; i < g; i++)
        for (int64_t j = i; j > 0 && first[j - 1] > first[j]; j--) {
            int64_t t = first[j];
            first[j] = first[j - 1], first[j - 1] = t;
            sslc_scan_duplicate d = s->dups[j];
            s->dups[j] = s->dups[j - 1], s->dups[j - 1] = d;
        }
    free(first);
    free(e);
    s->sum.duplicates = s->dups;
    s->sum.n_duplicates = g;
    s->sum.duplicates_checked = true;
    return st;
}

// Formats, channels, sizes and classes of the accepted images.
static sslc_status summarise(sslc_scan *s)
{
    const sslc_dataset *ds = s->ds;
    sslc_scan_summary *sum = &s->sum;
    int64_t *hs = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(int64_t));
    int64_t *ws = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(int64_t));
    s->class_counts = calloc((size_t)(ds->num_classes ? ds->num_classes : 1), sizeof(int64_t));
    if (!hs || !ws || !s->class_counts) {
        free(hs), free(ws);
        return sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
    }
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        if (!s->ok[i])
            continue;
        const item_result *r = &s->res[i];
        sum->formats[r->format]++;
        if (r->channels == 1)
            sum->gray++;
        else
            sum->colour++;
        int64_t side = r->height < r->width ? r->height : r->width;
        int b = 0;
        while (b < SSLC_SCAN_SIZE_BUCKETS - 1 && side >= bucket_limits[b])
            b++;
        sum->short_side[b]++;
        sum->bytes += r->bytes;
        hs[m] = r->height;
        ws[m++] = r->width;
        int32_t label = ds->items[i].label;
        if (label >= 0 && label < ds->num_classes)
            s->class_counts[label]++;
    }
    if (m) {
        qsort(hs, (size_t)m, sizeof(int64_t), cmp_i64);
        qsort(ws, (size_t)m, sizeof(int64_t), cmp_i64);
        sum->height_min = hs[0], sum->height_median = hs[(m - 1) / 2], sum->height_max = hs[m - 1];
        sum->width_min = ws[0], sum->width_median = ws[(m - 1) / 2], sum->width_max = ws[m - 1];
    }
    free(hs);
    free(ws);
    sum->num_classes = ds->num_classes;
    sum->class_names = (const char *const *)ds->class_names;
    sum->class_counts = s->class_counts;
    return SSLC_OK;
}

sslc_status sslc_scan_run(sslc_scan **out, const char *spec, const sslc_scan_options *opt_in)
{
    *out = NULL;
    sslc_scan_options opt;
    if (opt_in)
        opt = *opt_in;
    else
        sslc_scan_options_default(&opt);
    if (opt.examples <= 0)
        opt.examples = 3;
    const double start = sslc_now();
    sslc_scan *s = calloc(1, sizeof *s);
    if (!s)
        return sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
    sslc_dataset_options dopt = opt.dataset;
    // The scan decodes everything itself and reports skipped files grouped.
    dopt.verify = false;
    dopt.strict = false;
    dopt.quiet = true;
    dopt.cache_path = NULL;
    dopt.progress = opt.progress ? header_progress : NULL;
    dopt.progress_ctx = &opt;
    sslc_status st = sslc_dataset_open_ex(&s->ds, spec, &dopt, true);
    if (st != SSLC_OK)
        goto fail;
    sslc_dataset *ds = s->ds;
    s->spec = strdup(spec);
    s->res = calloc((size_t)(ds->n ? ds->n : 1), sizeof *s->res);
    s->ok = calloc((size_t)(ds->n ? ds->n : 1), 1);
    s->skip_paths = calloc((size_t)(ds->skipped + ds->n + 1), sizeof(char *));
    s->skip_reasons = calloc((size_t)(ds->skipped + ds->n + 1), sizeof(char *));
    if (!s->spec || !s->res || !s->ok || !s->skip_paths || !s->skip_reasons) {
        st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory");
        goto fail;
    }
    int64_t done = 0;
    const int64_t n = ds->n;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < n; i++) {
        if (ds->kind == SSLC_DATASET_IDX)
            check_idx(ds, i, opt.duplicates, &s->res[i]);
        else
            check_file(ds->items[i].path, ds->max_pixels_limit, opt.duplicates, &s->res[i]);
        int64_t now = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
        if (opt.progress && sslc_thread_index() == 0)
            opt.progress(opt.progress_ctx, "decoding", now, n);
    }
    if (opt.progress)
        opt.progress(opt.progress_ctx, "decoding", n, n);
    for (int64_t k = 0; k < ds->skipped; k++) {
        s->skip_paths[s->n_skips] = ds->skip_paths[k];
        s->skip_reasons[s->n_skips++] = ds->skip_reasons[k];
    }
    for (int64_t i = 0; i < n; i++) {
        const item_result *r = &s->res[i];
        if (r->status == SSLC_ERR_NOMEM) {
            st = sslc_error(SSLC_ERR_NOMEM, "scan: out of memory decoding '%s'",
                            ds->items[i].path);
            goto fail;
        }
        s->ok[i] = r->status == SSLC_OK;
        if (!s->ok[i]) {
            s->skip_paths[s->n_skips] = ds->items[i].path;
            s->skip_reasons[s->n_skips++] = r->reason;
        }
    }
    sslc_scan_summary *sum = &s->sum;
    sum->spec = s->spec;
    sum->kind = sslc_dataset_kind_name(ds);
    sum->files = ds->n + ds->skipped;
    sum->skipped = s->n_skips;
    sum->accepted = sum->files - sum->skipped;
    sum->skipped_links = ds->skipped_links;
    if ((st = summarise(s)) || (st = group_reasons(s, opt.examples)) ||
        (opt.duplicates && (st = find_duplicates(s))))
        goto fail;
    sum->seconds = sslc_now() - start;
    *out = s;
    return SSLC_OK;
fail:
    sslc_scan_destroy(s);
    return st;
}

const sslc_scan_summary *sslc_scan_get_summary(const sslc_scan *s) { return &s->sum; }

const char *sslc_scan_skipped_file(const sslc_scan *s, int64_t k, const char **reason)
{
    if (k < 0 || k >= s->n_skips) {
        if (reason)
            *reason = NULL;
        return NULL;
    }
    if (reason)
        *reason = s->skip_reasons[k];
    return s->skip_paths[k];
}

sslc_status sslc_scan_save_manifest(const sslc_scan *s, const char *path)
{
    if (s->sum.accepted == 0)
        return sslc_error(SSLC_ERR_INVALID, "scan: no manifest written to '%s': '%s' has no "
                          "usable image", path, s->spec);
    return sslc_dataset_write_manifest(s->ds, path, s->ok);
}

// s as a JSON string: quotes, backslashes and control characters escaped.
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

sslc_status sslc_scan_write_json(const sslc_scan *s, const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    const sslc_scan_summary *m = &s->sum;
    fprintf(f, "{\n  \"dataset\": ");
    json_string(f, m->spec);
    fprintf(f, ",\n  \"kind\": \"%s\",\n  \"files\": %lld,\n  \"accepted\": %lld,\n"
               "  \"skipped\": %lld,\n  \"formats\": {",
            m->kind, (long long)m->files, (long long)m->accepted, (long long)m->skipped);
    for (int k = 0; k < SSLC_SCAN_FORMATS; k++)
        fprintf(f, "%s\"%s\": %lld", k ? ", " : "", sslc_scan_format_name(k),
                (long long)m->formats[k]);
    fprintf(f, "},\n  \"channels\": {\"gray\": %lld, \"colour\": %lld},\n"
               "  \"bytes\": %lld,\n  \"short_side\": [",
            (long long)m->gray, (long long)m->colour, (long long)m->bytes);
    for (int b = 0; b < SSLC_SCAN_SIZE_BUCKETS; b++) {
        long long lo = b ? (long long)bucket_limits[b - 1] : 0;
        fprintf(f, "%s{\"min\": %lld, ", b ? ", " : "", lo);
        if (bucket_limits[b])
            fprintf(f, "\"below\": %lld, ", (long long)bucket_limits[b]);
        fprintf(f, "\"count\": %lld}", (long long)m->short_side[b]);
    }
    fprintf(f, "],\n  \"height\": {\"min\": %lld, \"median\": %lld, \"max\": %lld},\n"
               "  \"width\": {\"min\": %lld, \"median\": %lld, \"max\": %lld},\n  \"classes\": [",
            (long long)m->height_min, (long long)m->height_median, (long long)m->height_max,
            (long long)m->width_min, (long long)m->width_median, (long long)m->width_max);
    for (int64_t c = 0; c < m->num_classes; c++) {
        fprintf(f, "%s{\"label\": %lld, \"name\": ", c ? ", " : "", (long long)c);
        if (m->class_names)
            json_string(f, m->class_names[c]);
        else
            fprintf(f, "null");
        fprintf(f, ", \"count\": %lld}", (long long)m->class_counts[c]);
    }
    fprintf(f, "],\n  \"skipped_by_reason\": [");
    for (int64_t r = 0; r < m->n_reasons; r++) {
        fprintf(f, "%s\n    {\"reason\": ", r ? "," : "");
        json_string(f, m->reasons[r].reason);
        fprintf(f, ", \"count\": %lld}", (long long)m->reasons[r].count);
    }
    fprintf(f, "%s],\n  \"skipped_files\": [", m->n_reasons ? "\n  " : "");
    for (int64_t k = 0; k < s->n_skips; k++) {
        fprintf(f, "%s\n    {\"path\": ", k ? "," : "");
        json_string(f, s->skip_paths[k]);
        fprintf(f, ", \"reason\": ");
        json_string(f, s->skip_reasons[k]);
        fputc('}', f);
    }
    fprintf(f, "%s],\n  \"duplicates\": ", s->n_skips ? "\n  " : "");
    if (!m->duplicates_checked) {
        fprintf(f, "null");
    } else {
        fputc('[', f);
        for (int64_t g = 0; g < m->n_duplicates; g++) {
            fprintf(f, "%s\n    [", g ? "," : "");
            for (int64_t k = 0; k < m->duplicates[g].count; k++) {
                fprintf(f, "%s", k ? ", " : "");
                json_string(f, m->duplicates[g].paths[k]);
            }
            fputc(']', f);
        }
        fprintf(f, "%s]", m->n_duplicates ? "\n  " : "");
    }
    fprintf(f, ",\n  \"skipped_links\": %lld,\n  \"seconds\": %.3f\n}\n",
            (long long)m->skipped_links, m->seconds);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return sslc_error(SSLC_ERR_IO, "cannot write '%s'", tmp);
    }
    if (rename(tmp, path) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    return SSLC_OK;
}

void sslc_scan_destroy(sslc_scan *s)
{
    if (!s)
        return;
    for (int64_t i = 0; s->res && s->ds && i < s->ds->n; i++)
        free(s->res[i].reason);
    free(s->res);
    free(s->ok);
    free(s->skip_paths);
    free(s->skip_reasons);
    for (int64_t r = 0; s->reasons && r < s->sum.n_reasons; r++) {
        free(s->reasons[r].reason);
        for (int64_t e = 0; e < s->reasons[r].n_examples; e++)
            free(s->reasons[r].examples[e]);
        free(s->reasons[r].examples);
    }
    free(s->reasons);
    for (int64_t g = 0; s->dups && g < s->sum.n_duplicates; g++) {
        for (int64_t k = 0; k < s->dups[g].count; k++)
            free(s->dups[g].paths[k]);
        free(s->dups[g].paths);
    }
    free(s->dups);
    free(s->class_counts);
    free(s->spec);
    sslc_dataset_destroy(s->ds);
    free(s);
}
