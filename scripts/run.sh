#!/usr/bin/env bash
# The main job: SimCLR pretraining on Fashion-MNIST (Debian's
# dataset-fashion-mnist, 60k unlabeled training images) with a small
# ResNet-18 sized for 2 cores, about 10 minutes, then the kNN accuracy of
# the learned features on the 10k test images next to that of the same
# encoder at initialisation. Builds sslc first, installing what is missing.
#   scripts/run.sh                      # defaults below
#   SSLC_MINUTES=30 scripts/run.sh      # a longer budget
#   scripts/run.sh --width 32 ...       # any `sslc pretrain` option
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sslc_ensure_packages "${sslc_build_packages[@]}" "${sslc_data_packages[@]}"
sslc_build build -Dtests=disabled

out=${SSLC_OUT:-runs/simclr-fashion-mnist}
./build/src/cli/sslc pretrain --method simclr --data fashion-mnist:train \
    --arch resnet18 --width 16 --batch 256 --epochs 1000 --minutes "${SSLC_MINUTES:-8}" \
    --knn-every 0 --out "$out" "$@"
echo "encoder checkpoint: $out/last.h5 (sslc info $out/last.h5; scripts/sslc_torch.py loads it)"
