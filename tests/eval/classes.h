// A tiny generated labelled image folder, shared by the evaluation tests
// (test_eval.c) and the distillation tests (tests/train/test_distill.c):
// 16x16 grayscale PNGs of three classes (horizontal stripes, vertical
// stripes, a bright centre square) with random phase, contrast and noise.
#ifndef SSLC_TESTS_EVAL_CLASSES_H
#define SSLC_TESTS_EVAL_CLASSES_H

#include "data/dataset.h"

// A fresh folder for tag with dir/<train|test>/<class>/<i>.png; returns dir
// (valid until 8 more calls).
const char *tc_make_folder(const char *tag, int per_class_train, int per_class_test);

// imagefolder:dir/split, decoded as 1 channel.
sslc_dataset *tc_open_ds(const char *dir, const char *split);

#endif
