// `sslc info`: a checkpoint in a readable form (ckpt_print.h). The header
// comes from sslc_ckpt_read_info_any_version, which also refuses files that
// are not sslc checkpoints; the groups and datasets are walked here with
// HDF5, in the order they were written.
#include "src/cli/ckpt_print.h"

#include <hdf5.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/io/checkpoint.h"
#include "src/nn/params.h"

// One link of a group: a dataset with its type and shape, or something else
// (a sub-group) that is listed by name only.
typedef struct member {
    char *name;
    bool dataset;
    const char *dtype;
    int ndim;
    int64_t dims[SSLC_TENSOR_MAX_DIMS];
    int64_t numel;
} member;

typedef struct members {
    member *items;
    size_t count;
} members;

static const char *dtype_name(hid_t d)
{
    hid_t t = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    H5Tclose(t);
    if (cls == H5T_FLOAT)
        return size == 4 ? "float32" : size == 8 ? "float64" : "float";
    if (cls == H5T_INTEGER)
        return size == 8 ? "int64" : size == 4 ? "int32" : "int";
    return "other";
}

// Fills m's type and shape when g/m->name is a dataset sslc can describe.
static void describe(hid_t g, member *m)
{
    hid_t d = H5Dopen2(g, m->name, H5P_DEFAULT); // a sub-group fails here
    if (d < 0)
        return;
    hid_t space = H5Dget_space(d);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[H5S_MAX_RANK];
    if (nd >= 0 && nd <= SSLC_TENSOR_MAX_DIMS &&
        H5Sget_simple_extent_dims(space, dims, NULL) >= 0) {
        m->dataset = true;
        m->dtype = dtype_name(d);
        m->ndim = nd;
        m->numel = 1;
        // Saturating: a file can declare dimensions whose product overflows
        // (a chunked 2^40 x 2^40 dataset, never written).
        for (int i = 0; i < nd; i++) {
            m->dims[i] = (int64_t)dims[i];
            if (m->dims[i] < 0 || __builtin_mul_overflow(m->numel, m->dims[i], &m->numel))
                m->numel = INT64_MAX;
        }
    }
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(d);
}

static void members_free(members *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof *l);
}

// The links of g in creation order (name order for files that did not
// track it), datasets described; 0 or -1.
static int read_members(hid_t g, members *l)
{
    memset(l, 0, sizeof *l);
    H5G_info_t gi;
    if (H5Gget_info(g, &gi) < 0)
        return -1;
    l->items = calloc(gi.nlinks ? (size_t)gi.nlinks : 1, sizeof *l->items);
    if (!l->items)
        return -1;
    H5_index_t order = H5_INDEX_CRT_ORDER;
    if (gi.nlinks &&
        H5Lget_name_by_idx(g, ".", order, H5_ITER_INC, 0, NULL, 0, H5P_DEFAULT) < 0)
        order = H5_INDEX_NAME;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        ssize_t n = H5Lget_name_by_idx(g, ".", order, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        char *name = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (!name || H5Lget_name_by_idx(g, ".", order, H5_ITER_INC, i, name, (size_t)n + 1,
                                        H5P_DEFAULT) < 0) {
            free(name);
            members_free(l);
            return -1;
        }
        member *m = &l->items[l->count++];
        m->name = name;
        describe(g, m);
    }
    return 0;
}

static void print_count(FILE *out, int64_t n)
{
    // Thousands separators: "11,168,832 values" reads at a glance.
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%" PRId64, n);
    for (int i = 0; i < len; i++) {
        fputc(digits[i], out);
        int left = len - 1 - i;
        if (left > 0 && left % 3 == 0 && digits[i] != '-')
            fputc(',', out);
    }
}

// One group of datasets: a summary line, then (when tensors) each tensor
// with its type and shape. Returns the number of elements.
static int64_t print_tensor_group(FILE *out, hid_t g, const char *label, bool tensors)
{
    members l;
    if (read_members(g, &l) != 0) {
        fprintf(out, "    %-20s (unreadable)\n", label);
        return 0;
    }
    int64_t total = 0, count = 0;
    for (size_t i = 0; i < l.count; i++)
        if (l.items[i].dataset) {
            if (__builtin_add_overflow(total, l.items[i].numel, &total))
                total = INT64_MAX;
            count++;
        }
    fprintf(out, "    %-20s %" PRId64 " tensors, ", label, count);
    print_count(out, total);
    fprintf(out, " values\n");
    for (size_t i = 0; tensors && i < l.count; i++) {
        const member *m = &l.items[i];
        if (!m->dataset)
            continue;
        fprintf(out, "      %-40s %-8s (", m->name, m->dtype);
        for (int k = 0; k < m->ndim; k++)
            fprintf(out, "%s%" PRId64, k ? "," : "", m->dims[k]);
        fprintf(out, ")\n");
    }
    members_free(&l);
    return total;
}

static void print_header(FILE *out, const char *path, const sslc_ckpt_info *info)
{
    struct stat sb = {0};
    if (stat(path, &sb) != 0)
        sb.st_size = 0;
    fprintf(out, "checkpoint %s (", path);
    print_count(out, (int64_t)sb.st_size);
    fprintf(out, " bytes)\n");
    fprintf(out, "  %-14s %" PRId64 "%s, written by sslc %s\n", "format", info->format_version,
            info->format_version == SSLC_CKPT_FORMAT_VERSION ? ""
                                                             : " (this sslc reads only version 1)",
            info->sslc_version);
    fprintf(out, "  %-14s %s\n", "kind", info->kind);
    fprintf(out, "  %-14s %s\n", "method", info->method);
    fprintf(out, "  %-14s epoch %" PRId64 ", step %" PRId64 ", %" PRId64 " samples seen\n",
            "position", info->epoch, info->step, info->samples_seen);
    fprintf(out, "  %-14s %" PRIu64 "\n", "seed", info->seed);
    const sslc_ckpt_attr *arch = sslc_ckpt_info_attr(info, "arch");
    fprintf(out, "  %-14s %s\n", "arch",
            arch && arch->type == SSLC_CKPT_ATTR_STRING ? arch->s : "(none)");
    fprintf(out, "  %-14s", "model");
    for (size_t i = 0; i < info->n_model; i++) {
        const sslc_ckpt_attr *a = &info->model[i];
        fprintf(out, " %s=", a->key);
        switch (a->type) {
        case SSLC_CKPT_ATTR_INT: fprintf(out, "%" PRId64, a->i); break;
        case SSLC_CKPT_ATTR_FLOAT: fprintf(out, "%g", a->f); break;
        case SSLC_CKPT_ATTR_STRING: fprintf(out, "%s", a->s ? a->s : ""); break;
        }
    }
    fprintf(out, "\n");
}

// /optimizer/<part>/<buffer>: one summary line per buffer.
static void print_optimizer(FILE *out, hid_t f, const sslc_ckpt_info *info)
{
    if (!info->optimizer[0]) {
        fprintf(out, "  optimizer      (none)\n");
        return;
    }
    fprintf(out, "  optimizer      %s, step %" PRId64 "\n", info->optimizer, info->optimizer_step);
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    members parts;
    if (g < 0 || read_members(g, &parts) != 0) {
        if (g >= 0)
            H5Gclose(g);
        return;
    }
    for (size_t i = 0; i < parts.count; i++) {
        hid_t pg = H5Gopen2(g, parts.items[i].name, H5P_DEFAULT);
        members bufs;
        if (pg >= 0 && read_members(pg, &bufs) == 0) {
            for (size_t k = 0; k < bufs.count; k++) {
                char label[256];
                snprintf(label, sizeof label, "%s/%s", parts.items[i].name, bufs.items[k].name);
                hid_t bg = H5Gopen2(pg, bufs.items[k].name, H5P_DEFAULT);
                if (bg >= 0) {
                    print_tensor_group(out, bg, label, false);
                    H5Gclose(bg);
                }
            }
            members_free(&bufs);
        }
        if (pg >= 0)
            H5Gclose(pg);
    }
    members_free(&parts);
    H5Gclose(g);
}

// Everything below the header: parts, optimizer, state arrays, config.
static sslc_status print_body(FILE *out, hid_t f, const char *path, const sslc_ckpt_info *info,
                              bool tensors)
{
    members root;
    if (read_members(f, &root) != 0)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot list its groups", path);
    fprintf(out, "  parts\n");
    int64_t grand = 0;
    for (size_t i = 0; i < root.count; i++) {
        const char *n = root.items[i].name;
        if (!strcmp(n, "model") || !strcmp(n, "optimizer") || !strcmp(n, "state"))
            continue;
        hid_t g = H5Gopen2(f, n, H5P_DEFAULT);
        if (g < 0)
            continue;
        if (__builtin_add_overflow(grand, print_tensor_group(out, g, n, tensors), &grand))
            grand = INT64_MAX;
        H5Gclose(g);
    }
    fprintf(out, "    %-20s ", "total");
    print_count(out, grand);
    fprintf(out, " values\n");
    print_optimizer(out, f, info);
    if (H5Lexists(f, "state", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "state", H5P_DEFAULT);
        fprintf(out, "  state\n");
        print_tensor_group(out, g, "arrays", true);
        H5Gclose(g);
    }
    members_free(&root);
    fprintf(out, "  config\n");
    const char *line = info->config;
    while (*line) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(out, "    %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
    return SSLC_OK;
}

sslc_status sslc_ckpt_print(FILE *out, const char *path, bool tensors)
{
    sslc_ckpt_info info;
    sslc_status st = sslc_ckpt_read_info_any_version(path, &info);
    if (st != SSLC_OK)
        return st;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // sub-groups failing to open as datasets are expected
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot open it again to list it", path);
    } else {
        print_header(out, path, &info);
        st = print_body(out, f, path, &info, tensors);
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    sslc_ckpt_info_free(&info);
    return st;
}
