#include "src/core/phases.h"

#include "src/core/log.h"

static const char *const names[SSLC_PHASE_COUNT] = {
    "data wait", "momentum update", "key forward", "forward", "loss", "backward",
    "gradient sums", "optimizer",
};

typedef struct {
    bool on;
    double step[SSLC_PHASE_COUNT], sum[SSLC_PHASE_COUNT];
    double step_start, wall; // the current step's first mark; the summed steps' wall time
    int64_t steps_seen, steps_summed;
} phases;

static phases P;

void sslc_phases_enable(bool on)
{
    P = (phases){.on = on};
}

double sslc_phase_end(sslc_phase p, double since)
{
    double now = sslc_now();
    if (P.on) {
        if (P.step_start == 0.0)
            P.step_start = since;
        P.step[p] += now - since;
    }
    return now;
}

void sslc_phases_step_done(void)
{
    if (!P.on)
        return;
    if (P.steps_seen++ > 0) {
        for (int p = 0; p < SSLC_PHASE_COUNT; p++)
            P.sum[p] += P.step[p];
        P.wall += sslc_now() - P.step_start;
        P.steps_summed++;
    }
    for (int p = 0; p < SSLC_PHASE_COUNT; p++)
        P.step[p] = 0.0;
    P.step_start = 0.0;
}

double sslc_phase_seconds(sslc_phase p)
{
    return P.steps_summed > 0 ? P.sum[p] / (double)P.steps_summed : 0.0;
}

void sslc_phases_report(void)
{
    if (!P.on || P.steps_summed == 0)
        return;
    const double n = (double)P.steps_summed, wall = P.wall / n;
    double marked = 0.0;
    sslc_info("profile: seconds per step over %lld steps (the first left out)",
              (long long)P.steps_summed);
    for (int p = 0; p < SSLC_PHASE_COUNT; p++) {
        double seconds = sslc_phase_seconds((sslc_phase)p);
        if (seconds == 0.0) // not a phase of this method
            continue;
        marked += seconds;
        sslc_info("  %-16s %8.4f s %5.1f%%", names[p], seconds, 100.0 * seconds / wall);
    }
    sslc_info("  %-16s %8.4f s %5.1f%%", "other", wall - marked, 100.0 * (wall - marked) / wall);
    sslc_info("  %-16s %8.4f s", "step", wall);
}
