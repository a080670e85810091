#include "src/optim/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sslc_optim_config sslc_optim_defaults(sslc_optim_kind kind)
{
    sslc_optim_config c = {
        .kind = kind,
        .momentum = 0.9f,
        .nesterov = false,
        .weight_decay = 1e-4f,
        .exclude_no_decay = false,
        .trust_coefficient = 0.001f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
    };
    if (kind == SSLC_OPTIM_LARS) {
        c.weight_decay = 1e-6f; // SimCLR's default with LARS
        c.exclude_no_decay = true;
    } else if (kind == SSLC_OPTIM_ADAMW) {
        c.weight_decay = 0.01f; // torch.optim.AdamW's default
    }
    return c;
}

static const char *const kind_names[] = {"sgd", "lars", "adamw"};

const char *sslc_optim_kind_name(sslc_optim_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

sslc_status sslc_optim_kind_parse(sslc_optim_kind *kind, const char *name)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (sslc_optim_kind)i;
            return SSLC_OK;
        }
    }
    return sslc_error(SSLC_ERR_INVALID, "optim: unknown optimizer '%s' (use sgd, lars or adamw)",
                      name);
}

static sslc_status check_config(const sslc_optim_config *c)
{
    if ((unsigned)c->kind > SSLC_OPTIM_ADAMW)
        return sslc_error(SSLC_ERR_INVALID, "optim: unknown optimizer kind %d", (int)c->kind);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return sslc_error(SSLC_ERR_INVALID, "optim: weight decay must be >= 0, got %g",
                          (double)c->weight_decay);
    if (c->kind == SSLC_OPTIM_ADAMW) {
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return sslc_error(SSLC_ERR_INVALID, "optim: AdamW betas must lie in [0, 1), got %g, %g",
                              (double)c->beta1, (double)c->beta2);
        if (!(c->eps > 0.0f))
            return sslc_error(SSLC_ERR_INVALID, "optim: AdamW eps must be > 0, got %g",
                              (double)c->eps);
        return SSLC_OK;
    }
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return sslc_error(SSLC_ERR_INVALID, "optim: momentum must lie in [0, 1), got %g",
                          (double)c->momentum);
    if (c->nesterov && c->momentum == 0.0f)
        return sslc_error(SSLC_ERR_INVALID, "optim: Nesterov momentum needs momentum > 0");
    if (c->kind == SSLC_OPTIM_LARS && !(c->trust_coefficient > 0.0f))
        return sslc_error(SSLC_ERR_INVALID, "optim: LARS trust coefficient must be > 0, got %g",
                          (double)c->trust_coefficient);
    return SSLC_OK;
}

sslc_status sslc_optim_create(sslc_optim **out, const sslc_optim_config *config,
                              const sslc_params *params)
{
    *out = NULL;
    sslc_status st = check_config(config);
    if (st != SSLC_OK)
        return st;
    if (!params->values || !params->grads)
        return sslc_error(SSLC_ERR_INVALID, "optim: the parameter table is not allocated");
    sslc_optim *o = sslc_calloc(1, sizeof *o);
    if (!o)
        return SSLC_ERR_NOMEM;
    o->config = *config;
    o->n_values = params->n_values;
    o->n_tensors = params->count;
    if (config->kind == SSLC_OPTIM_ADAMW)
        o->n_states = 2;
    else
        o->n_states = config->momentum > 0.0f ? 1 : 0;
    size_t bytes = (size_t)o->n_values * sizeof(float);
    for (int i = 0; i < o->n_states; i++) {
        o->state[i] = sslc_aligned_alloc(bytes);
        if (!o->state[i])
            goto nomem;
        memset(o->state[i], 0, bytes);
    }
    o->norms = sslc_calloc((size_t)(2 * (o->n_tensors ? o->n_tensors : 1)), sizeof *o->norms);
    if (!o->norms)
        goto nomem;
    *out = o;
    return SSLC_OK;
nomem:
    sslc_optim_destroy(o);
    return SSLC_ERR_NOMEM;
}

void sslc_optim_destroy(sslc_optim *optim)
{
    if (!optim)
        return;
    free(optim->state[0]);
    free(optim->state[1]);
    free(optim->norms);
    free(optim);
}

static bool decays(const sslc_optim_config *c, const sslc_tensor *t)
{
    return c->weight_decay > 0.0f && !(c->exclude_no_decay && (t->flags & SSLC_TENSOR_NO_DECAY));
}

// torch.optim.SGD's single-tensor update, float arithmetic in its order.
static void sgd_tensor(const sslc_optim *o, float *restrict p, float *restrict buf,
                       const float *restrict g, int64_t n, float lr, float wd)
{
    const float m = o->config.momentum;
    const bool nesterov = o->config.nesterov;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        if (buf) {
            buf[i] = m * buf[i] + d;
            d = nesterov ? d + m * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

// SimCLR's LARS update for one tensor with its learning rate already scaled
// by the trust ratio.
static void lars_tensor(const sslc_optim *o, float *restrict p, float *restrict buf,
                        const float *restrict g, int64_t n, float scaled_lr, float wd)
{
    const float m = o->config.momentum;
    const bool nesterov = o->config.nesterov;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        float update = scaled_lr * d;
        if (buf) {
            buf[i] = m * buf[i] + update;
            update = nesterov ? m * buf[i] + update : buf[i];
        }
        p[i] -= update;
    }
}

// torch.optim.AdamW's single-tensor update; the bias corrections come in
// double as Python computes them.
static void adamw_tensor(const sslc_optim *o, float *restrict p, float *restrict m1,
                         float *restrict m2, const float *restrict g, int64_t n, float lr,
                         float wd, float step_size, float bc2_sqrt)
{
    const float b1 = o->config.beta1, b2 = o->config.beta2, eps = o->config.eps;
    const float shrink = 1.0f - lr * wd;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        p[i] *= shrink;
        m1[i] = m1[i] * b1 + g[i] * (1.0f - b1);
        m2[i] = m2[i] * b2 + g[i] * g[i] * (1.0f - b2);
        float denom = sqrtf(m2[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m1[i] / denom);
    }
}

// |p| and |g + wd p| of every adapted tensor, each summed in double by one
// thread in index order, so the trust ratios do not depend on the threads.
static void lars_norms(sslc_optim *o, const sslc_params *params)
{
    const sslc_optim_config *c = &o->config;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < params->count; t++) {
        const sslc_tensor *x = &params->tensors[t];
        double wn = 0.0, gn = 0.0;
        if (x->kind == SSLC_TENSOR_PARAM &&
            !(c->exclude_no_decay && (x->flags & SSLC_TENSOR_NO_DECAY))) {
            const float *p = params->values + x->offset, *g = params->grads + x->offset;
            const float wd = decays(c, x) ? c->weight_decay : 0.0f;
            // LANES independent double sums (vectorised, no reassociation),
            // combined in lane order: the same result on every run.
            enum { LANES = 8 };
            double wl[LANES] = {0}, gl[LANES] = {0};
            const int64_t n = x->numel, body = n / LANES * LANES;
            for (int64_t i = 0; i < body; i += LANES) {
                for (int l = 0; l < LANES; l++) {
                    float d = g[i + l] + wd * p[i + l];
                    wl[l] += (double)p[i + l] * p[i + l];
                    gl[l] += (double)d * d;
                }
            }
            for (int64_t i = body; i < n; i++) {
                float d = g[i] + wd * p[i];
                wl[0] += (double)p[i] * p[i];
                gl[0] += (double)d * d;
            }
            for (int l = 0; l < LANES; l++) {
                wn += wl[l];
                gn += gl[l];
            }
        }
        o->norms[2 * t] = sqrt(wn);
        o->norms[2 * t + 1] = sqrt(gn);
    }
}

sslc_status sslc_optim_step(sslc_optim *optim, sslc_params *params, float lr)
{
    const sslc_optim_config *c = &optim->config;
    if (params->n_values != optim->n_values || params->count != optim->n_tensors)
        return sslc_error(SSLC_ERR_INVALID,
                          "optim: parameter table changed (%lld tensors, %lld values; the "
                          "optimizer was created for %lld, %lld)",
                          (long long)params->count, (long long)params->n_values,
                          (long long)optim->n_tensors, (long long)optim->n_values);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return sslc_error(SSLC_ERR_INVALID, "optim: learning rate must be >= 0, got %g",
                          (double)lr);
    optim->steps++;
    const double t = (double)optim->steps;
    const float step_size = (float)(lr / (1.0 - pow(c->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t));

    // One parallel region; each tensor is a work-shared loop (the implicit
    // barrier between tensors is cheap next to the update of a layer).
#pragma omp parallel
    {
        if (c->kind == SSLC_OPTIM_LARS)
            lars_norms(optim, params);
        for (int64_t k = 0; k < params->count; k++) {
            const sslc_tensor *x = &params->tensors[k];
            if (x->kind != SSLC_TENSOR_PARAM || (x->flags & SSLC_TENSOR_FROZEN))
                continue;
            float *p = params->values + x->offset;
            const float *g = params->grads + x->offset;
            float *s0 = optim->state[0] ? optim->state[0] + x->offset : NULL;
            float *s1 = optim->state[1] ? optim->state[1] + x->offset : NULL;
            const float wd = decays(c, x) ? c->weight_decay : 0.0f;
            switch (c->kind) {
            case SSLC_OPTIM_SGD: sgd_tensor(optim, p, s0, g, x->numel, lr, wd); break;
            case SSLC_OPTIM_LARS: {
                // SimCLR: trust = eta |w| / |d| when both norms are positive, else 1.
                double wn = optim->norms[2 * k], gn = optim->norms[2 * k + 1];
                bool adapt = !(c->exclude_no_decay && (x->flags & SSLC_TENSOR_NO_DECAY));
                double trust = adapt && wn > 0.0 && gn > 0.0
                                   ? (double)c->trust_coefficient * wn / gn
                                   : 1.0;
                lars_tensor(optim, p, s0, g, x->numel, (float)(lr * trust), wd);
                break;
            }
            case SSLC_OPTIM_ADAMW:
                adamw_tensor(optim, p, s0, s1, g, x->numel, lr, wd, step_size, bc2_sqrt);
                break;
            }
        }
    }
    return SSLC_OK;
}

int sslc_optim_state_count(const sslc_optim *optim) { return optim->n_states; }

const char *sslc_optim_state_name(const sslc_optim *optim, int i)
{
    if (i < 0 || i >= optim->n_states)
        return NULL;
    if (optim->config.kind == SSLC_OPTIM_ADAMW)
        return i == 0 ? "exp_avg" : "exp_avg_sq";
    return "momentum_buffer";
}

float *sslc_optim_state(sslc_optim *optim, int i)
{
    return i >= 0 && i < optim->n_states ? optim->state[i] : NULL;
}

int64_t sslc_optim_steps(const sslc_optim *optim) { return optim->steps; }

sslc_status sslc_optim_set_steps(sslc_optim *optim, int64_t steps)
{
    if (steps < 0)
        return sslc_error(SSLC_ERR_INVALID, "optim: step count %lld < 0", (long long)steps);
    optim->steps = steps;
    return SSLC_OK;
}
