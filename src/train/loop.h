// The training loop every trainer shares: SimCLR, MoCo, supervised and
// fine-tuning are step functions plugged into it.
//
// The loop owns what they have in common: epochs of batches from a source,
// the learning-rate schedule (warmup + cosine, fitted to a time budget),
// zeroing gradients, the optimizer updates, stop conditions (max steps,
// minutes, SIGINT / SIGTERM), the divergence check, progress and metrics
// lines, periodic checkpoints and monitors. A step function only computes
// the loss and accumulates gradients.
//
// One step:  zero grads -> trainer step (forward + backward) -> loss finite?
//            -> [gradient all-reduce: the seam for data parallelism]
//            -> optimizer step of every group at lr(step) -> step++
//
// A non-finite loss stops the run with an error before its update, and no
// checkpoint of that state is written, so the last one on disk is the last
// good state.
#ifndef SSLC_TRAIN_LOOP_H
#define SSLC_TRAIN_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/status.h"
#include "src/nn/params.h"
#include "src/optim/optimizer.h"

typedef struct sslc_train_batch {
    const float *x;        // (views * count, H, W, C) normalised views
    const float *x_local;  // multi-crop: (local views * count, h, h, C) small views, or NULL
    const int64_t *labels; // (count,), or NULL when the trainer needs none
    int64_t count;         // samples (pairs for contrastive views)
} sslc_train_batch;

// Where batches come from, one epoch at a time: begin_epoch(e, first), then
// next() until it sets *batch->x to NULL. Batches must be a function of
// (epoch, step), so a resumed run sees the same ones.
typedef struct sslc_batch_source {
    void *ctx;
    int64_t steps_per_epoch;
    sslc_status (*begin_epoch)(void *ctx, int64_t epoch, int64_t first_step);
    sslc_status (*next)(void *ctx, sslc_train_batch *batch);
} sslc_batch_source;

// The position of a run, saved in checkpoints and restored on resume.
typedef struct sslc_train_state {
    int64_t step, epoch, samples;
    int64_t total_steps; // the schedule's length (changes once a budget is fitted)
} sslc_train_state;

typedef struct sslc_step_result {
    double loss; // mean over the batch
    double acc;  // fraction in [0, 1]: the contrastive or classification top-1
} sslc_step_result;

// A parameter table and the optimizer that updates it.
typedef struct sslc_train_group {
    sslc_params *params;
    sslc_optim *optim;
} sslc_train_group;

enum { SSLC_TRAIN_MAX_GROUPS = 4 };

typedef struct sslc_trainer {
    void *self;
    sslc_train_group groups[SSLC_TRAIN_MAX_GROUPS];
    int n_groups;
    // Forward and backward of one batch at position s (s->step updates
    // done so far, of a schedule of s->total_steps): adds the gradients of
    // the mean loss to the groups' grads (zeroed by the loop) and may change
    // state of its own (MoCo's key encoder and queue).
    sslc_status (*step)(void *self, const sslc_train_batch *batch, const sslc_train_state *s,
                        sslc_step_result *result);
    // Optional: writes a checkpoint of the whole state at position s.
    sslc_status (*save)(void *self, const sslc_train_state *s, bool is_best);
    // Optional: a score of the model, higher is better (the kNN monitor).
    sslc_status (*monitor)(void *self, double *score);
    // The step leaves its gradients summed over MPI ranks already (it sums
    // them in buckets while its backward runs); else the loop sums them.
    bool sums_grads;
} sslc_trainer;

typedef struct sslc_loop_config {
    const char *what; // names the run in messages: "pretrain", "finetune"
    const char *unit; // what a sample is, for rates: "pairs", "images"
    int64_t epochs;   // the schedule's length before any budget is fitted
    double minutes;   // > 0: stop after this wall time; the schedule is fitted to it
    int64_t max_steps; // > 0: stop after this many steps of this invocation

    double lr, final_lr; // peak (already scaled for the batch) and end of the cosine
    // Warmup: a fraction of the schedule (kept as the schedule is fitted),
    // or, when warmup_fraction < 0, a number of steps (total / 10 when that
    // does not fit the fitted schedule).
    double warmup_fraction;
    int64_t warmup_steps;

    int64_t log_every; // progress and metrics lines every this many steps
    bool quiet;        // no progress output
    const char *run_dir;      // where the trainer's save writes, for messages (NULL: none)
    const char *metrics_path; // JSON lines per log window (NULL: none)
    int64_t ckpt_every;       // steps between checkpoints (0: at each epoch's end)
    int64_t monitor_every;    // epochs between monitors (0: at the end only)
    const char *monitor_name; // "knn_top1": its metrics key
    const char *monitor_label; // "kNN top-1 (k=200)": its progress label

    // Resuming: the saved position (NULL: a fresh run). The schedule keeps
    // the saved length, metrics are appended, and the initial monitor skipped.
    const sslc_train_state *resume;
} sslc_loop_config;

typedef struct sslc_loop_result {
    sslc_train_state state;       // where the run stopped
    double first_loss, last_loss; // means over the first and last windows of log_every steps
                                  // (a shorter last window counts)
    double last_epoch_acc;        // sample-weighted over the last epoch's steps
    double monitor_initial;       // the monitor at initialisation (-1: none)
    double monitor_last, monitor_best; // (-1: none)
    double seconds;                           // wall time, monitors and checkpoints included
    double samples_per_s, data_wait_fraction; // over the time in steps only
    double comm_wait_fraction;                // of it, waiting in collectives (MPI)
    bool interrupted; // stopped by a signal, after the checkpoint was written
} sslc_loop_result;

// Runs the loop. When the trainer saves, SIGINT and SIGTERM stop it after
// the current step and a checkpoint: it returns SSLC_ERR_INTERRUPTED with a
// message saying how to continue. Without save, signals act as usual.
sslc_status sslc_train_loop(const sslc_loop_config *cfg, const sslc_trainer *trainer,
                            const sslc_batch_source *source, sslc_loop_result *result);

#endif
