// Files and folders: the few file-system operations every layer shares.
#ifndef SSLC_CORE_FS_H
#define SSLC_CORE_FS_H

#include "src/core/status.h"

// Creates the folder path and every missing parent (mkdir -p); one that
// exists is fine. what names it in the error ("run folder"), which also
// names the part that could not be made and why.
sslc_status sslc_make_dir(const char *path, const char *what);

// Creates the folder that will hold the file path, with its parents (a
// bare file name needs none); what names the file in the error.
sslc_status sslc_make_parent_dir(const char *path, const char *what);

// Writes text to dir/name (replacing it); the error names the file.
sslc_status sslc_write_text(const char *dir, const char *name, const char *text);

#endif
