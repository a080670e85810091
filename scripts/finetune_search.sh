#!/bin/bash
# Chooses the fine-tuning learning rate of each --mode without touching the
# test set (issue 17): `sslc finetune` of one pretrained encoder on a
# class-balanced --fraction of the labels of fashion-mnist:train#fit, for
# the table's time budget, measured on the 10,000 held-out images of
# fashion-mnist:train#val (docs/data.md, "The validation split"). Prints a
# markdown table (mode, base lr, #val top-1, steps) and, per mode, the lr
# with the best #val top-1, as the --mode-args options of
# scripts/fashion_mnist_table.sh. Every run's result is appended to
# OUT/results.jsonl; a run already there is not repeated.
#
#   scripts/finetune_search.sh --ckpt RUN_DIR [--modes "full bias lora prompt"]
#       [--lrs MODE="0.05 0.2 1"] [--fraction 0.01] [--minutes 2] [--seed 0]
#       [--out runs/finetune-search] [--no-lock]
#
# --lrs MODE="...": the base learning rates tried for MODE (repeatable;
#   defaults: full 0.02 0.05 0.2, bias and lora 0.05 0.2 1, prompt 0.05 0.5 5,
#   bn-head 0.05 0.2 1). The base lr is the peak lr at batch 256 (sslc
#   finetune --lr, linear scaling).
# A mode the encoder cannot take (prompt for a ResNet, bn-head for a ViT)
# is refused by sslc finetune and left out of the table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SSLC=${SSLC:-$ROOT/build/src/cli/sslc}
CKPT=""
MODES="full bias lora prompt"
FRACTION=0.01
MINUTES=2
SEED=0
OUT=$ROOT/runs/finetune-search
LOCK=(flock /tmp/sslc-cpu.lock)
declare -A LRS=([full]="0.02 0.05 0.2" [bias]="0.05 0.2 1" [lora]="0.05 0.2 1"
    [prompt]="0.05 0.5 5" [bn-head]="0.05 0.2 1")
while [ $# -gt 0 ]; do
    case "$1" in
        --ckpt) CKPT=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --lrs) LRS[${2%%=*}]=${2#*=}; shift 2 ;;
        --fraction) FRACTION=$2; shift 2 ;;
        --minutes) MINUTES=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-lock) LOCK=(); shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "finetune_search.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$CKPT" ] || { echo "finetune_search.sh: give --ckpt RUN_DIR (an sslc pretrain run)" >&2; exit 2; }
[ -x "$SSLC" ] || { echo "finetune_search.sh: no sslc binary at $SSLC (build first: ninja -C build)" >&2; exit 1; }
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
touch "$RESULTS"

# top1 NAME: the #val top-1 (%) of the run NAME in RESULTS, empty if none.
top1() {
    grep -F "\"name\": \"$1\"" "$RESULTS" | tail -1 | sed -n 's/.*"top1": \([0-9.]*\).*/\1/p' |
        awk '{ printf "%.2f", 100 * $1 }'
}

echo "| mode | base lr | top-1 on #val | $(basename "$CKPT"), $FRACTION of the labels of #fit, $MINUTES min, seed $SEED |"
echo "|---|---|---|---|"
chosen=()
for mode in $MODES; do
    best="" best_lr=""
    for lr in ${LRS[$mode]:-0.05}; do
        name="$mode lr $lr"
        log=$OUT/${mode}-lr$lr.log
        if [ -z "$(top1 "$name")" ]; then
            if ! "${LOCK[@]}" "$SSLC" finetune --ckpt "$CKPT" --mode "$mode" --lr "$lr" \
                --train 'fashion-mnist:train#fit' --test 'fashion-mnist:train#val' \
                --label-fraction "$FRACTION" --seed "$SEED" --minutes "$MINUTES" --epochs 1000 \
                --results "$RESULTS" --name "$name" > "$log" 2>&1; then
                echo "| $mode | $lr | failed: $(grep 'sslc finetune:' "$log" | tail -1) | |"
                continue
            fi
        fi
        t=$(top1 "$name")
        steps=$(grep -o '[0-9]* steps (' "$log" | tail -1 | cut -d' ' -f1)
        echo "| $mode | $lr | $t | ${steps:-?} steps |"
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a > b) }'; then
            best=$t best_lr=$lr
        fi
    done
    [ -n "$best_lr" ] && chosen+=("--mode-args $mode=\"--lr $best_lr\"")
done
echo
echo "chosen on #val: ${chosen[*]}"
