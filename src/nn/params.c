#include "src/nn/params.h"

#include <stdlib.h>
#include <string.h>

void sslc_params_init(sslc_params *p) { memset(p, 0, sizeof *p); }

sslc_status sslc_params_add(sslc_params *p, const char *name, sslc_tensor_kind kind,
                            unsigned flags, int ndim, const int64_t *shape, int64_t *offset)
{
    if (ndim < 1 || ndim > SSLC_TENSOR_MAX_DIMS)
        return sslc_error(SSLC_ERR_INVALID, "params: tensor '%s' has %d dimensions", name, ndim);
    if (strlen(name) >= SSLC_TENSOR_NAME_CAP)
        return sslc_error(SSLC_ERR_INVALID, "params: tensor name '%s' is too long", name);
    if (sslc_params_find(p, name))
        return sslc_error(SSLC_ERR_INVALID, "params: tensor '%s' declared twice", name);
    if (p->values || p->buffers)
        return sslc_error(SSLC_ERR_INVALID, "params: '%s' declared after allocation", name);
    if (p->count == p->capacity) {
        int64_t cap = p->capacity ? 2 * p->capacity : 64;
        sslc_tensor *grown = realloc(p->tensors, (size_t)cap * sizeof *grown);
        if (!grown)
            return sslc_error(SSLC_ERR_NOMEM, "params: out of memory for the tensor table");
        p->tensors = grown;
        p->capacity = cap;
    }
    sslc_tensor *t = &p->tensors[p->count++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->kind = kind;
    t->flags = flags;
    // Start every tensor on a 16-float (64-byte) boundary for SIMD loads.
    int64_t *end = kind == SSLC_TENSOR_PARAM ? &p->n_values : &p->n_buffers;
    t->offset = (*end + 15) / 16 * 16;
    *end = t->offset + t->numel;
    if (offset)
        *offset = t->offset;
    return SSLC_OK;
}

sslc_status sslc_params_alloc(sslc_params *p)
{
    size_t nv = (size_t)p->n_values, nb = (size_t)p->n_buffers;
    p->values = sslc_aligned_alloc(nv * sizeof(float));
    p->grads = sslc_aligned_alloc(nv * sizeof(float));
    p->buffers = sslc_aligned_alloc(nb * sizeof(float));
    if (!p->values || !p->grads || !p->buffers) {
        free(p->values);
        free(p->grads);
        free(p->buffers);
        p->values = p->grads = p->buffers = NULL;
        return sslc_error(SSLC_ERR_NOMEM, "params: out of memory for %zu parameters", nv);
    }
    memset(p->values, 0, nv * sizeof(float));
    memset(p->grads, 0, nv * sizeof(float));
    memset(p->buffers, 0, nb * sizeof(float));
    return SSLC_OK;
}

void sslc_params_free(sslc_params *p)
{
    if (!p)
        return;
    free(p->tensors);
    free(p->values);
    free(p->grads);
    free(p->buffers);
    memset(p, 0, sizeof *p);
}

const sslc_tensor *sslc_params_find(const sslc_params *p, const char *name)
{
    for (int64_t i = 0; i < p->count; i++)
        if (strcmp(p->tensors[i].name, name) == 0)
            return &p->tensors[i];
    return NULL;
}

float *sslc_params_data(const sslc_params *p, const sslc_tensor *t)
{
    return (t->kind == SSLC_TENSOR_PARAM ? p->values : p->buffers) + t->offset;
}

float *sslc_params_grad(const sslc_params *p, const sslc_tensor *t)
{
    return t->kind == SSLC_TENSOR_PARAM ? p->grads + t->offset : NULL;
}

void sslc_params_zero_grad(sslc_params *p)
{
    memset(p->grads, 0, (size_t)p->n_values * sizeof(float));
}

static int same_table(const sslc_params *a, const sslc_params *b)
{
    if (a->count != b->count || a->n_values != b->n_values || a->n_buffers != b->n_buffers)
        return 0;
    for (int64_t i = 0; i < a->count; i++) {
        const sslc_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) != 0 || x->numel != y->numel || x->offset != y->offset ||
            x->kind != y->kind)
            return 0;
    }
    return 1;
}

sslc_status sslc_params_copy(sslc_params *dst, const sslc_params *src)
{
    if (!same_table(dst, src))
        return sslc_error(SSLC_ERR_INVALID, "params: copy between different tensor tables");
    memcpy(dst->values, src->values, (size_t)src->n_values * sizeof(float));
    memcpy(dst->buffers, src->buffers, (size_t)src->n_buffers * sizeof(float));
    return SSLC_OK;
}

sslc_status sslc_params_clone(sslc_params *dst, const sslc_params *src)
{
    sslc_params_init(dst);
    dst->tensors = sslc_malloc((size_t)(src->count ? src->count : 1) * sizeof *dst->tensors);
    if (!dst->tensors)
        return SSLC_ERR_NOMEM;
    memcpy(dst->tensors, src->tensors, (size_t)src->count * sizeof *dst->tensors);
    dst->count = dst->capacity = src->count;
    dst->n_values = src->n_values;
    dst->n_buffers = src->n_buffers;
    sslc_status st = sslc_params_alloc(dst);
    if (st != SSLC_OK) {
        sslc_params_free(dst);
        return st;
    }
    return sslc_params_copy(dst, src);
}
