#!/usr/bin/env bash
# The main job: SimCLR pretraining on Fashion-MNIST (Debian's
# dataset-fashion-mnist, 60k unlabeled training images) with a small
# ResNet-18 sized for 2 cores, about 10 minutes, then the kNN accuracy of
# the learned features on the 10k held-out training images
# (fashion-mnist:train#val) next to that of the same encoder at
# initialisation, and linear probes with 1% and 10% of the labels, measured
# on the 10k test images, against a random-init encoder. Builds sslc first, installing what
# is missing.
#   scripts/run.sh                      # defaults below
#   SSLC_MINUTES=30 scripts/run.sh      # a longer budget
#   SSLC_WIDTH=32 scripts/run.sh        # a wider encoder
#   scripts/run.sh --tau 0.2 ...        # any other `sslc pretrain` option
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sslc_ensure_packages "${sslc_build_packages[@]}" "${sslc_data_packages[@]}"
sslc_build build -Dtests=disabled

out=${SSLC_OUT:-runs/simclr-fashion-mnist}
width=${SSLC_WIDTH:-16}
sslc=./build/src/cli/sslc
"$sslc" pretrain --method simclr --data fashion-mnist:train \
    --arch resnet18 --width "$width" --batch 256 --epochs 1000 --minutes "${SSLC_MINUTES:-8}" \
    --knn-every 0 --out "$out" "$@"

# Linear probes (logistic regression on frozen features) with 1% and 10% of
# the labels, next to the same encoder at random initialisation.
rm -f "$out/probes.jsonl"
for f in 0.01 0.1; do
    "$sslc" linear-eval --ckpt "$out/last.h5" --label-fraction "$f" \
        --results "$out/probes.jsonl" --name "SimCLR encoder" > "$out/probe-$f.log" 2>&1
    "$sslc" linear-eval --ckpt random --width "$width" --label-fraction "$f" \
        --results "$out/probes.jsonl" --name "random-init encoder" > "$out/probe-random-$f.log" 2>&1
done
echo
echo "linear probe, top-1 on the 10k Fashion-MNIST test images:"
sed -E 's/.*"name": "([^"]*)".*"label_fraction": ([0-9.]+).*"top1": ([0-9.]+).*/\1\t\2\t\3/' \
    "$out/probes.jsonl" | awk -F'\t' '{ printf "  %-22s %4g%% labels: %.2f%%\n", $1, 100 * $2, 100 * $3 }'
echo "encoder checkpoint: $out/last.h5 (sslc info $out/last.h5; scripts/sslc_torch.py loads it)"
