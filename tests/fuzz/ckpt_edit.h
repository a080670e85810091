// Edits of a checkpoint through the HDF5 API, read from fuzz input: the
// structure-aware half of fuzz_ckpt. The files stay valid HDF5 (checksums
// right), so what gets tested is sslc's reader facing a well-formed file of
// the wrong shape: missing or extra parts, datasets where groups belong,
// dangling soft links, attributes of another type or rank, empty or huge
// dataspaces, other dtypes and layouts.
//
// A program is a list of operations, each an op byte and its arguments
// (object paths and names are indexes into fixed tables, so that most edits
// hit what sslc reads):
//   0 delete a link            path
//   1 delete an attribute      object, name
//   2 set an attribute         object, name, kind, 8 value bytes
//   3 set a dataset            group, name, dtype, space, 4 dim bytes, layout
//   4 soft link                group, name, target path (may dangle)
//   5 hard link                group, name, existing path
//   6 make a group             path
//   7 move a link              path, path
// Arguments past the end of the input read as 0. tests/fuzz/make_seeds.c
// writes example programs.
#ifndef SSLC_TESTS_FUZZ_CKPT_EDIT_H
#define SSLC_TESTS_FUZZ_CKPT_EDIT_H

#include <stdbool.h>

#include "tests/fuzz/fuzz.h"

// Applies the program in `in` to the HDF5 file at path, in place. Failed
// operations are skipped (HDF5 refusing an edit is not a finding); returns
// false only when the file cannot be opened for writing.
bool fuzz_ckpt_edit(const char *path, fuzz_input *in);

#endif
