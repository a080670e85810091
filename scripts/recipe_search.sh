#!/bin/bash
# Chooses a pretraining recipe without touching the test set (issue 16):
# each candidate pretrains on fashion-mnist:train#fit (50,000 images, no
# labels) for the same number of images, and is judged by linear probes on
# 1% and 10% of the labels of #fit, measured on the 10,000 held-out images
# of fashion-mnist:train#val (docs/data.md, "The validation split").
# Prints a markdown table, one line per candidate, and keeps every run
# under OUT/<name>.
#
#   scripts/recipe_search.sh [--out runs/search] [--width 16] [--epochs 1]
#       [--candidates FILE] [--no-lock]
#
# --epochs: the pretraining budget of every candidate, in passes over the
#   50,000 images (a fixed amount of work rather than of wall time, so a
#   busy machine does not favour the candidate that ran alone).
# --candidates: a file of "name|sslc pretrain options" lines; the default
#   list is the SimCLR search of docs/results-notes.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SSLC=${SSLC:-$ROOT/build/src/cli/sslc}
OUT=$ROOT/runs/search
WIDTH=16
EPOCHS=1
CANDIDATES=""
LOCK=(flock /tmp/sslc-cpu.lock)
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --width) WIDTH=$2; shift 2 ;;
        --epochs) EPOCHS=$2; shift 2 ;;
        --candidates) CANDIDATES=$2; shift 2 ;;
        --no-lock) LOCK=(); shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "recipe_search.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$SSLC" ] || { echo "recipe_search.sh: no sslc binary at $SSLC (build first: ninja -C build)" >&2; exit 1; }
list=$(mktemp)
trap 'rm -f "$list"' EXIT
if [ -n "$CANDIDATES" ]; then
    cp "$CANDIDATES" "$list"
else
    cat > "$list" <<'EOF'
b256-t0.5-c0.08-lr0.3|--batch 256 --tau 0.5 --crop-scale-min 0.08 --lr 0.3
b128-t0.2|--batch 128 --tau 0.2 --crop-scale-min 0.08 --lr 0.3
b128-t0.2-c0.25|--batch 128 --tau 0.2 --crop-scale-min 0.25 --lr 0.3
b128-t0.2-c0.25-lr1|--batch 128 --tau 0.2 --crop-scale-min 0.25 --lr 1.0
b128-t0.2-c0.25-lr2|--batch 128 --tau 0.2 --crop-scale-min 0.25 --lr 2.0
b128-t0.2-c0.25-adamw|--batch 128 --tau 0.2 --crop-scale-min 0.25 --optimizer adamw --lr 1e-3
b128-t0.2-c0.25-jitter1|--batch 128 --tau 0.2 --crop-scale-min 0.25 --lr 0.3 --jitter-strength 1.0
EOF
fi
mkdir -p "$OUT"
probe() { # probe DIR FRACTION -> top-1 % on #val
    "${LOCK[@]}" "$SSLC" linear-eval --ckpt "$1/last.h5" --train 'fashion-mnist:train#fit' \
        --test 'fashion-mnist:train#val' --label-fraction "$2" --results "$1/val.jsonl" \
        > "$1/probe-$2.log" 2>&1
    tail -1 "$1/val.jsonl" | sed 's/.*"top1": \([0-9.]*\).*/\1/' | awk '{ printf "%.1f", 100 * $1 }'
}
echo "| candidate ($EPOCHS epoch(s) of fashion-mnist:train#fit, width $WIDTH) | 1% probe on #val | 10% probe on #val | sslc pretrain options |"
echo "|---|---|---|---|"
while IFS='|' read -r name args; do
    [ -n "$name" ] && [ "${name:0:1}" != "#" ] || continue
    dir=$OUT/$name
    if [ ! -f "$dir/last.h5" ]; then
        rm -rf "$dir"
        # shellcheck disable=SC2086
        "${LOCK[@]}" "$SSLC" pretrain --method simclr --data 'fashion-mnist:train#fit' \
            --width "$WIDTH" --epochs "$EPOCHS" --knn-bank none --out "$dir" $args \
            > "$OUT/$name.log" 2>&1 || { echo "$name: pretraining failed, see $OUT/$name.log" >&2; continue; }
    fi
    rm -f "$dir/val.jsonl"
    p1=$(probe "$dir" 0.01)
    p10=$(probe "$dir" 0.1)
    echo "| $name | $p1 | $p10 | \`$args\` |"
done < "$list"
