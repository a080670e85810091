#include "src/train/loop.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "src/core/log.h"
#include "src/core/phases.h"
#include "src/core/progress.h"
#include "src/dist/dist.h"
#include "src/optim/schedule.h"
#include "src/train/interrupt.h"

typedef struct loop {
    const sslc_loop_config *cfg;
    const sslc_trainer *tr;
    sslc_train_state s;
    sslc_schedule schedule;
    int64_t warmup_steps; // the unfitted schedule's (fixed-step warmup)
    FILE *metrics;
    sslc_progress bar;
    sslc_loop_result *res;
} loop;

static void log_metrics(loop *l, const char *fmt, ...) SSLC_PRINTF(2, 3);
static void log_metrics(loop *l, const char *fmt, ...)
{
    if (!l->metrics)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(l->metrics, fmt, ap);
    va_end(ap);
    fputc('\n', l->metrics);
    fflush(l->metrics);
}

// A schedule of `total` steps, the warmup fitted to it.
static sslc_status set_schedule(loop *l, int64_t total)
{
    const sslc_loop_config *c = l->cfg;
    int64_t warmup;
    if (c->warmup_fraction >= 0) {
        warmup = (int64_t)(c->warmup_fraction * (double)total);
        if (warmup >= total)
            warmup = total - 1;
    } else {
        warmup = l->warmup_steps >= total ? total / 10 : l->warmup_steps;
    }
    l->s.total_steps = total;
    l->bar.total = total;
    return sslc_schedule_init(&l->schedule, c->lr, c->final_lr, warmup, total);
}

static sslc_status monitor(loop *l, double *score)
{
    sslc_progress_break(&l->bar);
    sslc_status st = l->tr->monitor(l->tr->self, score);
    if (st)
        return st;
    const sslc_loop_config *c = l->cfg;
    if (l->s.step == 0)
        sslc_info("%s at initialisation %.2f%%", c->monitor_label, 100.0 * *score);
    else
        sslc_info("epoch %lld: %s %.2f%%", (long long)l->s.epoch, c->monitor_label,
                  100.0 * *score);
    log_metrics(l, "{\"step\": %lld, \"epoch\": %lld, \"%s\": %.4f}", (long long)l->s.step,
                (long long)l->s.epoch, c->monitor_name, *score);
    return SSLC_OK;
}

static sslc_status open_metrics(loop *l)
{
    const char *path = l->cfg->metrics_path;
    if (!path)
        return SSLC_OK;
    l->metrics = fopen(path, l->cfg->resume ? "a" : "w");
    if (!l->metrics)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return SSLC_OK;
}

// Losses and accuracies over a window of steps (log_every) and over the epoch.
typedef struct window {
    double loss, acc;
    int64_t steps, samples;
    double busy; // seconds in steps (data, forward, backward, update): no monitors or saves
    double comm; // of which waiting in collectives (several processes)
} window;

// Rates are over the time spent in steps, so monitors and checkpoints in a
// window do not lower them; "time" is the wall time since the start.
static void close_window(loop *l, window *w, float lr, double start, double wait, double busy)
{
    if (w->steps == 0)
        return;
    double now = sslc_now();
    double loss = w->loss / (double)w->steps;
    log_metrics(l,
                "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"acc\": %.4f, "
                "\"lr\": %.6g, \"%s_per_s\": %.2f, \"data_wait\": %.4f, \"comm_wait\": %.4f, "
                "\"time\": %.2f}",
                (long long)l->s.step, (long long)l->s.epoch, loss, w->acc / (double)w->steps,
                (double)lr, l->cfg->unit, (double)w->samples / w->busy, wait / busy,
                w->comm / w->busy, now - start);
    if (isnan(l->res->first_loss))
        l->res->first_loss = loss;
    l->res->last_loss = loss;
    *w = (window){0};
}

sslc_status sslc_train_loop(const sslc_loop_config *cfg, const sslc_trainer *tr,
                            const sslc_batch_source *src, sslc_loop_result *res)
{
    loop l = {.cfg = cfg, .tr = tr, .res = res};
    *res = (sslc_loop_result){.first_loss = NAN, .last_loss = NAN, .monitor_initial = -1.0,
                              .monitor_last = -1.0, .monitor_best = -1.0};
    const int64_t per_epoch = src->steps_per_epoch;
    if (per_epoch < 1)
        return sslc_error(SSLC_ERR_INVALID, "%s: the data make no batch", cfg->what);
    const bool resumed = cfg->resume != NULL;
    const bool quiet = cfg->quiet || sslc_dist_rank() > 0, many = sslc_dist_size() > 1;
    if (resumed)
        l.s = *cfg->resume;
    l.warmup_steps = cfg->warmup_steps;
    sslc_progress_init(&l.bar, stderr, cfg->log_every, 0, l.s.step);
    sslc_status st = set_schedule(&l, resumed ? l.s.total_steps : cfg->epochs * per_epoch);
    if (st || (st = open_metrics(&l)))
        goto done;
    const bool signals = tr->save != NULL;
    if (signals && (st = sslc_interrupt_install()))
        goto done;
    if (tr->monitor && !resumed) {
        // The same model at initialisation: the baseline later figures are
        // read against.
        if ((st = monitor(&l, &res->monitor_initial)))
            goto done;
    }

    const double start = sslc_now();
    const int64_t start_step = l.s.step;
    int64_t samples_here = 0;
    double wait = 0.0, busy = 0.0, comm = 0.0, fit_from = 0.0;
    bool fitted = resumed, stop = false;
    window win = {0};
    double epoch_acc = 0.0;
    int64_t epoch_samples = 0;
    float lr = 0.0f;
    while (!stop && l.s.step < l.s.total_steps) {
        int64_t first = l.s.step - l.s.epoch * per_epoch;
        if (first >= per_epoch) { // resumed exactly at an epoch boundary
            l.s.epoch++;
            continue;
        }
        if ((st = src->begin_epoch(src->ctx, l.s.epoch, first)))
            break;
        epoch_acc = 0.0;
        epoch_samples = 0;
        for (;;) {
            double t0 = sslc_now(), comm0 = sslc_dist_wait_seconds();
            sslc_train_batch b = {0};
            if ((st = src->next(src->ctx, &b)) || !b.x)
                break;
            double t = sslc_phase_end(SSLC_PHASE_DATA, t0);
            wait += t - t0;

            for (int g = 0; g < tr->n_groups; g++)
                sslc_params_zero_grad(tr->groups[g].params);
            sslc_step_result r = {0};
            if ((st = tr->step(tr->self, &b, &l.s, &r)))
                break;
            if (!isfinite(r.loss)) {
                st = sslc_error(SSLC_ERR_INVALID,
                                "%s: the loss diverged (%g) at step %lld; lower --lr%s",
                                cfg->what, r.loss, (long long)l.s.step,
                                tr->save ? " (the last checkpoint before it is kept)" : "");
                break;
            }
            // Data parallelism: each process holds the gradient of the global
            // loss with respect to its share; their sum is the whole of it.
            t = sslc_now();
            for (int g = 0; g < tr->n_groups && many && !tr->sums_grads && !st; g++)
                st = sslc_dist_sum_f32(tr->groups[g].params->grads,
                                       (size_t)tr->groups[g].params->n_values);
            t = sslc_phase_end(SSLC_PHASE_SYNC, t);
            lr = (float)sslc_schedule_lr(&l.schedule, l.s.step);
            for (int g = 0; g < tr->n_groups && !st; g++)
                st = sslc_optim_step(tr->groups[g].optim, tr->groups[g].params, lr);
            if (st)
                break;
            sslc_phase_end(SSLC_PHASE_UPDATE, t);
            sslc_phases_step_done();
            l.s.step++;
            const int64_t samples = b.count * sslc_dist_size(); // every rank's share
            l.s.samples += samples;
            double step_time = sslc_now() - t0, comm_time = sslc_dist_wait_seconds() - comm0;
            busy += step_time;
            win.busy += step_time;
            comm += comm_time;
            win.comm += comm_time;
            samples_here += samples;
            win.loss += r.loss;
            win.acc += r.acc;
            win.steps++;
            win.samples += samples;
            epoch_acc += r.acc * (double)samples;
            epoch_samples += samples;

            // Fit the schedule to a time budget once the step time is known:
            // timed over steps 5-25, after the first steps' one-off set-up
            // (page faults, oneDNN primitives), still inside any warmup.
            int64_t done_here = l.s.step - start_step;
            if (cfg->minutes > 0 && !fitted && done_here == 5)
                fit_from = sslc_now();
            if (cfg->minutes > 0 && !fitted && done_here == 25) {
                double now = sslc_now(), per_step = (now - fit_from) / 20.0;
                int64_t fit =
                    l.s.step + (int64_t)((cfg->minutes * 60.0 - (now - start)) / per_step);
                if ((st = sslc_dist_broadcast(&fit, sizeof fit, 0))) // rank 0's pace for all
                    break;
                if (fit < l.s.total_steps) {
                    if ((st = set_schedule(&l, fit > l.s.step + 1 ? fit : l.s.step + 1)))
                        break;
                    sslc_progress_break(&l.bar);
                    sslc_info("time budget %.1f min at %.3f s/step: %lld steps", cfg->minutes,
                              per_step, (long long)l.s.total_steps);
                }
                fitted = true;
            }
            if (!quiet) {
                char text[256];
                int n = snprintf(text, sizeof text,
                                 "epoch %lld loss %.4f acc %.3f lr %.4f %.0f %s/s wait %.0f%%",
                                 (long long)l.s.epoch, r.loss, r.acc, (double)lr,
                                 (double)samples_here / busy, cfg->unit, 100.0 * wait / busy);
                if (many && n > 0 && (size_t)n < sizeof text)
                    snprintf(text + n, sizeof text - (size_t)n, " comm %.0f%%", 100.0 * comm / busy);
                sslc_progress_update(&l.bar, l.s.step, text);
            }
            if ((cfg->log_every > 0 && l.s.step % cfg->log_every == 0) ||
                l.s.step == l.s.total_steps)
                close_window(&l, &win, lr, start, wait, busy);
            bool timeout = cfg->minutes > 0 && sslc_now() - start >= cfg->minutes * 60.0;
            bool limit = cfg->max_steps > 0 && done_here >= cfg->max_steps;
            bool signal = signals && sslc_interrupt_pending();
            if (many) { // every process stops at the same step
                double flags[2] = {timeout, signal};
                if ((st = sslc_dist_sum_f64(flags, 2)))
                    break;
                timeout = flags[0] > 0, signal = flags[1] > 0;
            }
            if (signal || timeout || limit || l.s.step >= l.s.total_steps) {
                stop = true;
                res->interrupted = signal;
                if (signal)
                    sslc_dist_in_step(); // every rank stops here, together
                break;
            }
            if (tr->save && cfg->ckpt_every > 0 && l.s.step % cfg->ckpt_every == 0 &&
                (st = tr->save(tr->self, &l.s, false)))
                break;
        }
        if (st)
            break;
        bool epoch_done = l.s.step - l.s.epoch * per_epoch >= per_epoch;
        if (epoch_done)
            l.s.epoch++;
        bool last = stop || l.s.step >= l.s.total_steps;
        if (last)
            close_window(&l, &win, lr, start, wait, busy);
        if (epoch_samples > 0)
            res->last_epoch_acc = epoch_acc / (double)epoch_samples;
        bool is_best = false;
        bool due = epoch_done && cfg->monitor_every > 0 && l.s.epoch % cfg->monitor_every == 0;
        if (tr->monitor && (due || last) && !res->interrupted) {
            double score = 0.0;
            if ((st = monitor(&l, &score)))
                break;
            res->monitor_last = score;
            is_best = score > res->monitor_best;
            if (is_best)
                res->monitor_best = score;
        }
        if (tr->save && (epoch_done || last)) {
            sslc_progress_break(&l.bar);
            if ((st = tr->save(tr->self, &l.s, is_best)))
                break;
        }
    }
    sslc_progress_break(&l.bar);
    if (signals)
        sslc_interrupt_restore();
    res->seconds = sslc_now() - start;
    res->samples_per_s = busy > 0 ? (double)samples_here / busy : 0.0;
    res->data_wait_fraction = busy > 0 ? wait / busy : 0.0;
    res->comm_wait_fraction = busy > 0 ? comm / busy : 0.0;
    if (!st && res->interrupted)
        st = cfg->run_dir ? sslc_error(SSLC_ERR_INTERRUPTED,
                                       "interrupted at step %lld; the run is saved in %s "
                                       "(continue with --resume %s)",
                                       (long long)l.s.step, cfg->run_dir, cfg->run_dir)
                          : sslc_error(SSLC_ERR_INTERRUPTED, "interrupted at step %lld",
                                       (long long)l.s.step);
done:
    res->state = l.s;
    if (l.metrics)
        fclose(l.metrics);
    return st;
}
