// IDX files (the MNIST format), plain or gzip-compressed: all images in
// memory, labels from a second file.
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset_internal.h"

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

sslc_status sslc_dataset_open_idx(sslc_dataset *ds, const char *images, const char *labels)
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
    ds->kind = SSLC_DATASET_IDX;
    const char *base = strrchr(images, '/');
    ds->idx_name = strdup(base ? base + 1 : images);
    size_t len = strlen(images) + (labels ? strlen(labels) : 0) + 8;
    ds->source = malloc(len);
    ds->items = sslc_calloc((size_t)ds->n, sizeof(sslc_dataset_item));
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

sslc_status sslc_dataset_idx_decode(const sslc_dataset *ds, int64_t i, sslc_image *out)
{
    int64_t C = ds->channels;
    int64_t px = ds->idx_rows * ds->idx_cols;
    sslc_status st = sslc_image_alloc(out, ds->idx_rows, ds->idx_cols, C);
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
