#include "src/eval/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"
#include "src/core/threads.h"

struct sslc_loader {
    const sslc_dataset *ds;
    sslc_recipe recipe;
    int64_t *indices, n, batch, steps;
    int64_t *perm;  // (n,) positions in indices, in this epoch's order
    uint8_t *bad;   // (n,) 1 once the image at that position failed to decode
    int64_t skipped;
    uint64_t seed;
    bool shuffle, drop_bad;
    int64_t perm_epoch; // epoch perm was made for (-1: none)
    float *x;           // (batch, size, size, channels)
    int64_t *labels;    // (batch,)
    sslc_view_scratch *scratch; // one per thread
    int threads;
};

sslc_status sslc_loader_create(sslc_loader **out, const sslc_dataset *ds, const int64_t *indices,
                               int64_t n, const sslc_recipe *recipe, int64_t batch, uint64_t seed,
                               bool shuffle, bool drop_last, bool drop_bad)
{
    *out = NULL;
    if (n <= 0 || batch <= 0)
        return sslc_error(SSLC_ERR_INVALID, "loader: %lld images in batches of %lld", (long long)n,
                          (long long)batch);
    if (sslc_dataset_channels(ds) != recipe->channels)
        return sslc_error(SSLC_ERR_INVALID, "loader: the dataset has %d channels, the recipe %lld",
                          sslc_dataset_channels(ds), (long long)recipe->channels);
    sslc_loader *l = sslc_calloc(1, sizeof *l);
    if (!l)
        return SSLC_ERR_NOMEM;
    l->ds = ds;
    l->recipe = *recipe;
    l->n = n;
    l->batch = batch < n ? batch : n;
    l->steps = drop_last ? n / l->batch : (n + l->batch - 1) / l->batch;
    l->seed = seed;
    l->shuffle = shuffle;
    l->drop_bad = drop_bad;
    l->perm_epoch = -1;
    l->threads = sslc_get_threads() > 0 ? sslc_get_threads() : 1;
    size_t image = (size_t)(recipe->size * recipe->size * recipe->channels);
    l->indices = sslc_malloc((size_t)n * sizeof(int64_t));
    l->perm = sslc_malloc((size_t)n * sizeof(int64_t));
    l->x = sslc_aligned_alloc((size_t)l->batch * image * sizeof(float));
    l->labels = sslc_malloc((size_t)l->batch * sizeof(int64_t));
    l->bad = sslc_calloc((size_t)n, 1);
    l->scratch = sslc_calloc((size_t)l->threads, sizeof(sslc_view_scratch));
    if (!l->indices || !l->perm || !l->x || !l->labels || !l->bad || !l->scratch) {
        sslc_loader_destroy(l);
        return SSLC_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        l->indices[i] = indices ? indices[i] : i;
    *out = l;
    return SSLC_OK;
}

void sslc_loader_destroy(sslc_loader *l)
{
    if (!l)
        return;
    if (l->scratch)
        for (int t = 0; t < l->threads; t++)
            sslc_view_scratch_free(&l->scratch[t]);
    free(l->scratch);
    free(l->indices);
    free(l->perm);
    free(l->x);
    free(l->labels);
    free(l->bad);
    free(l);
}

int64_t sslc_loader_steps(const sslc_loader *l) { return l->steps; }
int64_t sslc_loader_batch_size(const sslc_loader *l) { return l->batch; }
int64_t sslc_loader_skipped(const sslc_loader *l) { return l->skipped; }

// Decodes the image at subset position pos and makes view 0 of it into x.
static sslc_status make_view(sslc_loader *l, float *x, int64_t pos, int64_t epoch)
{
    int64_t idx = l->indices[pos];
    sslc_image img = {0};
    int scale = 1;
    sslc_status st = sslc_dataset_decode(l->ds, idx, &img, NULL, NULL, &scale);
    if (!st) {
        int64_t H, W;
        sslc_dataset_dims(l->ds, idx, &H, &W);
        sslc_view_params p;
        sslc_recipe_draw(&l->recipe, l->seed, (uint64_t)epoch, (uint64_t)idx, 0, H, W, &p);
        st = sslc_recipe_apply(x, &l->recipe, &p, img.data, img.height, img.width, scale,
                               &l->scratch[sslc_thread_index()]);
        if (st == SSLC_ERR_INVALID) { // a crop that does not fit: not what the header said
            char name[1024], msg[512];
            snprintf(msg, sizeof msg, "%s", sslc_error_message());
            st = sslc_error(SSLC_ERR_FORMAT, "'%s': %s",
                            sslc_dataset_name(l->ds, idx, name, sizeof name), msg);
        }
    }
    sslc_image_free(&img);
    return st;
}

sslc_status sslc_loader_batch(sslc_loader *l, int64_t epoch, int64_t step, const float **x,
                              const int64_t **labels, int64_t *count)
{
    if (step < 0 || step >= l->steps)
        return sslc_error(SSLC_ERR_INVALID, "loader: step %lld of %lld", (long long)step,
                          (long long)l->steps);
    if (l->perm_epoch != epoch) {
        for (int64_t i = 0; i < l->n; i++)
            l->perm[i] = i;
        if (l->shuffle) {
            sslc_rng rng = sslc_rng_make(l->seed, 0x10ade7, (uint64_t)epoch, 0, 0);
            for (int64_t i = l->n - 1; i > 0; i--) {
                int64_t j = (int64_t)sslc_rng_below(&rng, (uint64_t)(i + 1));
                int64_t t = l->perm[i];
                l->perm[i] = l->perm[j];
                l->perm[j] = t;
            }
        }
        l->perm_epoch = epoch;
    }
    int64_t first = step * l->batch;
    int64_t nb = l->n - first < l->batch ? l->n - first : l->batch;
    const size_t image = (size_t)(l->recipe.size * l->recipe.size * l->recipe.channels);
    int64_t *pos = l->labels; // positions first, labels once every slot is settled
    sslc_status fatal = SSLC_OK;
    char fatal_msg[512] = "";
#pragma omp parallel for schedule(dynamic, 4) num_threads(l->threads)
    for (int64_t i = 0; i < nb; i++) {
        int64_t p = l->perm[first + i];
        sslc_status st = SSLC_ERR_FORMAT;
        // A bad image: named once and counted, then its slot takes the next
        // image of the subset that decodes, or stays empty (drop_bad).
        for (int64_t tries = 0; tries < l->n; tries++, p = (p + 1) % l->n) {
            st = __atomic_load_n(&l->bad[p], __ATOMIC_RELAXED)
                     ? SSLC_ERR_FORMAT
                     : make_view(l, l->x + (size_t)i * image, p, epoch);
            if (st == SSLC_OK || (st != SSLC_ERR_FORMAT && st != SSLC_ERR_IO))
                break;
            if (__atomic_exchange_n(&l->bad[p], 1, __ATOMIC_RELAXED) == 0) {
                __atomic_fetch_add(&l->skipped, 1, __ATOMIC_RELAXED);
                sslc_dataset_report_bad(l->ds, l->indices[p], sslc_error_message());
            }
            if (l->drop_bad) {
                p = -1;
                st = SSLC_OK;
                break;
            }
        }
        if (st == SSLC_ERR_FORMAT || st == SSLC_ERR_IO)
            st = sslc_error(SSLC_ERR_FORMAT, "loader: no image of the subset could be decoded");
        pos[i] = p;
        if (st) {
#pragma omp critical(sslc_loader_error)
            if (fatal == SSLC_OK) { // messages are per thread: keep the first one
                fatal = st;
                snprintf(fatal_msg, sizeof fatal_msg, "%s", sslc_error_message());
            }
        }
    }
    if (fatal)
        return sslc_error(fatal, "%s", fatal_msg);
    int64_t kept = 0;
    for (int64_t i = 0; i < nb; i++) {
        if (pos[i] < 0)
            continue;
        if (kept != i)
            memmove(l->x + (size_t)kept * image, l->x + (size_t)i * image, image * sizeof(float));
        l->labels[kept++] = sslc_dataset_label(l->ds, l->indices[pos[i]]);
    }
    *x = l->x;
    *labels = l->labels;
    *count = kept;
    return SSLC_OK;
}
