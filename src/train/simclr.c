// SimCLR's step (Chen et al. 2020): both views of every pair through the
// encoder and projector, NT-Xent over the 2B embeddings of the global
// batch (gathered from every process: each one's negatives are all of
// them), backward from the gradient of that one loss. With multi-crop
// (SwAV), the L local views join the loss: its multi-positive form over
// (2 + L) B rows, every other view of an image a positive.
#include <string.h>

#include "losses/ntxent.h"
#include "src/core/log.h"
#include "src/core/phases.h"
#include "src/dist/dist.h"
#include "src/train/contrastive.h"

sslc_status sslc_simclr_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                             sslc_step_result *r)
{
    (void)s;
    sslc_contrastive *t = self;
    const int64_t views = 2 + t->L, n = views * t->B, D = t->D;
    double mark = sslc_now();
    sslc_status st = sslc_contrastive_embed(t, b);
    if (st)
        return st;
    mark = sslc_phase_end(SSLC_PHASE_FORWARD, mark);
    float *z = t->z, *dz = t->dz;
    if (t->ranks > 1) {
        if ((st = sslc_dist_gather_f32(t->z, t->gather, (size_t)(2 * t->b * D))))
            return st;
        sslc_contrastive_reorder(t, t->z_all, t->gather, D, 2, true);
        z = t->z_all;
        dz = t->dz_all;
    }
    // Every process computes the whole loss (cheap beside the encoder) and
    // so the gradient with respect to every embedding, and keeps its own.
    float loss, acc;
    if ((st = sslc_ntxent_multi_forward(&loss, &acc, t->loss_ws, z, n, views, D,
                                        (float)t->cfg->tau)))
        return st;
    memset(dz, 0, (size_t)(n * D) * sizeof(float));
    sslc_ntxent_backward(dz, t->loss_ws, 1.0f, n, D);
    if (t->ranks > 1) {
        sslc_contrastive_reorder(t, t->gather, t->dz_all, D, 2, false);
        memcpy(t->dz, t->gather + (size_t)(t->rank * 2 * t->b * D),
               (size_t)(2 * t->b * D) * sizeof(float));
    }
    mark = sslc_phase_end(SSLC_PHASE_LOSS, mark);
    if ((st = sslc_contrastive_backward(t, b)))
        return st;
    sslc_phase_end(SSLC_PHASE_BACKWARD, mark);
    *r = (sslc_step_result){.loss = loss, .acc = acc};
    return SSLC_OK;
}
