#include "src/eval/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/subset.h"
#include "src/core/log.h"
#include "src/dist/dist.h"
#include "src/eval/loader.h"

sslc_status sslc_probe_fit(sslc_logreg *m, sslc_probe_result *r, float *x, const int64_t *y,
                           int64_t n, const sslc_probe_config *c)
{
    memset(r, 0, sizeof *r);
    const double start = sslc_now();
    const int64_t D = m->dim, K = m->classes;
    sslc_logreg_fit_standardize(m, x, n);
    sslc_logreg_standardize(m, x, x, n);
    sslc_status st = SSLC_OK;
    float *xf = NULL, *xv = NULL;
    int64_t *yf = NULL, *yv = NULL;
    sslc_subset all = {0}, fit = {0}, val = {0};
    r->l2 = c->l2;
    if (c->l2 < 0) {
        if (c->n_grid < 1 || c->n_grid > SSLC_LOGREG_GRID)
            return sslc_error(SSLC_ERR_INVALID, "probe: grid of %d values (1 to %d)", c->n_grid,
                              SSLC_LOGREG_GRID);
        // Positions 0..n-1 as a "subset" so the class-balanced split applies.
        all.indices = sslc_malloc((size_t)n * sizeof(int64_t));
        if (!all.indices)
            return SSLC_ERR_NOMEM;
        all.n = n;
        for (int64_t i = 0; i < n; i++)
            all.indices[i] = i;
        if ((st = sslc_subset_split(&fit, &val, &all, y, K, c->holdout, c->seed)))
            goto done;
        if (val.n == 0 || fit.n == 0) {
            st = sslc_error(SSLC_ERR_INVALID, "probe: %lld labelled images are too few to hold "
                                              "out %.0f%% for choosing the regularisation; "
                                              "give --l2",
                            (long long)n, 100.0 * c->holdout);
            goto done;
        }
        xf = sslc_malloc((size_t)(fit.n * D) * sizeof(float));
        xv = sslc_malloc((size_t)(val.n * D) * sizeof(float));
        yf = sslc_malloc((size_t)fit.n * sizeof(int64_t));
        yv = sslc_malloc((size_t)val.n * sizeof(int64_t));
        if (!xf || !xv || !yf || !yv) {
            st = SSLC_ERR_NOMEM;
            goto done;
        }
        for (int64_t i = 0; i < fit.n; i++) {
            memcpy(xf + i * D, x + fit.indices[i] * D, (size_t)D * sizeof(float));
            yf[i] = y[fit.indices[i]];
        }
        for (int64_t i = 0; i < val.n; i++) {
            memcpy(xv + i * D, x + val.indices[i] * D, (size_t)D * sizeof(float));
            yv[i] = y[val.indices[i]];
        }
        if ((st = sslc_logreg_select(&r->l2, r->val_top1, m, xf, yf, fit.n, xv, yv, val.n,
                                     c->grid, c->n_grid, &c->solver)))
            goto done;
        r->n_grid = c->n_grid;
        r->n_fit = fit.n;
        r->n_val = val.n;
    }
    memset(m->w, 0, (size_t)(K * D) * sizeof(float));
    memset(m->b, 0, (size_t)K * sizeof(float));
    st = sslc_logreg_fit(m, x, y, n, r->l2, &c->solver, &r->fit);
done:
    r->seconds = sslc_now() - start;
    free(xf);
    free(xv);
    free(yf);
    free(yv);
    sslc_subset_free(&all);
    sslc_subset_free(&fit);
    sslc_subset_free(&val);
    return st;
}

sslc_status sslc_probe_features(sslc_features *out, sslc_encoder *enc, const sslc_dataset *ds,
                                const int64_t *indices, int64_t n, const sslc_recipe *recipe,
                                int64_t batch, int64_t epoch, uint64_t seed, double *images_per_s)
{
    memset(out, 0, sizeof *out);
    sslc_loader *loader = NULL;
    sslc_encoder_run *run = NULL, *partial = NULL;
    sslc_status st = sslc_loader_create(&loader, ds, indices, n, recipe, batch, seed, false,
                                        false, true);
    if (st)
        return st;
    const int64_t B = sslc_loader_batch_size(loader);
    const int64_t pixels = recipe->size * recipe->size * recipe->channels;
    const int64_t dim = enc ? enc->feature_dim : pixels;
    out->dim = dim;
    if (enc && (st = sslc_encoder_inference_run_create(&run, enc, B, recipe->size, recipe->size)))
        goto fail;
    out->x = sslc_malloc((size_t)(n * dim) * sizeof(float));
    out->labels = sslc_malloc((size_t)n * sizeof(int64_t));
    if (!out->x || !out->labels) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    if (run)
        sslc_encoder_prepare(run, enc);
    double forward = 0.0;
    // Several processes: each takes a run of consecutive batches, then every
    // one of them gathers all rows, in order.
    const int ranks = sslc_dist_size(), rank = sslc_dist_rank();
    const int64_t steps = sslc_loader_steps(loader);
    for (int64_t s = steps * rank / ranks; s < steps * (rank + 1) / ranks; s++) {
        const float *xb;
        const int64_t *yb;
        int64_t count;
        if ((st = sslc_loader_batch(loader, epoch, s, &xb, &yb, &count)))
            goto fail;
        if (count == 0) // every image of the batch was bad
            continue;
        const float *f = xb;
        if (enc) {
            sslc_encoder_run *r = run;
            if (count != B) { // a partial batch: the last one, or one with bad images left out
                sslc_encoder_run_destroy(partial);
                partial = NULL;
                if ((st = sslc_encoder_inference_run_create(&partial, enc, count, recipe->size,
                                                           recipe->size)))
                    goto fail;
                sslc_encoder_prepare(partial, enc);
                r = partial;
            }
            double t0 = sslc_now();
            f = sslc_encoder_forward(r, enc, xb, false);
            forward += sslc_now() - t0;
        }
        memcpy(out->x + out->n * dim, f, (size_t)(count * dim) * sizeof(float));
        memcpy(out->labels + out->n, yb, (size_t)count * sizeof(int64_t));
        out->n += count;
    }
    double bad = (double)sslc_loader_skipped(loader);
    const int64_t rows = out->n;
    if (ranks > 1) { // this process's rows moved aside, then everyone's in their place
        float *x = sslc_malloc((size_t)(rows * dim + 1) * sizeof(float));
        int64_t *y = sslc_malloc((size_t)(rows + 1) * sizeof(int64_t));
        st = x && y ? SSLC_OK : SSLC_ERR_NOMEM;
        if (!st) {
            memcpy(x, out->x, (size_t)(rows * dim) * sizeof(float));
            memcpy(y, out->labels, (size_t)rows * sizeof(int64_t));
        }
        if (!st && !(st = sslc_dist_gatherv_f32(x, rows, dim, out->x, n, &out->n)))
            st = sslc_dist_gatherv_i64(y, rows, 1, out->labels, n, &out->n);
        if (!st)
            st = sslc_dist_sum_f64(&bad, 1);
        free(x);
        free(y);
        if (st)
            goto fail;
    }
    out->skipped = (int64_t)bad;
    if (images_per_s)
        *images_per_s = forward > 0 ? (double)rows / forward : 0.0;
    sslc_loader_destroy(loader);
    sslc_encoder_run_destroy(run);
    sslc_encoder_run_destroy(partial);
    return SSLC_OK;
fail:
    sslc_loader_destroy(loader);
    sslc_encoder_run_destroy(run);
    sslc_encoder_run_destroy(partial);
    sslc_features_free(out);
    return st;
}

sslc_status sslc_probe_fit_augmented(sslc_logreg *m, sslc_encoder *enc, const sslc_dataset *ds,
                                     const int64_t *indices, int64_t n,
                                     const sslc_recipe *recipe, int64_t batch, double l2,
                                     const sslc_logreg_options *o)
{
    memset(m->w, 0, (size_t)(m->classes * m->dim) * sizeof(float));
    memset(m->b, 0, (size_t)m->classes * sizeof(float));
    sslc_logreg_sgd sgd;
    sslc_status st = sslc_logreg_sgd_init(&sgd, m, n, o);
    for (int64_t ep = 0; !st && ep < o->epochs; ep++) {
        sslc_features f;
        if ((st = sslc_probe_features(&f, enc, ds, indices, n, recipe, batch, ep, o->seed, NULL)))
            break;
        if (f.n != n) // an image that cannot be decoded: left out of every epoch
            st = sslc_error(SSLC_ERR_FORMAT, "augmented probe: %lld of %lld images could not "
                                             "be decoded (sslc scan finds them)",
                            (long long)(n - f.n), (long long)n);
        if (!st) {
            sslc_logreg_standardize(m, f.x, f.x, n);
            st = sslc_logreg_sgd_epoch(&sgd, m, f.x, f.labels, l2, ep);
        }
        sslc_features_free(&f);
        if (!st && (ep + 1) % 10 == 0)
            sslc_info("augmented probe: epoch %lld/%lld loss %.4f", (long long)ep + 1,
                      (long long)o->epochs, sgd.loss);
    }
    sslc_logreg_sgd_free(&sgd);
    return st;
}
