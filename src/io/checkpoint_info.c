// The header of a checkpoint (sslc_ckpt_info): what to build before loading,
// and what `sslc info` shows.
#include <hdf5.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "src/io/checkpoint.h"
#include "src/io/checkpoint_internal.h"
#include "src/io/h5util.h"

typedef struct attr_list {
    sslc_ckpt_attr *items;
    size_t count, cap;
    int failed;
} attr_list;

static herr_t collect_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    attr_list *l = data;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        sslc_ckpt_attr *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->items = grown;
        l->cap = cap;
    }
    sslc_ckpt_attr a = {0};
    a.key = sslc_h5_strdup(name);
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = at >= 0 ? H5Aget_type(at) : -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (at >= 0 && !sslc_h5_attr_is_scalar(at))
        cls = H5T_NO_CLASS; // arrays: not a model option sslc writes; listed as "?"
    int ok = -1;
    if (cls == H5T_INTEGER) {
        a.type = SSLC_CKPT_ATTR_INT;
        ok = H5Aread(at, H5T_NATIVE_INT64, &a.i);
    } else if (cls == H5T_FLOAT) {
        a.type = SSLC_CKPT_ATTR_FLOAT;
        ok = H5Aread(at, H5T_NATIVE_DOUBLE, &a.f);
    } else if (cls == H5T_STRING) {
        a.type = SSLC_CKPT_ATTR_STRING;
        char *s = NULL;
        ok = sslc_h5_read_str_open(at, &s) > 0 ? 0 : -1;
        a.s = s;
    } else if (at >= 0) {
        // Another type (an array written by h5py): shown, never compared.
        a.type = SSLC_CKPT_ATTR_STRING;
        a.s = sslc_h5_strdup("?");
        ok = a.s ? 0 : -1;
    }
    if (t >= 0)
        H5Tclose(t);
    if (at >= 0)
        H5Aclose(at);
    if (ok < 0 || !a.key) {
        free((char *)a.key);
        free((char *)a.s);
        l->failed = 1;
        return -1;
    }
    l->items[l->count++] = a;
    return 0;
}

static void free_attrs(sslc_ckpt_attr *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)a[i].key);
        free((char *)a[i].s);
    }
    free(a);
}

static int list_attrs(hid_t obj, attr_list *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_attr, l) >= 0)
        return 0;
    H5Eclear2(H5E_DEFAULT);
    free_attrs(l->items, l->count);
    memset(l, 0, sizeof *l);
    idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, l) >= 0)
        return 0;
    free_attrs(l->items, l->count);
    memset(l, 0, sizeof *l);
    return -1;
}

static char *str_or_empty(hid_t obj, const char *name)
{
    char *s = NULL;
    if (sslc_h5_read_str(obj, name, &s) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        s = sslc_h5_strdup("");
    }
    return s;
}

static sslc_status fill_info(hid_t f, const char *path, sslc_ckpt_info *info)
{
    info->sslc_version = str_or_empty(f, "sslc_version");
    info->kind = str_or_empty(f, "kind");
    info->method = str_or_empty(f, "method");
    info->config = str_or_empty(f, "config");
    sslc_h5_read_i64(f, "epoch", &info->epoch);
    sslc_h5_read_i64(f, "step", &info->step);
    sslc_h5_read_i64(f, "samples_seen", &info->samples_seen);
    sslc_h5_read_u64(f, "seed", &info->seed);
    if (sslc_h5_exists(f, "model")) {
        hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
        attr_list l;
        int r = g >= 0 ? list_attrs(g, &l) : -1;
        if (g >= 0)
            H5Gclose(g);
        if (r < 0)
            return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: unreadable model attributes",
                              path);
        info->model = l.items;
        info->n_model = l.count;
    }
    if (sslc_h5_exists(f, "optimizer")) {
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        info->optimizer = str_or_empty(g, "name");
        sslc_h5_read_i64(g, "step", &info->optimizer_step);
        H5Gclose(g);
    } else {
        info->optimizer = sslc_h5_strdup("");
    }
    H5Eclear2(H5E_DEFAULT);
    if (!info->sslc_version || !info->kind || !info->method || !info->config || !info->optimizer)
        return SSLC_ERR_NOMEM;
    return SSLC_OK;
}

static sslc_status read_info(const char *path, bool strict, sslc_ckpt_info *info)
{
    memset(info, 0, sizeof *info);
    hid_t f = -1;
    sslc_status st = sslc_ckpt_open_file(path, strict, &f, &info->format_version);
    if (st != SSLC_OK)
        return st;
    st = fill_info(f, path, info);
    H5Fclose(f);
    if (st != SSLC_OK)
        sslc_ckpt_info_free(info);
    return st;
}

sslc_status sslc_ckpt_read_info(const char *path, sslc_ckpt_info *info)
{
    return read_info(path, true, info);
}

sslc_status sslc_ckpt_read_info_any_version(const char *path, sslc_ckpt_info *info)
{
    return read_info(path, false, info);
}

void sslc_ckpt_info_free(sslc_ckpt_info *info)
{
    if (!info)
        return;
    free(info->sslc_version);
    free(info->kind);
    free(info->method);
    free(info->config);
    free(info->optimizer);
    free_attrs(info->model, info->n_model);
    memset(info, 0, sizeof *info);
}

const sslc_ckpt_attr *sslc_ckpt_info_attr(const sslc_ckpt_info *info, const char *key)
{
    for (size_t i = 0; i < info->n_model; i++)
        if (strcmp(info->model[i].key, key) == 0)
            return &info->model[i];
    return NULL;
}
