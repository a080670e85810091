#include "src/train/grad_sync.h"

void sslc_grad_sync_begin(sslc_grad_sync *s, sslc_params *params, int64_t bucket_floats)
{
    *s = (sslc_grad_sync){.grads = params->grads, .pending = params->n_values,
                          .bucket = bucket_floats};
}

static void launch(sslc_grad_sync *s, int64_t from)
{
    if (s->status || from >= s->pending)
        return;
    if (s->n_requests == SSLC_GRAD_SYNC_MAX_BUCKETS) { // should not happen: sum it now
        s->status = sslc_dist_sum_f32(s->grads + from, (size_t)(s->pending - from));
    } else {
        s->status = sslc_dist_isum_f32(s->grads + from, (size_t)(s->pending - from),
                                       &s->requests[s->n_requests]);
        s->n_requests++;
    }
    s->pending = from;
}

void sslc_grad_sync_ready(void *self, int64_t from)
{
    sslc_grad_sync *s = self;
    if (s->pending - from >= s->bucket)
        launch(s, from);
    for (int i = 0; i < s->n_requests; i++) // let MPI move the earlier buckets on
        sslc_dist_poll(s->requests[i]);
}

sslc_status sslc_grad_sync_finish(sslc_grad_sync *s)
{
    launch(s, 0);
    sslc_status st = s->status;
    for (int i = 0; i < s->n_requests; i++) {
        sslc_status w = sslc_dist_wait(s->requests[i]);
        if (!st)
            st = w;
    }
    s->n_requests = 0;
    return st;
}
