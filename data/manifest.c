// Manifests: a text list of a dataset's files, labels and classes (or its
// IDX source), so a run reopens exactly the same images and indices
// without rescanning.
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

sslc_status sslc_dataset_save_manifest(const sslc_dataset *ds, const char *path)
{
    return sslc_dataset_write_manifest(ds, path, NULL);
}

sslc_status sslc_dataset_write_manifest(const sslc_dataset *ds, const char *path,
                                        const uint8_t *keep)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write manifest '%s': %s", tmp, strerror(errno));
    fprintf(f, "sslc-manifest 1\nkind %s\nchannels %d\n", sslc_dataset_kind_name(ds),
            ds->channels);
    if (ds->kind == SSLC_DATASET_IDX) {
        fprintf(f, "source %s\n", ds->source);
    } else {
        fprintf(f, "classes %lld\n", (long long)ds->num_classes);
        for (int64_t c = 0; c < ds->num_classes; c++)
            fprintf(f, "class %s\n", ds->class_names[c]);
        int64_t kept = 0;
        for (int64_t i = 0; i < ds->n; i++)
            kept += !keep || keep[i];
        fprintf(f, "items %lld\n", (long long)kept);
        for (int64_t i = 0; i < ds->n; i++)
            if (!keep || keep[i])
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

sslc_status sslc_dataset_open_manifest(sslc_dataset *ds, const char *path,
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
        st = sslc_dataset_open_spec(ds, line + 7, opt, depth + 1);
        goto done;
    }
    ds->kind = !strcmp(word, "imagefolder") ? SSLC_DATASET_IMAGEFOLDER : SSLC_DATASET_FOLDER;
    ds->from_manifest = true;
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
    ds->items = sslc_calloc((size_t)items, sizeof(sslc_dataset_item));
    if (!ds->items)
        BAD("manifest '%s': out of memory", path);
    for (long long i = 0; i < items; i++) {
        int label, h, w, used = 0;
        if (!fgets(line, sizeof line, f) ||
            sscanf(line, "%d %d %d %n", &label, &h, &w, &used) != 3 || used == 0 ||
            label >= (int)classes || label < -1 || h <= 0 || w <= 0)
            BAD("manifest '%s': bad item line %lld", path, i + 1);
        line[strcspn(line, "\n")] = 0;
        sslc_dataset_item *it = &ds->items[i];
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
