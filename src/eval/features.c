#include "src/eval/features.h"

#include <stdlib.h>
#include <string.h>

#include "augment/pipeline.h"
#include "src/dist/dist.h"
#include "src/models/mlp.h"

void sslc_features_free(sslc_features *f)
{
    if (!f)
        return;
    free(f->x);
    free(f->labels);
    free(f->indices);
    memset(f, 0, sizeof *f);
}

sslc_status sslc_features_each(sslc_encoder *net, const sslc_dataset *ds,
                               const sslc_recipe *recipe, int64_t batch, int64_t limit,
                               uint64_t seed, sslc_progress *progress, int64_t *skipped,
                               sslc_features_fn fn, void *ctx)
{
    const int ranks = sslc_dist_size(), rank = sslc_dist_rank();
    const int64_t total = sslc_dataset_count(ds), dim = net->feature_dim;
    const int64_t n = limit > 0 && limit < total ? limit : total;
    // Several processes: each makes and encodes its slice of every batch,
    // and every one of them receives the whole batch's features.
    const int64_t per = ((batch < n ? batch : n) + ranks - 1) / ranks;
    sslc_pipeline_config pc;
    sslc_pipeline_config_default(&pc);
    pc.batch_size = per * ranks;
    pc.views = 1;
    pc.seed = seed;
    pc.drop_last = false;
    pc.shuffle = n < total; // a random subset when limited, else dataset order
    pc.drop_bad = true;     // a bad image is left out, never counted twice
    if (ranks > 1) {
        pc.slice_first = rank * per;
        pc.slice_count = per;
    }
    sslc_pipeline *pipe = NULL;
    sslc_encoder_run *run = NULL, *partial = NULL; // partial: a batch smaller than the run
    int64_t *labels = sslc_malloc((size_t)per * sizeof(int64_t));
    float *all = ranks > 1 ? sslc_aligned_alloc((size_t)(pc.batch_size * dim) * sizeof(float)) : NULL;
    int64_t *all_labels = ranks > 1 ? sslc_malloc((size_t)pc.batch_size * sizeof(int64_t)) : NULL;
    int64_t *all_indices = ranks > 1 ? sslc_malloc((size_t)pc.batch_size * sizeof(int64_t)) : NULL;
    sslc_status st = labels && (ranks == 1 || (all && all_labels && all_indices))
                         ? sslc_pipeline_create(&pipe, ds, recipe, &pc)
                         : SSLC_ERR_NOMEM;
    if (!st)
        st = sslc_encoder_inference_run_create(&run, net, per, recipe->size, recipe->size);
    if (!st)
        st = sslc_pipeline_begin_epoch(pipe, 0, 0);
    if (!st)
        sslc_encoder_prepare(run, net);
    for (int64_t got = 0; !st && got < n;) {
        const sslc_batch *b = NULL;
        if ((st = sslc_pipeline_next(pipe, &b)) || !b)
            break;
        const float *f = NULL;
        if (b->count > 0) {
            sslc_encoder_run *r = run;
            if (b->count != per) {
                sslc_encoder_run_destroy(partial);
                partial = NULL;
                if ((st = sslc_encoder_inference_run_create(&partial, net, b->count, recipe->size,
                                                           recipe->size)))
                    break;
                sslc_encoder_prepare(partial, net);
                r = partial;
            }
            f = sslc_encoder_forward(r, net, b->views, false);
        }
        for (int64_t i = 0; i < b->count; i++)
            labels[i] = b->labels[i];
        const float *feats = f;
        const int64_t *lab = labels, *idx = b->indices;
        int64_t rows = b->count;
        if (ranks > 1) {
            if ((st = sslc_dist_gatherv_f32(f, b->count, dim, all, pc.batch_size, &rows)) ||
                (st = sslc_dist_gatherv_i64(labels, b->count, 1, all_labels, pc.batch_size,
                                            &rows)) ||
                (st = sslc_dist_gatherv_i64(b->indices, b->count, 1, all_indices, pc.batch_size,
                                            &rows)))
                break;
            feats = all, lab = all_labels, idx = all_indices;
        }
        int64_t take = rows < n - got ? rows : n - got;
        if (take > 0) {
            st = fn(ctx, feats, lab, idx, take);
            got += take;
        }
        if (progress)
            sslc_progress_update(progress, got, "");
    }
    if (progress)
        sslc_progress_break(progress);
    double bad = pipe ? (double)sslc_pipeline_skipped(pipe) : 0.0;
    if (!st && ranks > 1)
        st = sslc_dist_sum_f64(&bad, 1);
    if (skipped)
        *skipped = (int64_t)bad;
    sslc_encoder_run_destroy(partial);
    sslc_encoder_run_destroy(run);
    sslc_pipeline_destroy(pipe);
    free(labels);
    free(all);
    free(all_labels);
    free(all_indices);
    return st;
}

// Collects every batch into an sslc_features.
static sslc_status collect(void *ctx, const float *x, const int64_t *labels,
                           const int64_t *indices, int64_t rows)
{
    sslc_features *out = ctx;
    memcpy(out->x + out->n * out->dim, x, (size_t)(rows * out->dim) * sizeof(float));
    memcpy(out->labels + out->n, labels, (size_t)rows * sizeof(int64_t));
    memcpy(out->indices + out->n, indices, (size_t)rows * sizeof(int64_t));
    out->n += rows;
    return SSLC_OK;
}

sslc_status sslc_features_extract(sslc_features *out, sslc_encoder *net, const sslc_dataset *ds,
                                  const sslc_recipe *recipe, int64_t batch, int64_t limit,
                                  uint64_t seed)
{
    memset(out, 0, sizeof *out);
    int64_t total = sslc_dataset_count(ds);
    int64_t n = limit > 0 && limit < total ? limit : total;
    out->dim = net->feature_dim;
    out->x = sslc_malloc((size_t)(n * out->dim) * sizeof(float));
    out->labels = sslc_malloc((size_t)n * sizeof(int64_t));
    out->indices = sslc_malloc((size_t)n * sizeof(int64_t));
    sslc_status st = out->x && out->labels && out->indices
                         ? sslc_features_each(net, ds, recipe, batch, limit, seed, NULL,
                                              &out->skipped, collect, out)
                         : SSLC_ERR_NOMEM;
    if (st)
        sslc_features_free(out);
    return st;
}

sslc_status sslc_classifier_scores(float **scores, int64_t **labels, int64_t *count,
                                   int64_t *skipped, sslc_encoder *enc, sslc_mlp *head,
                                   const sslc_dataset *ds, const sslc_recipe *eval_recipe,
                                   int64_t batch)
{
    *scores = NULL;
    *labels = NULL;
    *count = 0;
    *skipped = 0;
    sslc_features f;
    sslc_status st = sslc_features_extract(&f, enc, ds, eval_recipe, batch, 0, 0);
    if (st)
        return st;
    sslc_mlp_run *run = NULL;
    const int64_t K = head->out_dim;
    if ((st = sslc_mlp_run_create(&run, head, f.n)))
        goto done;
    *scores = sslc_malloc((size_t)(f.n * K) * sizeof(float));
    if (!*scores) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    memcpy(*scores, sslc_mlp_forward(run, head, f.x, false), (size_t)(f.n * K) * sizeof(float));
    *labels = f.labels;
    f.labels = NULL;
    *count = f.n;
    *skipped = f.skipped;
done:
    sslc_mlp_run_destroy(run);
    sslc_features_free(&f);
    return st;
}
