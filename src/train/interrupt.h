// Stop-and-save on SIGINT / SIGTERM.
//
// Writing an HDF5 file is not async-signal-safe, so the handler only records
// the signal; the trainer polls sslc_interrupt_pending() after each step,
// saves a checkpoint (sslc_ckpt_save_run) and returns SSLC_ERR_INTERRUPTED.
// The first signal of a kind asks for that; the handler then restores the
// default action, so a second Ctrl-C kills at once. A kill during the save
// cannot harm the previous checkpoint, since saves are atomic renames.
#ifndef SSLC_TRAIN_INTERRUPT_H
#define SSLC_TRAIN_INTERRUPT_H

#include "src/core/status.h"

// Installs the handlers for SIGINT and SIGTERM and clears any pending request.
sslc_status sslc_interrupt_install(void);
// Restores the handlers that were there before sslc_interrupt_install.
void sslc_interrupt_restore(void);
// The signal number received since install (0 when none).
int sslc_interrupt_pending(void);

#endif
