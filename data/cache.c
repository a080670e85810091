// The decoded cache: each image decoded once (optionally shrunk so its
// short side is cache_short_side) into one memory-mapped file laid out by
// the scan, so later epochs and runs read pixels from the page cache.
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/dataset_internal.h"
#include "data/resize.h"
#include "src/core/hash.h"
#include "src/core/log.h"

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
    sslc_resize_short_side_dims(h, w, short_side, oh, ow);
}

sslc_status sslc_dataset_open_cache(sslc_dataset *ds, const sslc_dataset_options *opt)
{
    ds->cache_short_side = opt->cache_short_side;
    uint64_t fp = SSLC_HASH64_INIT;
    for (int64_t i = 0; i < ds->n; i++) {
        fp = sslc_hash64(fp, ds->items[i].path, strlen(ds->items[i].path));
        fp = sslc_hash64(fp, &ds->items[i].height, sizeof(int32_t));
        fp = sslc_hash64(fp, &ds->items[i].width, sizeof(int32_t));
    }
    size_t table = (size_t)ds->n * sizeof(sslc_cache_entry);
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
    ds->cache_table = (sslc_cache_entry *)(map + sizeof(cache_header));
    ds->cache_flags = map + flags_at;
    if (!reuse) {
        size_t off = data_at;
        for (int64_t i = 0; i < ds->n; i++) {
            int64_t h, w;
            cached_dims(ds->items[i].height, ds->items[i].width, opt->cache_short_side, &h, &w);
            ds->cache_table[i] = (sslc_cache_entry){off, (uint32_t)h, (uint32_t)w};
            off += (size_t)(h * w * ds->channels);
        }
        memcpy(map, &want, sizeof want);
    }
    int64_t filled = 0;
    for (int64_t i = 0; i < ds->n; i++)
        filled += ds->cache_flags[i] == SSLC_CACHE_FILLED;
    sslc_info("cache '%s': %lld of %lld images already decoded (%.1f MB)", opt->cache_path,
              (long long)filled, (long long)ds->n, (double)total / 1e6);
    return SSLC_OK;
}

void sslc_dataset_close_cache(sslc_dataset *ds)
{
    if (ds->cache_map)
        munmap(ds->cache_map, ds->cache_size);
    if (ds->cache_fd >= 0)
        close(ds->cache_fd);
    ds->cache_map = NULL;
    ds->cache_fd = -1;
}

sslc_status sslc_dataset_cache_read(const sslc_dataset *ds, int64_t i, sslc_image *out)
{
    memset(out, 0, sizeof *out);
    uint8_t flag = __atomic_load_n(&ds->cache_flags[i], __ATOMIC_ACQUIRE);
    const sslc_cache_entry *e = &ds->cache_table[i];
    if (flag == SSLC_CACHE_FILLED) {
        sslc_status st = sslc_image_alloc(out, e->height, e->width, ds->channels);
        if (st == SSLC_OK)
            memcpy(out->data, ds->cache_map + e->offset,
                   (size_t)(e->height * e->width * ds->channels));
        return st;
    }
    if (flag == SSLC_CACHE_BAD)
        return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': marked bad in the cache",
                          ds->items[i].path);
    return SSLC_OK;
}

void sslc_dataset_cache_mark_bad(const sslc_dataset *ds, int64_t i)
{
    __atomic_store_n(&ds->cache_flags[i], SSLC_CACHE_BAD, __ATOMIC_RELEASE);
}

sslc_status sslc_dataset_cache_store(const sslc_dataset *ds, int64_t i, sslc_image *out)
{
    int64_t C = ds->channels;
    const sslc_cache_entry *e = &ds->cache_table[i];
    if (out->height != ds->items[i].height || out->width != ds->items[i].width) {
        sslc_image_free(out);
        return sslc_error(SSLC_ERR_FORMAT, "'%s' changed size since the dataset was scanned",
                          ds->items[i].path);
    }
    if (e->height != out->height || e->width != out->width) {
        sslc_image small;
        sslc_status st = sslc_image_alloc(&small, e->height, e->width, C);
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
    __atomic_store_n(&ds->cache_flags[i], SSLC_CACHE_FILLED, __ATOMIC_RELEASE);
    return SSLC_OK;
}
