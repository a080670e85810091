// The `sslc info` printout of a checkpoint: presentation, so it lives beside
// the command; it reads the header through io's public API and walks the
// file's groups with HDF5 itself.
#ifndef SSLC_CLI_CKPT_PRINT_H
#define SSLC_CLI_CKPT_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "src/core/status.h"

// Prints a readable summary: header, model, position, optimizer, state
// arrays, every part with its tensors and shapes (when tensors), and the
// configuration. Files of another format version are described, not refused;
// files that are not sslc checkpoints are refused as sslc_ckpt_read_info
// refuses them.
sslc_status sslc_ckpt_print(FILE *out, const char *path, bool tensors);

#endif
