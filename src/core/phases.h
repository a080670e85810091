// Where a training step's time goes: wall seconds per phase, summed over
// the steps after the first (the first builds oneDNN primitives and faults
// in pages), when enabled (`sslc pretrain --profile`). A phase is marked at
// its end, with the time it began:
//
//     double t = sslc_now();
//     ... the key encoder's forward ...
//     t = sslc_phase_end(SSLC_PHASE_KEYS, t);
//
// Single-threaded: called from the thread that runs the step.
#ifndef SSLC_CORE_PHASES_H
#define SSLC_CORE_PHASES_H

#include <stdbool.h>
#include <stdint.h>

typedef enum sslc_phase {
    SSLC_PHASE_DATA,     // waiting for the augmentation pipeline
    SSLC_PHASE_MOMENTUM, // momentum update of the key encoder (MoCo)
    SSLC_PHASE_KEYS,     // key encoder forward (MoCo)
    SSLC_PHASE_FORWARD,  // encoder and heads forward of the trained views
    SSLC_PHASE_LOSS,     // the loss and its gradient with respect to the embeddings
    SSLC_PHASE_BACKWARD, // heads and encoder backward (with MPI: overlapped sums)
    SSLC_PHASE_SYNC,     // gradient sums over processes left after the backward
    SSLC_PHASE_UPDATE,   // the optimizer step
    SSLC_PHASE_COUNT
} sslc_phase;

void sslc_phases_enable(bool on);
// Adds now - since to phase p (when enabled) and returns now.
double sslc_phase_end(sslc_phase p, double since);
// The end of a training step: its phases join the sums (not the first step's).
void sslc_phases_step_done(void);
// Seconds per step of phase p over the summed steps (0 before any).
double sslc_phase_seconds(sslc_phase p);
// Logs a table: seconds per step of each phase, its share, and what the
// phases leave out of the steps' wall time (info level; nothing when off).
void sslc_phases_report(void);

#endif
