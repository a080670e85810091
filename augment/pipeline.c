#include "augment/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/log.h"
#include "src/core/threads.h"

enum { SLOT_FREE = 0, SLOT_BUSY = 1, SLOT_READY = 2 };
enum { MAX_VIEWS = 16 };

typedef struct slot {
    sslc_batch batch;
    int state;
    int64_t step;
    sslc_status status; // the producer's result for this batch
    char message[512];
} slot;

struct sslc_pipeline {
    const sslc_dataset *ds;
    sslc_recipe recipe, local; // global views; local views (multi-crop)
    sslc_pipeline_config cfg;
    int64_t n, steps, C, S;
    int64_t rows; // samples a batch buffer holds: the slice, or the batch
    int threads;
    int64_t *perm; // (n)
    slot *slots;   // (ring)
    sslc_view_scratch *scratch; // (threads)
    uint8_t *bad;               // (n) 1 once an image failed to decode
    int64_t skipped;
    double wait_s;
    int64_t epoch, next_produce, next_consume;
    int held; // slot handed to the consumer, -1 none
    uint64_t generation;
    bool running, quit, thread_started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
};

void sslc_pipeline_config_default(sslc_pipeline_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_size = 256;
    cfg->views = 2;
    cfg->seed = 0;
    cfg->drop_last = true;
    cfg->shuffle = true;
    cfg->async = true;
    cfg->ring = 2;
}

static int fixed_scale(void *ctx, int64_t h, int64_t w)
{
    (void)h;
    (void)w;
    return *(const int *)ctx;
}

// Decodes dataset index idx and makes its V views (and L local views)
// into the batch at sample position i. Returns SSLC_ERR_FORMAT /
// SSLC_ERR_IO for a bad image (the caller moves on to another index),
// anything else is fatal.
static sslc_status make_sample(sslc_pipeline *p, sslc_batch *b, int64_t i, int64_t count,
                               int64_t idx, sslc_view_scratch *s)
{
    const int64_t V = p->cfg.views, all = V + p->cfg.local_views;
    int64_t H, W;
    sslc_dataset_dims(p->ds, idx, &H, &W);
    sslc_view_params vp[MAX_VIEWS];
    for (int64_t v = 0; v < all; v++)
        sslc_recipe_draw(v < V ? &p->recipe : &p->local, p->cfg.seed, (uint64_t)p->epoch,
                         (uint64_t)idx, (uint64_t)v, H, W, &vp[v]);
    // The global views alone choose the JPEG decode scale, so they are the
    // same with or without local views; a local view then comes from the
    // pixels that scale keeps (a local crop may hold fewer than its size).
    int scale = sslc_recipe_decode_scale(&p->recipe, vp, (int)V, H, W);
    sslc_image img;
    int used = 1;
    sslc_status st;
    if (scale == 1 && p->recipe.random_crop) {
        // Only the pixels under the crops: the union of their boxes.
        int64_t win[4] = {H, W, 0, 0};
        for (int64_t v = 0; v < all; v++) {
            const sslc_crop *c = &vp[v].crop;
            win[0] = c->top < win[0] ? c->top : win[0];
            win[1] = c->left < win[1] ? c->left : win[1];
            win[2] = c->top + c->height > win[2] ? c->top + c->height : win[2];
            win[3] = c->left + c->width > win[3] ? c->left + c->width : win[3];
        }
        st = sslc_dataset_decode_window(p->ds, idx, win, &img);
    } else {
        st = sslc_dataset_decode(p->ds, idx, &img, fixed_scale, &scale, &used);
    }
    if (st != SSLC_OK)
        return st;
    for (int64_t v = 0; v < all; v++) {
        vp[v].crop.top -= img.top;
        vp[v].crop.left -= img.left;
    }
    if (used == 1 && (img.full_height != H || img.full_width != W)) {
        sslc_image_free(&img);
        char name[512];
        return sslc_error(SSLC_ERR_FORMAT, "'%s' is %lldx%lld now, %lldx%lld when scanned",
                          sslc_dataset_name(p->ds, idx, name, sizeof name),
                          (long long)img.full_width, (long long)img.full_height, (long long)W,
                          (long long)H);
    }
    const size_t view_floats = (size_t)(p->S * p->S * p->C);
    const size_t local_floats = (size_t)(p->local.size * p->local.size * p->C);
    for (int64_t v = 0; v < all && st == SSLC_OK; v++) {
        float *out = v < V ? b->views + (size_t)(v * count + i) * view_floats
                           : b->local + (size_t)((v - V) * count + i) * local_floats;
        st = sslc_recipe_apply(out, v < V ? &p->recipe : &p->local, &vp[v], img.data, img.height,
                               img.width, used, s);
    }
    sslc_image_free(&img);
    if (st == SSLC_ERR_INVALID) {
        // A crop that does not fit the decoded pixels: the file is not what
        // its header said.
        char name[512], msg[512];
        snprintf(msg, sizeof msg, "%s", sslc_error_message());
        st = sslc_error(SSLC_ERR_FORMAT, "'%s': %s",
                        sslc_dataset_name(p->ds, idx, name, sizeof name), msg);
    }
    b->indices[i] = idx;
    b->labels[i] = (int)sslc_dataset_label(p->ds, idx);
    return st;
}

// Moves the kept samples' rows of x, (V * count) rows of `row` bytes in
// V view blocks, down to (V * kept) rows.
static void compact_views(void *x, const sslc_batch *b, int64_t V, int64_t kept, size_t row)
{
    const int64_t count = b->count;
    // Destinations never pass their sources (v * kept + j <= v * count + i),
    // so one pass in increasing order is safe.
    for (int64_t v = 0; v < V; v++)
        for (int64_t i = 0, j = 0; i < count; i++)
            if (b->indices[i] >= 0) {
                memmove((char *)x + (size_t)(v * kept + j) * row,
                        (char *)x + (size_t)(v * count + i) * row, row);
                j++;
            }
}

// Removes the samples whose index is -1 (bad images, drop_bad) from b:
// rows move down within each view's block, which also shrinks.
static void drop_marked(const sslc_pipeline *p, sslc_batch *b)
{
    const int64_t count = b->count;
    int64_t kept = 0;
    for (int64_t i = 0; i < count; i++)
        kept += b->indices[i] >= 0;
    if (kept == count)
        return;
    compact_views(b->views, b, p->cfg.views, kept, (size_t)(p->S * p->S * p->C) * sizeof(float));
    if (b->local)
        compact_views(b->local, b, p->cfg.local_views, kept,
                      (size_t)(p->local.size * p->local.size * p->C) * sizeof(float));
    for (int64_t i = 0, j = 0; i < count; i++)
        if (b->indices[i] >= 0) {
            b->indices[j] = b->indices[i];
            b->labels[j] = b->labels[i];
            j++;
        }
    b->count = kept;
}

// Fills slot sl with batch `step` of the current epoch. Called from the
// producer thread (async) or the consumer (sync); workers are OpenMP.
static void produce(sslc_pipeline *p, slot *sl, int64_t step)
{
    sslc_batch *b = &sl->batch;
    int64_t B = p->cfg.batch_size;
    int64_t first = step * B;
    int64_t count = p->n - first < B ? p->n - first : B;
    if (p->cfg.slice_count > 0) { // this rank's part of the batch
        int64_t end = p->cfg.slice_first + p->cfg.slice_count;
        first += p->cfg.slice_first;
        count = (end < count ? end : count) - p->cfg.slice_first;
        if (count < 0)
            count = 0;
    }
    b->count = count;
    b->step = step;
    b->epoch = p->epoch;
    sslc_status fatal = SSLC_OK;
    char fatal_msg[512] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(p->threads)
    for (int64_t i = 0; i < count; i++) {
        int t = sslc_thread_index();
        int64_t idx = p->perm[first + i];
        sslc_status st = SSLC_ERR_FORMAT;
        for (int64_t tries = 0; tries < p->n; tries++, idx = (idx + 1) % p->n) {
            if (__atomic_load_n(&p->bad[idx], __ATOMIC_RELAXED))
                st = SSLC_ERR_FORMAT;
            else
                st = make_sample(p, b, i, count, idx, &p->scratch[t]);
            if (st == SSLC_OK || (st != SSLC_ERR_FORMAT && st != SSLC_ERR_IO))
                break;
            // First failure of this image here: count it; the dataset names
            // it once for every layer (sslc_dataset_report_bad).
            if (__atomic_exchange_n(&p->bad[idx], 1, __ATOMIC_RELAXED) == 0) {
                __atomic_fetch_add(&p->skipped, 1, __ATOMIC_RELAXED);
                sslc_dataset_report_bad(p->ds, idx, sslc_error_message());
            }
            if (p->cfg.drop_bad) {
                b->indices[i] = -1;
                st = SSLC_OK;
                break;
            }
        }
        if (st == SSLC_ERR_FORMAT || st == SSLC_ERR_IO)
            st = sslc_error(SSLC_ERR_FORMAT, "pipeline: no image in the dataset could be decoded");
        if (st != SSLC_OK) {
#pragma omp critical(sslc_pipeline_error)
            if (fatal == SSLC_OK) {
                fatal = st;
                snprintf(fatal_msg, sizeof fatal_msg, "%s", sslc_error_message());
            }
        }
    }
    sl->status = fatal;
    snprintf(sl->message, sizeof sl->message, "%s", fatal_msg);
    if (p->cfg.drop_bad && fatal == SSLC_OK)
        drop_marked(p, b);
}

static void *producer_main(void *arg)
{
    sslc_pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->quit)
            break;
        if (!p->running || p->next_produce >= p->steps) {
            pthread_cond_wait(&p->cond, &p->mu);
            continue;
        }
        int64_t step = p->next_produce;
        slot *sl = &p->slots[step % p->cfg.ring];
        if (sl->state != SLOT_FREE) {
            pthread_cond_wait(&p->cond, &p->mu);
            continue;
        }
        sl->state = SLOT_BUSY;
        p->next_produce++;
        uint64_t gen = p->generation;
        pthread_mutex_unlock(&p->mu);
        produce(p, sl, step);
        pthread_mutex_lock(&p->mu);
        if (gen == p->generation) {
            sl->state = SLOT_READY;
            sl->step = step;
        } else {
            sl->state = SLOT_FREE; // made for an epoch that was abandoned
        }
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

sslc_status sslc_pipeline_create(sslc_pipeline **out, const sslc_dataset *ds,
                                 const sslc_recipe *recipe, const sslc_pipeline_config *cfg_in)
{
    *out = NULL;
    sslc_pipeline_config cfg = *cfg_in;
    if (cfg.ring == 0)
        cfg.ring = 2;
    if (cfg.height == 0)
        cfg.height = recipe->size;
    if (cfg.width == 0)
        cfg.width = recipe->size;
    if (cfg.batch_size < 1)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: batch size %lld must be >= 1",
                          (long long)cfg.batch_size);
    if (cfg.views < 1 || cfg.local_views < 0 || cfg.views + cfg.local_views > MAX_VIEWS)
        return sslc_error(SSLC_ERR_INVALID,
                          "pipeline: %lld views and %lld local views: each must be >= 0 (views "
                          ">= 1) and together at most %d",
                          (long long)cfg.views, (long long)cfg.local_views, MAX_VIEWS);
    if (cfg.local_views > 0 && !cfg.local_recipe)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: local views need a local recipe");
    if (cfg.local_views > 0 && (cfg.local_recipe->channels != recipe->channels ||
                                !cfg.local_recipe->random_crop))
        return sslc_error(SSLC_ERR_INVALID, "pipeline: the local recipe must make random crops "
                                            "with the global recipe's channels");
    if (cfg.height != recipe->size || cfg.width != recipe->size)
        return sslc_error(SSLC_ERR_INVALID,
                          "pipeline: output %lldx%lld differs from the recipe's %lldx%lld views",
                          (long long)cfg.height, (long long)cfg.width, (long long)recipe->size,
                          (long long)recipe->size);
    if (recipe->channels != sslc_dataset_channels(ds))
        return sslc_error(SSLC_ERR_INVALID,
                          "pipeline: the recipe makes %lld-channel views but the dataset has %d "
                          "channels",
                          (long long)recipe->channels, sslc_dataset_channels(ds));
    if (cfg.slice_first < 0 || cfg.slice_count < 0 ||
        cfg.slice_first + cfg.slice_count > cfg.batch_size)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: slice [%lld, %lld) is not inside a batch of %lld",
                          (long long)cfg.slice_first, (long long)(cfg.slice_first + cfg.slice_count),
                          (long long)cfg.batch_size);
    if (cfg.ring < 2)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: the ring needs at least 2 batches, not %d",
                          cfg.ring);
    int64_t n = sslc_dataset_count(ds);
    int64_t steps = cfg.drop_last ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
    if (steps == 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "pipeline: the dataset has %lld images, fewer than one batch of %lld "
                          "(lower the batch size or keep the last partial batch)",
                          (long long)n, (long long)cfg.batch_size);
    sslc_recipe rec = *recipe, local = cfg.local_views > 0 ? *cfg.local_recipe : *recipe;
    sslc_status st = sslc_recipe_finalize(&rec);
    if (st == SSLC_OK)
        st = sslc_recipe_finalize(&local);
    if (st != SSLC_OK)
        return st;
    sslc_pipeline *p = sslc_calloc(1, sizeof *p);
    if (!p)
        return SSLC_ERR_NOMEM;
    p->ds = ds;
    p->recipe = rec;
    p->local = local;
    p->cfg = cfg;
    p->cfg.local_recipe = NULL; // the copy in p->local is used
    p->n = n;
    p->steps = steps;
    p->C = rec.channels;
    p->S = rec.size;
    p->rows = cfg.slice_count > 0 ? cfg.slice_count : cfg.batch_size;
    p->threads = cfg.threads > 0 ? cfg.threads : sslc_get_threads();
    if (p->threads < 1)
        p->threads = 1;
    p->held = -1;
    p->epoch = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->perm = sslc_malloc((size_t)n * sizeof(int64_t));
    p->bad = sslc_calloc((size_t)n, 1);
    p->slots = sslc_calloc((size_t)cfg.ring, sizeof(slot));
    p->scratch = sslc_calloc((size_t)p->threads, sizeof(sslc_view_scratch));
    if (!p->perm || !p->bad || !p->slots || !p->scratch) {
        sslc_pipeline_destroy(p);
        return SSLC_ERR_NOMEM;
    }
    size_t floats = (size_t)(cfg.views * p->rows * p->S * p->S * p->C);
    size_t local_floats = (size_t)(cfg.local_views * p->rows * local.size * local.size * p->C);
    for (int r = 0; r < cfg.ring; r++) {
        sslc_batch *b = &p->slots[r].batch;
        b->views = sslc_aligned_alloc(floats * sizeof(float));
        b->indices = sslc_malloc((size_t)p->rows * sizeof(int64_t));
        b->labels = sslc_malloc((size_t)p->rows * sizeof(int));
        if (local_floats && !(b->local = sslc_aligned_alloc(local_floats * sizeof(float)))) {
            sslc_pipeline_destroy(p);
            return SSLC_ERR_NOMEM;
        }
        if (!b->views || !b->indices || !b->labels) {
            sslc_pipeline_destroy(p);
            return SSLC_ERR_NOMEM;
        }
        b->views_per_sample = cfg.views;
        b->local_views = cfg.local_views;
        b->local_size = cfg.local_views > 0 ? local.size : 0;
        b->height = b->width = p->S;
        b->channels = p->C;
    }
    if (cfg.async) {
        if (pthread_create(&p->thread, NULL, producer_main, p) != 0) {
            sslc_pipeline_destroy(p);
            return sslc_error(SSLC_ERR_INTERNAL, "pipeline: cannot start the producer thread");
        }
        p->thread_started = true;
    }
    *out = p;
    return SSLC_OK;
}

void sslc_pipeline_destroy(sslc_pipeline *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->quit = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    for (int r = 0; p->slots && r < p->cfg.ring; r++) {
        free(p->slots[r].batch.views);
        free(p->slots[r].batch.local);
        free(p->slots[r].batch.indices);
        free(p->slots[r].batch.labels);
    }
    for (int t = 0; p->scratch && t < p->threads; t++)
        sslc_view_scratch_free(&p->scratch[t]);
    free(p->scratch);
    free(p->slots);
    free(p->perm);
    free(p->bad);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}

int64_t sslc_pipeline_steps_per_epoch(const sslc_pipeline *p) { return p->steps; }

int64_t sslc_pipeline_skipped(const sslc_pipeline *p)
{
    return __atomic_load_n(&p->skipped, __ATOMIC_RELAXED);
}

double sslc_pipeline_wait_seconds(const sslc_pipeline *p) { return p->wait_s; }

size_t sslc_pipeline_buffer_bytes(const sslc_pipeline *p)
{
    return (size_t)p->cfg.ring *
           (size_t)((p->cfg.views * p->S * p->S + p->cfg.local_views * p->local.size *
                                                      p->local.size) *
                    p->rows * p->C) *
           sizeof(float);
}

// A tag for the permutation stream, apart from every view stream.
enum { PERM_STREAM = 0x7065726d };

sslc_status sslc_pipeline_begin_epoch(sslc_pipeline *p, int64_t epoch, int64_t first_step)
{
    if (epoch < 0 || first_step < 0 || first_step > p->steps)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: cannot start epoch %lld at step %lld (%lld "
                                            "steps per epoch)",
                          (long long)epoch, (long long)first_step, (long long)p->steps);
    pthread_mutex_lock(&p->mu);
    p->generation++;
    p->running = false;
    // Let a batch being made for the old epoch finish before reusing slots.
    for (;;) {
        bool busy = false;
        for (int r = 0; r < p->cfg.ring; r++)
            busy |= p->slots[r].state == SLOT_BUSY;
        if (!busy)
            break;
        pthread_cond_wait(&p->cond, &p->mu);
    }
    for (int r = 0; r < p->cfg.ring; r++)
        p->slots[r].state = SLOT_FREE;
    p->held = -1;
    if (p->cfg.shuffle) {
        sslc_rng g = sslc_rng_make(p->cfg.seed, (uint64_t)epoch, 0, 0, PERM_STREAM);
        sslc_rng_permutation(&g, p->perm, p->n);
    } else {
        for (int64_t i = 0; i < p->n; i++)
            p->perm[i] = i;
    }
    p->epoch = epoch;
    p->next_produce = p->next_consume = first_step;
    p->running = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    return SSLC_OK;
}

sslc_status sslc_pipeline_next(sslc_pipeline *p, const sslc_batch **batch)
{
    *batch = NULL;
    if (p->epoch < 0)
        return sslc_error(SSLC_ERR_INVALID, "pipeline: call sslc_pipeline_begin_epoch first");
    double t0 = sslc_now();
    if (!p->cfg.async) {
        if (p->next_consume >= p->steps)
            return SSLC_OK;
        slot *sl = &p->slots[p->next_consume % p->cfg.ring];
        produce(p, sl, p->next_consume);
        p->wait_s += sslc_now() - t0;
        if (sl->status != SSLC_OK)
            return sslc_error(sl->status, "%s", sl->message);
        p->next_consume++;
        *batch = &sl->batch;
        return SSLC_OK;
    }
    pthread_mutex_lock(&p->mu);
    if (p->held >= 0) {
        p->slots[p->held].state = SLOT_FREE;
        p->held = -1;
        pthread_cond_broadcast(&p->cond);
    }
    if (p->next_consume >= p->steps) {
        pthread_mutex_unlock(&p->mu);
        return SSLC_OK;
    }
    int r = (int)(p->next_consume % p->cfg.ring);
    slot *sl = &p->slots[r];
    while (!(sl->state == SLOT_READY && sl->step == p->next_consume))
        pthread_cond_wait(&p->cond, &p->mu);
    p->held = r;
    p->next_consume++;
    pthread_mutex_unlock(&p->mu);
    p->wait_s += sslc_now() - t0;
    if (sl->status != SSLC_OK)
        return sslc_error(sl->status, "%s", sl->message);
    *batch = &sl->batch;
    return SSLC_OK;
}
