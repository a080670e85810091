// Internal to src/io: files that appear whole or not at all. A writer puts
// the bytes in "<path>.tmp-<pid>" in the same folder, syncs and closes it,
// then sslc_atomic_commit renames it over path and syncs the folder. A crash,
// a kill or a full disk at any point leaves the old path untouched; a failed
// writer removes its temporary file, and sslc_ckpt_save_run removes those of
// processes that were killed (their pid is in the name).
//
// The testing hook sslc_ckpt_inject_fault (checkpoint.h) lives here too: the
// stages it fails are stages of an atomic write.
#ifndef SSLC_IO_ATOMIC_FILE_H
#define SSLC_IO_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "src/core/status.h"
#include "src/io/checkpoint.h"

// "<path>.tmp-<this pid>", a new string (NULL: out of memory, recorded).
char *sslc_atomic_tmp_path(const char *path);

// Creates (or truncates) path with the n bytes of buf, fsyncs and closes it.
// Messages name path and the system's reason ("cannot write '<path>': File
// too large"). On failure the caller removes path.
sslc_status sslc_atomic_write(const char *path, const void *buf, size_t n);

// Copies from into to (created or truncated), synced; as sslc_atomic_write.
sslc_status sslc_atomic_copy(const char *from, const char *to);

// fsyncs a file or, with dir, a folder.
sslc_status sslc_atomic_sync(const char *path, bool dir);

// The last steps of every atomic write: tmp is complete, synced and closed;
// renames it over path and syncs the folder (a failed folder sync only warns:
// the file is in place). On failure tmp is left for the caller to remove.
sslc_status sslc_atomic_commit(const char *tmp, const char *path);

// Fails with "injected fault (testing)" when the test hook asks for stage.
sslc_status sslc_atomic_fault(sslc_ckpt_fault stage);

#endif
