#include "src/optim/schedule.h"

#include <math.h>
#include <string.h>

double sslc_cosine(double from, double to, double t, double span)
{
    const double pi = 3.14159265358979323846;
    return to + (from - to) * 0.5 * (1.0 + cos(pi * t / span));
}

double sslc_schedule_scale_lr(double base, int64_t batch, sslc_lr_scaling scaling)
{
    switch (scaling) {
    case SSLC_LR_SCALE_LINEAR: return base * (double)batch / 256.0;
    case SSLC_LR_SCALE_SQRT: return base * sqrt((double)batch);
    case SSLC_LR_SCALE_NONE: break;
    }
    return base;
}

static const char *const scaling_names[] = {"none", "linear", "sqrt"};

const char *sslc_lr_scaling_name(sslc_lr_scaling scaling)
{
    return (unsigned)scaling < 3 ? scaling_names[scaling] : "unknown";
}

sslc_status sslc_lr_scaling_parse(sslc_lr_scaling *scaling, const char *name)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, scaling_names[i]) == 0) {
            *scaling = (sslc_lr_scaling)i;
            return SSLC_OK;
        }
    }
    return sslc_error(SSLC_ERR_INVALID,
                      "schedule: unknown learning-rate scaling '%s' (use none, linear or sqrt)",
                      name);
}

sslc_status sslc_schedule_init(sslc_schedule *s, double peak_lr, double final_lr,
                               int64_t warmup_steps, int64_t total_steps)
{
    if (!(peak_lr >= 0.0) || !isfinite(peak_lr) || !(final_lr >= 0.0) || !isfinite(final_lr))
        return sslc_error(SSLC_ERR_INVALID,
                          "schedule: learning rates must be finite and >= 0 (peak %g, final %g)",
                          peak_lr, final_lr);
    if (warmup_steps < 0 || total_steps <= warmup_steps)
        return sslc_error(SSLC_ERR_INVALID,
                          "schedule: need 0 <= warmup steps < total steps, got %lld and %lld "
                          "(fewer warmup epochs or more epochs)",
                          (long long)warmup_steps, (long long)total_steps);
    s->peak_lr = peak_lr;
    s->final_lr = final_lr;
    s->warmup_steps = warmup_steps;
    s->total_steps = total_steps;
    return SSLC_OK;
}

double sslc_schedule_lr(const sslc_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps)
        return s->peak_lr * (double)step / (double)s->warmup_steps;
    const double span = (double)(s->total_steps - s->warmup_steps);
    double t = (double)(step - s->warmup_steps);
    if (t > span)
        t = span;
    return sslc_cosine(s->peak_lr, s->final_lr, t, span);
}
