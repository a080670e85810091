#include "src/train/sources.h"

#include <stdlib.h>
#include <string.h>

static sslc_status pipeline_begin(void *ctx, int64_t epoch, int64_t first_step)
{
    sslc_pipeline_source *ps = ctx;
    if (ps->fixed_views) // one batch for the whole run
        return SSLC_OK;
    return sslc_pipeline_begin_epoch(ps->pipe, epoch, first_step);
}

static sslc_status pipeline_next(void *ctx, sslc_train_batch *out)
{
    sslc_pipeline_source *ps = ctx;
    if (ps->fixed_views) {
        *out = ps->fixed_batch;
        return SSLC_OK;
    }
    const sslc_batch *b = NULL;
    sslc_status st = sslc_pipeline_next(ps->pipe, &b);
    if (st || !b) {
        *out = (sslc_train_batch){0};
        return st;
    }
    *out = (sslc_train_batch){.x = b->views, .x_local = b->local, .count = b->count};
    if (ps->fixed) {
        size_t n = (size_t)(b->views_per_sample * b->count * b->height * b->width * b->channels);
        size_t nl = (size_t)(b->local_views * b->count * b->local_size * b->local_size *
                             b->channels);
        if (!(ps->fixed_views = sslc_aligned_alloc(n * sizeof(float))) ||
            (nl && !(ps->fixed_local = sslc_aligned_alloc(nl * sizeof(float)))))
            return SSLC_ERR_NOMEM;
        memcpy(ps->fixed_views, b->views, n * sizeof(float));
        if (nl)
            memcpy(ps->fixed_local, b->local, nl * sizeof(float));
        ps->fixed_batch = (sslc_train_batch){.x = ps->fixed_views, .x_local = ps->fixed_local,
                                             .count = b->count};
        *out = ps->fixed_batch;
    }
    return SSLC_OK;
}

sslc_batch_source sslc_pipeline_source_init(sslc_pipeline_source *ps, sslc_pipeline *pipe,
                                       bool fixed_batch)
{
    *ps = (sslc_pipeline_source){.pipe = pipe, .fixed = fixed_batch};
    return (sslc_batch_source){.ctx = ps, .steps_per_epoch = sslc_pipeline_steps_per_epoch(pipe),
                               .begin_epoch = pipeline_begin, .next = pipeline_next};
}

void sslc_pipeline_source_free(sslc_pipeline_source *ps)
{
    free(ps->fixed_views);
    free(ps->fixed_local);
    ps->fixed_views = ps->fixed_local = NULL;
}

static sslc_status loader_begin(void *ctx, int64_t epoch, int64_t first_step)
{
    sslc_loader_source *ls = ctx;
    ls->epoch = epoch;
    ls->step = first_step;
    return SSLC_OK;
}

static sslc_status loader_next(void *ctx, sslc_train_batch *out)
{
    sslc_loader_source *ls = ctx;
    *out = (sslc_train_batch){0};
    if (ls->step >= sslc_loader_steps(ls->loader))
        return SSLC_OK;
    sslc_status st = sslc_loader_batch(ls->loader, ls->epoch, ls->step, &out->x, &out->labels,
                                       &out->count);
    ls->step++;
    return st;
}

sslc_batch_source sslc_loader_source_init(sslc_loader_source *ls, sslc_loader *loader)
{
    *ls = (sslc_loader_source){.loader = loader};
    return (sslc_batch_source){.ctx = ls, .steps_per_epoch = sslc_loader_steps(loader),
                               .begin_epoch = loader_begin, .next = loader_next};
}
