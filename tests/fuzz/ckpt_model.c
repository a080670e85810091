#include "tests/fuzz/ckpt_model.h"

#include <stdlib.h>
#include <string.h>

static sslc_status add(sslc_params *p, const char *name, sslc_tensor_kind kind, unsigned flags,
                       int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
    const int64_t shape[4] = {a, b, c, d};
    return sslc_params_add(p, name, kind, flags, ndim, shape, NULL);
}

sslc_status fuzz_ckpt_model_make(fuzz_ckpt_model *m, int64_t projector_out)
{
    memset(m, 0, sizeof *m);
    sslc_params *e = &m->encoder, *p = &m->projector;
    sslc_params_init(e);
    sslc_params_init(p);
    sslc_status st = add(e, "conv1.weight", SSLC_TENSOR_PARAM, 0, 4, 2, 1, 3, 3);
    if (!st)
        st = add(e, "bn1.weight", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, 2, 0, 0, 0);
    if (!st)
        st = add(e, "bn1.bias", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, 2, 0, 0, 0);
    if (!st)
        st = add(e, "bn1.running_mean", SSLC_TENSOR_BUFFER, 0, 1, 2, 0, 0, 0);
    if (!st)
        st = add(e, "bn1.running_var", SSLC_TENSOR_BUFFER, 0, 1, 2, 0, 0, 0);
    if (!st)
        st = add(e, "bn1.num_batches_tracked", SSLC_TENSOR_BUFFER, SSLC_TENSOR_INT64, 1, 1, 0, 0,
                 0);
    if (!st)
        st = add(p, "0.weight", SSLC_TENSOR_PARAM, 0, 2, projector_out, 2, 0, 0);
    if (!st)
        st = add(p, "0.bias", SSLC_TENSOR_PARAM, SSLC_TENSOR_NO_DECAY, 1, projector_out, 0, 0, 0);
    if (!st)
        st = sslc_params_alloc(e);
    if (!st)
        st = sslc_params_alloc(p);
    if (st)
        goto fail;
    m->parts[0] = (sslc_ckpt_part){"encoder", e};
    m->parts[1] = (sslc_ckpt_part){"projector", p};
    for (int i = 0; i < 2; i++) {
        m->momentum[i] = calloc((size_t)m->parts[i].params->n_values + 1, sizeof(float));
        if (!m->momentum[i]) {
            st = SSLC_ERR_NOMEM;
            goto fail;
        }
        m->optim[i] = (sslc_ckpt_optim_buffer){m->parts[i].name, "momentum_buffer",
                                               m->momentum[i]};
    }
    m->arrays[0] = (sslc_ckpt_array){"queue", SSLC_CKPT_F32, 2, {FUZZ_QUEUE_K, FUZZ_QUEUE_D},
                                     m->queue};
    m->arrays[1] = (sslc_ckpt_array){"queue_ptr", SSLC_CKPT_I64, 1, {1}, m->queue_ptr};
    m->attrs[0] = (sslc_ckpt_attr){.key = "arch", .type = SSLC_CKPT_ATTR_STRING, .s = "fuzznet"};
    m->attrs[1] = (sslc_ckpt_attr){.key = "width", .type = SSLC_CKPT_ATTR_INT, .i = 2};
    m->attrs[2] = (sslc_ckpt_attr){.key = "temperature", .type = SSLC_CKPT_ATTR_FLOAT, .f = 0.2};
    m->desc = (sslc_ckpt){.method = "moco", .config = "--arch=fuzznet\n--width=2\n",
                          .model = m->attrs, .n_model = 3, .parts = m->parts, .n_parts = 2,
                          .optimizer = "sgd", .optim = m->optim, .n_optim = 2,
                          .arrays = m->arrays, .n_arrays = 2};
    return SSLC_OK;
fail:
    fuzz_ckpt_model_free(m);
    return st;
}

void fuzz_ckpt_model_free(fuzz_ckpt_model *m)
{
    sslc_params_free(&m->encoder);
    sslc_params_free(&m->projector);
    free(m->momentum[0]);
    free(m->momentum[1]);
    memset(m, 0, sizeof *m);
}

// Distinct values in every table, so the files differ from zeros.
static void fill(fuzz_ckpt_model *m)
{
    for (int i = 0; i < 2; i++) {
        sslc_params *p = m->parts[i].params;
        for (int64_t k = 0; k < p->n_values; k++) {
            p->values[k] = 0.25f * (float)k - 1.0f;
            m->momentum[i][k] = 0.01f * (float)k;
        }
        for (int64_t k = 0; k < p->n_buffers; k++)
            p->buffers[k] = 1.0f + (float)k;
    }
    for (int k = 0; k < FUZZ_QUEUE_K * FUZZ_QUEUE_D; k++)
        m->queue[k] = (float)k / 8;
    m->queue_ptr[0] = 2;
    m->desc.epoch = 3, m->desc.step = 42, m->desc.samples_seen = 1344, m->desc.seed = 7;
}

sslc_status fuzz_ckpt_write_base(int k, const char *path, const char *scratch)
{
    if (k == 2) {
        sslc_status st = fuzz_ckpt_write_base(0, scratch, NULL);
        return st ? st : sslc_ckpt_export(path, scratch, "encoder");
    }
    fuzz_ckpt_model m;
    sslc_status st = fuzz_ckpt_model_make(&m, k == 3 ? 4 : 3);
    if (st)
        return st;
    fill(&m);
    sslc_ckpt c = m.desc;
    if (k == 1) {
        c.method = "simclr", c.optimizer = NULL, c.n_optim = 0, c.n_arrays = 0;
        c.model = NULL, c.n_model = 0;
    }
    st = sslc_ckpt_save(path, &c);
    fuzz_ckpt_model_free(&m);
    return st;
}
