// Learning-rate schedule: linear warmup from 0, then cosine decay per step
// to a final value, as SimCLR (Chen et al. 2020, appendix B.1) and MoCo v2.
//
//   step < W:   lr = peak * step / W
//   step >= W:  lr = final + (peak - final) * (1 + cos(pi * min(step - W, T - W) / (T - W))) / 2
//
// with W warmup steps and T total steps; `step` counts completed updates, so
// the first update uses lr(0) (0 with warmup, as SimCLR's global_step 0).
#ifndef SSLC_OPTIM_SCHEDULE_H
#define SSLC_OPTIM_SCHEDULE_H

#include <stdint.h>

#include "src/core/status.h"

typedef enum sslc_lr_scaling {
    SSLC_LR_SCALE_NONE,   // lr = base
    SSLC_LR_SCALE_LINEAR, // lr = base * B / 256 (Goyal et al. 2017; SimCLR, MoCo)
    SSLC_LR_SCALE_SQRT,   // lr = base * sqrt(B) (SimCLR v1 appendix B.1, with LARS)
} sslc_lr_scaling;

// The cosine from `from` at t = 0 to `to` at t = span:
// to + (from - to) (1 + cos(pi t / span)) / 2. The one formula behind the
// learning rate, MoCo's momentum ramp and the probes' SGD.
double sslc_cosine(double from, double to, double t, double span);

// The peak learning rate for a batch of B images (pairs, not views).
double sslc_schedule_scale_lr(double base, int64_t batch, sslc_lr_scaling scaling);
// "none", "linear", "sqrt"; parse returns SSLC_ERR_INVALID on anything else.
const char *sslc_lr_scaling_name(sslc_lr_scaling scaling);
sslc_status sslc_lr_scaling_parse(sslc_lr_scaling *scaling, const char *name);

typedef struct sslc_schedule {
    double peak_lr;
    double final_lr;       // 0 by default
    int64_t warmup_steps;  // W, may be 0
    int64_t total_steps;   // T > W
} sslc_schedule;

// Fills *s; checks peak >= 0, final >= 0, 0 <= W < T.
sslc_status sslc_schedule_init(sslc_schedule *s, double peak_lr, double final_lr,
                               int64_t warmup_steps, int64_t total_steps);
// The learning rate of the update after `step` completed ones; steps past T
// stay at final_lr.
double sslc_schedule_lr(const sslc_schedule *s, int64_t step);

#endif
