// Reading checkpoints: open (is it an sslc checkpoint of this version?),
// validate everything against the caller's description, then read.
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/io/checkpoint.h"
#include "src/io/checkpoint_internal.h"
#include "src/io/h5util.h"

// ---------------------------------------------------------------- opening

sslc_status sslc_ckpt_open_file(const char *path, bool strict, hid_t *out, int64_t *version)
{
    sslc_h5_quiet();
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sslc_error(SSLC_ERR_IO, "checkpoint %s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return sslc_error(SSLC_ERR_IO, "checkpoint %s: is a folder, not a file", path);
    if (sb.st_size == 0)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is empty (0 bytes)", path);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is not an HDF5 file (%lld bytes)",
                          path, (long long)sb.st_size);
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0)
        sslc_h5_capture();
    H5Pclose(fapl);
    if (f < 0)
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: is truncated or corrupt (%lld bytes): %s", path,
                          (long long)sb.st_size, sslc_h5_reason());
    int64_t v = 0;
    int got = sslc_h5_read_i64(f, "format_version", &v);
    if (got <= 0) {
        H5Fclose(f);
        H5Eclear2(H5E_DEFAULT);
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: is an HDF5 file but not an sslc checkpoint "
                          "(%s format_version attribute)",
                          path, got == 0 ? "no" : "unreadable");
    }
    if (strict && v != SSLC_CKPT_FORMAT_VERSION) {
        H5Fclose(f);
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: has format version %" PRId64
                          "; this sslc (%s) reads version %d",
                          path, v, SSLC_VERSION, SSLC_CKPT_FORMAT_VERSION);
    }
    *out = f;
    if (version)
        *version = v;
    return SSLC_OK;
}

// ---------------------------------------------------------------- loading

static int same_shape(const sslc_h5_shape *s, int ndim, const int64_t *shape)
{
    if (s->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (s->shape[i] != shape[i])
            return 0;
    return 1;
}

// Checks that loc/name is a dataset of the given type class and shape;
// scalar_ok also accepts a 0-dim dataset for a one-element tensor.
static sslc_status check_dataset(const char *path, const char *what, hid_t loc, const char *name,
                                 int want_int, int ndim, const int64_t *shape, int scalar_ok)
{
    char want[96], have[96];
    if (!sslc_h5_exists(loc, name))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' is missing", path, what, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    sslc_h5_shape s;
    int bad = d < 0 || sslc_h5_get_shape(d, &s) < 0;
    if (bad)
        sslc_h5_capture();
    if (d >= 0)
        H5Dclose(d);
    if (bad) {
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' is not a readable dataset: %s",
                          path, what, name, sslc_h5_reason());
    }
    if (s.ndim > SSLC_TENSOR_MAX_DIMS)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' has %d dimensions", path, what,
                          name, s.ndim);
    if (s.empty)
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: %s '%s' holds no value (an empty dataspace)", path,
                          what, name);
    sslc_h5_format_shape(want, sizeof want, ndim, shape);
    sslc_h5_format_shape(have, sizeof have, s.ndim, s.shape);
    if (!same_shape(&s, ndim, shape) && !(scalar_ok && s.ndim == 0))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' has shape %s, model expects %s",
                          path, what, name, have, want);
    H5T_class_t cls = want_int ? H5T_INTEGER : H5T_FLOAT;
    if (s.cls != cls)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' holds %s, expected %s", path,
                          what, name, s.cls == H5T_INTEGER ? "integers" : "non-float data",
                          want_int ? "int64" : "float32");
    return SSLC_OK;
}

static sslc_status check_part(const char *path, hid_t file, const sslc_ckpt_part *part)
{
    if (!sslc_h5_exists(file, part->name))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no part '%s'", path, part->name);
    hid_t g = H5Gopen2(file, part->name, H5P_DEFAULT);
    if (g < 0)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: '%s' is not a group", path, part->name);
    char what[128];
    snprintf(what, sizeof what, "%s tensor", part->name);
    const sslc_params *p = part->params;
    sslc_status st = SSLC_OK;
    for (int64_t i = 0; i < p->count && st == SSLC_OK; i++) {
        const sslc_tensor *t = &p->tensors[i];
        int want_int = (t->flags & SSLC_TENSOR_INT64) != 0;
        st = check_dataset(path, what, g, t->name, want_int, t->ndim, t->shape,
                           sslc_ckpt_is_int_scalar(t));
    }
    sslc_h5_names names;
    if (st == SSLC_OK && sslc_h5_list_names(g, &names) != 0)
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot list group '%s'", path,
                        part->name);
    else if (st == SSLC_OK) {
        // strict=True, as PyTorch loads: a tensor the model lacks means the
        // checkpoint is of another model.
        for (size_t i = 0; i < names.count && st == SSLC_OK; i++)
            if (!sslc_params_find(p, names.names[i]))
                st = sslc_error(SSLC_ERR_FORMAT,
                                "checkpoint %s: %s '%s' is not in the model (%" PRId64
                                " tensors in the file, %" PRId64 " in the model)",
                                path, what, names.names[i], (int64_t)names.count, p->count);
        sslc_h5_names_free(&names);
    }
    H5Gclose(g);
    return st;
}

// The shortest of %.15g / %.17g that reads back as v: "0.2", not
// "0.20000000000000001", yet distinct values never print the same.
static void float_text(double v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, cap, "%.17g", v);
}

static int attr_equal(hid_t g, const sslc_ckpt_attr *a, char *have, size_t cap)
{
    int got = 0, eq = 0;
    switch (a->type) {
    case SSLC_CKPT_ATTR_INT: {
        int64_t v = 0;
        got = sslc_h5_read_i64(g, a->key, &v);
        if (got > 0) {
            snprintf(have, cap, "%" PRId64, v);
            eq = v == a->i;
        }
        break;
    }
    case SSLC_CKPT_ATTR_FLOAT: {
        double v = 0;
        got = sslc_h5_read_f64(g, a->key, &v);
        if (got > 0) {
            float_text(v, have, cap);
            eq = v == a->f;
        }
        break;
    }
    case SSLC_CKPT_ATTR_STRING: {
        char *v = NULL;
        got = sslc_h5_read_str(g, a->key, &v);
        if (got > 0) {
            snprintf(have, cap, "%s", v);
            eq = strcmp(v, a->s ? a->s : "") == 0;
        }
        free(v);
        break;
    }
    }
    if (got <= 0) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(have, cap, "%s", got == 0 ? "(absent)" : "(unreadable)");
    }
    return eq;
}

static void attr_text(const sslc_ckpt_attr *a, char *buf, size_t cap)
{
    switch (a->type) {
    case SSLC_CKPT_ATTR_INT: snprintf(buf, cap, "%" PRId64, a->i); break;
    case SSLC_CKPT_ATTR_FLOAT: float_text(a->f, buf, cap); break;
    case SSLC_CKPT_ATTR_STRING: snprintf(buf, cap, "%s", a->s ? a->s : ""); break;
    }
}

// Lists "key=file vs key=here" for every model attribute that differs.
static void model_mismatch(hid_t file, const sslc_ckpt *c, char *out, size_t cap)
{
    out[0] = '\0';
    if (!c->n_model)
        return;
    hid_t g = sslc_h5_exists(file, "model") ? H5Gopen2(file, "model", H5P_DEFAULT) : -1;
    size_t used = 0;
    for (size_t i = 0; i < c->n_model; i++) {
        char have[128] = "(absent)", want[128];
        if (g >= 0 && attr_equal(g, &c->model[i], have, sizeof have))
            continue;
        attr_text(&c->model[i], want, sizeof want);
        if (used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s%s %s in the file, %s here",
                                     used ? ", " : "", c->model[i].key, have, want);
    }
    if (g >= 0)
        H5Gclose(g);
}

static sslc_status check_optimizer(const char *path, hid_t file, const sslc_ckpt *c)
{
    if (!sslc_h5_exists(file, "optimizer"))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no optimizer state", path);
    hid_t g = H5Gopen2(file, "optimizer", H5P_DEFAULT);
    char *name = NULL;
    sslc_status st = SSLC_OK;
    if (sslc_h5_read_str(g, "name", &name) <= 0 || strcmp(name, c->optimizer) != 0)
        st = sslc_error(SSLC_ERR_FORMAT,
                        "checkpoint %s: optimizer state is for '%s', this run uses '%s'", path,
                        name ? name : "(unknown)", c->optimizer);
    free(name);
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        char sub[256], what[300];
        snprintf(sub, sizeof sub, "%s/%s", b->part, b->name);
        snprintf(what, sizeof what, "optimizer %s tensor", sub);
        if (H5Lexists(g, b->part, H5P_DEFAULT) <= 0 || H5Lexists(g, sub, H5P_DEFAULT) <= 0) {
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no optimizer buffer %s", path,
                            sub);
            break;
        }
        hid_t bg = H5Gopen2(g, sub, H5P_DEFAULT);
        const sslc_params *p = sslc_ckpt_find_part(c, b->part)->params;
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind == SSLC_TENSOR_PARAM)
                st = check_dataset(path, what, bg, t->name, 0, t->ndim, t->shape, 0);
        }
        H5Gclose(bg);
    }
    H5Eclear2(H5E_DEFAULT);
    H5Gclose(g);
    return st;
}

static sslc_status check_arrays(const char *path, hid_t file, const sslc_ckpt *c)
{
    if (!sslc_h5_exists(file, "state"))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no state arrays (wanted '%s')",
                          path, c->arrays[0].name);
    hid_t g = H5Gopen2(file, "state", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        st = check_dataset(path, "state array", g, a->name, a->dtype == SSLC_CKPT_I64, a->ndim,
                           a->shape, 0);
    }
    H5Gclose(g);
    return st;
}

static int read_dataset(hid_t loc, const char *name, hid_t mem_type, void *data)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t r = d >= 0 ? H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (r < 0)
        sslc_h5_capture();
    if (d >= 0)
        H5Dclose(d);
    return r < 0 ? -1 : 0;
}

static sslc_status read_part(const char *path, hid_t file, const sslc_ckpt_part *part)
{
    hid_t g = H5Gopen2(file, part->name, H5P_DEFAULT);
    const sslc_params *p = part->params;
    sslc_status st = SSLC_OK;
    for (int64_t i = 0; i < p->count && st == SSLC_OK; i++) {
        const sslc_tensor *t = &p->tensors[i];
        float *x = sslc_params_data(p, t);
        int bad;
        if (t->flags & SSLC_TENSOR_INT64) {
            int64_t *v = sslc_malloc((size_t)t->numel * sizeof *v);
            if (!v) {
                st = SSLC_ERR_NOMEM;
                break;
            }
            bad = read_dataset(g, t->name, H5T_NATIVE_INT64, v);
            for (int64_t k = 0; k < t->numel && !bad; k++)
                x[k] = (float)v[k];
            free(v);
        } else {
            bad = read_dataset(g, t->name, H5T_NATIVE_FLOAT, x);
        }
        if (bad)
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot read %s tensor '%s': %s",
                            path, part->name, t->name, sslc_h5_reason());
    }
    H5Gclose(g);
    return st;
}

static sslc_status read_optimizer(const char *path, hid_t file, sslc_ckpt *c)
{
    hid_t g = H5Gopen2(file, "optimizer", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    if (sslc_h5_read_i64(g, "step", &c->optimizer_step) <= 0)
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: optimizer has no step", path);
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        char sub[256];
        snprintf(sub, sizeof sub, "%s/%s", b->part, b->name);
        hid_t bg = H5Gopen2(g, sub, H5P_DEFAULT);
        const sslc_params *p = sslc_ckpt_find_part(c, b->part)->params;
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind == SSLC_TENSOR_PARAM &&
                read_dataset(bg, t->name, H5T_NATIVE_FLOAT, b->data + t->offset) < 0)
                st = sslc_error(SSLC_ERR_FORMAT,
                                "checkpoint %s: cannot read optimizer %s tensor '%s': %s", path,
                                sub, t->name, sslc_h5_reason());
        }
        H5Gclose(bg);
    }
    H5Gclose(g);
    return st;
}

static sslc_status read_arrays(const char *path, hid_t file, const sslc_ckpt *c)
{
    hid_t g = H5Gopen2(file, "state", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        hid_t mt = a->dtype == SSLC_CKPT_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
        if (read_dataset(g, a->name, mt, a->data) < 0)
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot read state array '%s': %s",
                            path, a->name, sslc_h5_reason());
    }
    H5Gclose(g);
    return st;
}

sslc_status sslc_ckpt_load(const char *path, sslc_ckpt *c)
{
    sslc_status st = sslc_ckpt_check_description(c);
    if (st != SSLC_OK)
        return sslc_error_prefix(st, "checkpoint %s", path);
    hid_t f = -1;
    st = sslc_ckpt_open_file(path, true, &f, NULL);
    if (st != SSLC_OK)
        return st;
    char *method = NULL;
    if (c->method && (sslc_h5_read_str(f, "method", &method) <= 0 || strcmp(method, c->method))) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is from a '%s' run, this run is '%s'",
                        path, method ? method : "(unknown)", c->method);
        goto done;
    }
    // Validate everything before reading anything. A differing model
    // attribute (arch, width) is reported together with the first tensor
    // that it breaks, or alone when every tensor still fits.
    char mismatch[768];
    model_mismatch(f, c, mismatch, sizeof mismatch);
    for (size_t i = 0; i < c->n_parts && st == SSLC_OK; i++)
        st = check_part(path, f, &c->parts[i]);
    if (mismatch[0]) {
        if (st != SSLC_OK) {
            char detail[1024];
            snprintf(detail, sizeof detail, "%s", sslc_error_message());
            const char *tail = strstr(detail, ": ");
            st = sslc_error(st, "checkpoint %s: is a different model (%s): %s", path, mismatch,
                            tail ? tail + 2 : detail);
        } else {
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is a different model (%s)", path,
                            mismatch);
        }
        goto done;
    }
    if (st == SSLC_OK && c->optimizer)
        st = check_optimizer(path, f, c);
    if (st == SSLC_OK && c->n_arrays)
        st = check_arrays(path, f, c);
    if (st != SSLC_OK)
        goto done;

    if (sslc_h5_read_i64(f, "epoch", &c->epoch) <= 0 ||
        sslc_h5_read_i64(f, "step", &c->step) <= 0 ||
        sslc_h5_read_i64(f, "samples_seen", &c->samples_seen) <= 0 ||
        sslc_h5_read_u64(f, "seed", &c->seed) <= 0) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: training position is missing", path);
        goto done;
    }
    for (size_t i = 0; i < c->n_parts && st == SSLC_OK; i++)
        st = read_part(path, f, &c->parts[i]);
    if (st == SSLC_OK && c->optimizer)
        st = read_optimizer(path, f, c);
    if (st == SSLC_OK && c->n_arrays)
        st = read_arrays(path, f, c);
done:
    free(method);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return st;
}
