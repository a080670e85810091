// SimCLR's step (Chen et al. 2020): both views of every pair through the
// encoder and projector as one batch of 2B images, NT-Xent over the 2B
// embeddings, backward through everything.
#include <string.h>

#include "losses/ntxent.h"
#include "src/train/contrastive.h"

sslc_status sslc_simclr_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                             sslc_step_result *r)
{
    (void)s;
    sslc_contrastive *t = self;
    sslc_resnet_prepare(t->run, &t->enc);
    const float *f = sslc_resnet_forward(t->run, &t->enc, b->x, true);
    const float *z = sslc_mlp_forward(t->head_run, &t->head, f, true);
    float loss, acc;
    sslc_status st = sslc_ntxent_forward(&loss, &acc, t->loss_ws, z, t->n_query, t->D,
                                         (float)t->cfg->tau);
    if (st)
        return st;
    memset(t->dz, 0, (size_t)(t->n_query * t->D) * sizeof(float));
    sslc_ntxent_backward(t->dz, t->loss_ws, 1.0f, t->n_query, t->D);
    sslc_mlp_backward(t->head_run, &t->head, t->dfeat, t->dz);
    sslc_resnet_backward(t->run, &t->enc, t->dfeat);
    *r = (sslc_step_result){.loss = loss, .acc = acc};
    return SSLC_OK;
}
