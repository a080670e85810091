#include "data/subset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"

// RNG stream tags, so subsets do not share draws with augmentation.
enum { SUBSET_TAG = 0x5b5e7, SPLIT_TAG = 0x5b117 };

void sslc_subset_free(sslc_subset *s)
{
    if (!s)
        return;
    free(s->indices);
    s->indices = NULL;
    s->n = 0;
}

int64_t sslc_subset_per_class(double fraction, int64_t total, int64_t classes)
{
    if (classes <= 0)
        return 0;
    int64_t k = (int64_t)llround(fraction * (double)total / (double)classes);
    return k < 1 ? 1 : k;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// members: (count,) the indices of one class in increasing order; shuffled
// in place with a stream keyed by (seed, tag, class).
static void shuffle_class(int64_t *members, int64_t count, uint64_t seed, uint64_t tag, int64_t c)
{
    sslc_rng rng = sslc_rng_make(seed, tag, (uint64_t)c, 0, 0);
    for (int64_t i = count - 1; i > 0; i--) { // Fisher-Yates
        int64_t j = (int64_t)sslc_rng_below(&rng, (uint64_t)(i + 1));
        int64_t t = members[i];
        members[i] = members[j];
        members[j] = t;
    }
}

// Groups idx[0..n) by class: order receives them class by class (each in
// increasing order), start[c] .. start[c+1] delimits class c.
static sslc_status group_by_class(int64_t **order, int64_t **start, const int64_t *idx,
                                  const int64_t *labels_of, int64_t n, int64_t classes,
                                  bool labels_by_position)
{
    *order = sslc_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    *start = sslc_calloc((size_t)classes + 1, sizeof(int64_t));
    if (!*order || !*start)
        return SSLC_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        int64_t y = labels_by_position ? labels_of[i] : labels_of[idx[i]];
        if (y < 0 || y >= classes)
            return sslc_error(SSLC_ERR_INVALID,
                              "subset: image %lld has label %lld, outside [0, %lld)%s",
                              (long long)idx[i], (long long)y, (long long)classes,
                              y < 0 ? " (an unlabeled dataset?)" : "");
        (*start)[y + 1]++;
    }
    for (int64_t c = 0; c < classes; c++)
        (*start)[c + 1] += (*start)[c];
    int64_t *fill = sslc_malloc((size_t)classes * sizeof(int64_t));
    if (!fill)
        return SSLC_ERR_NOMEM;
    memcpy(fill, *start, (size_t)classes * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
        int64_t y = labels_by_position ? labels_of[i] : labels_of[idx[i]];
        (*order)[fill[y]++] = idx[i];
    }
    free(fill);
    return SSLC_OK;
}

sslc_status sslc_subset_balanced(sslc_subset *out, const int64_t *labels, int64_t n,
                                 int64_t classes, int64_t per_class, uint64_t seed)
{
    memset(out, 0, sizeof *out);
    if (classes <= 0 || per_class <= 0 || n <= 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "subset: need images (%lld), classes (%lld) and images per class (%lld)",
                          (long long)n, (long long)classes, (long long)per_class);
    int64_t *all = sslc_malloc((size_t)n * sizeof(int64_t));
    int64_t *order = NULL, *start = NULL;
    sslc_status st = all ? SSLC_OK : SSLC_ERR_NOMEM;
    if (st)
        goto fail;
    for (int64_t i = 0; i < n; i++)
        all[i] = i;
    if ((st = group_by_class(&order, &start, all, labels, n, classes, true)))
        goto fail;
    for (int64_t c = 0; c < classes; c++)
        if (start[c + 1] - start[c] < per_class) {
            st = sslc_error(SSLC_ERR_INVALID,
                            "subset: class %lld has %lld images, fewer than the %lld per class "
                            "asked for",
                            (long long)c, (long long)(start[c + 1] - start[c]),
                            (long long)per_class);
            goto fail;
        }
    out->indices = sslc_malloc((size_t)(classes * per_class) * sizeof(int64_t));
    if (!out->indices) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t c = 0; c < classes; c++) {
        shuffle_class(order + start[c], start[c + 1] - start[c], seed, SUBSET_TAG, c);
        memcpy(out->indices + out->n, order + start[c], (size_t)per_class * sizeof(int64_t));
        out->n += per_class;
    }
    qsort(out->indices, (size_t)out->n, sizeof(int64_t), cmp_i64);
fail:
    free(all);
    free(order);
    free(start);
    if (st)
        sslc_subset_free(out);
    return st;
}

static sslc_status dataset_labels(int64_t **labels, const sslc_dataset *ds, const char *why)
{
    int64_t n = sslc_dataset_count(ds);
    if (sslc_dataset_num_classes(ds) <= 0)
        return sslc_error(SSLC_ERR_INVALID, "%s: the dataset has no labels (use a labelled spec "
                                            "such as fashion-mnist:train or imagefolder:DIR)",
                          why);
    *labels = sslc_malloc((size_t)n * sizeof(int64_t));
    if (!*labels)
        return SSLC_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++)
        (*labels)[i] = sslc_dataset_label(ds, i);
    return SSLC_OK;
}

sslc_status sslc_subset_from_dataset(sslc_subset *out, const sslc_dataset *ds, double fraction,
                                     int64_t per_class, uint64_t seed)
{
    memset(out, 0, sizeof *out);
    int64_t n = sslc_dataset_count(ds), classes = sslc_dataset_num_classes(ds);
    int64_t *labels = NULL;
    sslc_status st = dataset_labels(&labels, ds, "subset");
    if (st)
        return st;
    if (per_class <= 0 && !(fraction > 0.0 && fraction <= 1.0)) {
        free(labels);
        return sslc_error(SSLC_ERR_INVALID, "subset: label fraction %g is not in (0, 1]", fraction);
    }
    if (per_class <= 0 && fraction >= 1.0) { // every image, even when classes are unequal
        out->indices = sslc_malloc((size_t)n * sizeof(int64_t));
        if (!out->indices) {
            free(labels);
            return SSLC_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n; i++)
            out->indices[i] = i;
        out->n = n;
        free(labels);
        return SSLC_OK;
    }
    if (per_class <= 0)
        per_class = sslc_subset_per_class(fraction, n, classes);
    st = sslc_subset_balanced(out, labels, n, classes, per_class, seed);
    free(labels);
    return st;
}

sslc_status sslc_subset_split(sslc_subset *rest, sslc_subset *held_out, const sslc_subset *s,
                              const int64_t *labels, int64_t classes, double fraction,
                              uint64_t seed)
{
    memset(rest, 0, sizeof *rest);
    memset(held_out, 0, sizeof *held_out);
    if (!(fraction > 0.0 && fraction < 1.0))
        return sslc_error(SSLC_ERR_INVALID, "subset: held-out fraction %g is not in (0, 1)",
                          fraction);
    int64_t *order = NULL, *start = NULL;
    sslc_status st = group_by_class(&order, &start, s->indices, labels, s->n, classes, false);
    if (st)
        goto fail;
    rest->indices = sslc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(int64_t));
    held_out->indices = sslc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(int64_t));
    if (!rest->indices || !held_out->indices) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t c = 0; c < classes; c++) {
        int64_t count = start[c + 1] - start[c];
        int64_t k = (int64_t)llround(fraction * (double)count);
        if (k < 1 && count >= 2)
            k = 1;
        if (k >= count)
            k = count - 1 > 0 ? count - 1 : 0;
        shuffle_class(order + start[c], count, seed, SPLIT_TAG, c);
        memcpy(held_out->indices + held_out->n, order + start[c], (size_t)k * sizeof(int64_t));
        held_out->n += k;
        memcpy(rest->indices + rest->n, order + start[c] + k, (size_t)(count - k) * sizeof(int64_t));
        rest->n += count - k;
    }
    qsort(rest->indices, (size_t)rest->n, sizeof(int64_t), cmp_i64);
    qsort(held_out->indices, (size_t)held_out->n, sizeof(int64_t), cmp_i64);
fail:
    free(order);
    free(start);
    if (st) {
        sslc_subset_free(rest);
        sslc_subset_free(held_out);
    }
    return st;
}

sslc_status sslc_subset_save(const sslc_subset *s, const sslc_dataset *ds, const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "subset: cannot write '%s': %s", tmp, strerror(errno));
    fprintf(f, "# sslc label subset: %lld of %lld images, %lld classes\n# index label name\n",
            (long long)s->n, (long long)sslc_dataset_count(ds),
            (long long)sslc_dataset_num_classes(ds));
    char name[4096];
    for (int64_t i = 0; i < s->n; i++)
        fprintf(f, "%lld %lld %s\n", (long long)s->indices[i],
                (long long)sslc_dataset_label(ds, s->indices[i]),
                sslc_dataset_name(ds, s->indices[i], name, sizeof name));
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return sslc_error(SSLC_ERR_IO, "subset: cannot write '%s': %s", path, strerror(errno));
    }
    return SSLC_OK;
}

sslc_status sslc_subset_load(sslc_subset *out, const sslc_dataset *ds, const char *path)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "subset: cannot read '%s': %s", path, strerror(errno));
    int64_t cap = 1024, total = sslc_dataset_count(ds);
    sslc_status st = SSLC_OK;
    out->indices = sslc_malloc((size_t)cap * sizeof(int64_t));
    char line[4400], name[4096];
    int64_t lineno = 0;
    while (out->indices && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        long long idx, label;
        int used = 0;
        if (sscanf(line, "%lld %lld %n", &idx, &label, &used) < 2) {
            st = sslc_error(SSLC_ERR_FORMAT, "subset %s:%lld: expected '<index> <label> <name>'",
                            path, (long long)lineno);
            break;
        }
        if (idx < 0 || idx >= total) {
            st = sslc_error(SSLC_ERR_FORMAT, "subset %s:%lld: index %lld is outside the dataset "
                                             "(%lld images)",
                            path, (long long)lineno, idx, (long long)total);
            break;
        }
        const char *want = sslc_dataset_name(ds, idx, name, sizeof name);
        if (label != sslc_dataset_label(ds, idx) || (line[used] && strcmp(line + used, want))) {
            st = sslc_error(SSLC_ERR_FORMAT,
                            "subset %s:%lld: image %lld is '%s' with label %lld in this dataset, "
                            "not '%s' with label %lld (a list made for another dataset?)",
                            path, (long long)lineno, idx, want,
                            (long long)sslc_dataset_label(ds, idx), line + used, label);
            break;
        }
        if (out->n == cap) {
            cap *= 2;
            int64_t *grown = realloc(out->indices, (size_t)cap * sizeof(int64_t));
            if (!grown) {
                st = sslc_error(SSLC_ERR_NOMEM, "subset: out of memory reading '%s'", path);
                break;
            }
            out->indices = grown;
        }
        out->indices[out->n++] = idx;
    }
    if (!out->indices)
        st = SSLC_ERR_NOMEM;
    fclose(f);
    if (!st && out->n == 0)
        st = sslc_error(SSLC_ERR_FORMAT, "subset %s: lists no images", path);
    if (!st) {
        qsort(out->indices, (size_t)out->n, sizeof(int64_t), cmp_i64);
        for (int64_t i = 1; i < out->n; i++)
            if (out->indices[i] == out->indices[i - 1]) {
                st = sslc_error(SSLC_ERR_FORMAT, "subset %s: image %lld is listed twice", path,
                                (long long)out->indices[i]);
                break;
            }
    }
    if (st)
        sslc_subset_free(out);
    return st;
}
