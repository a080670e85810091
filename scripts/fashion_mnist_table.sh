#!/bin/bash
# The Fashion-MNIST label-efficiency table (issue 7): SimCLR and MoCo
# pretraining on the 60k training images without labels, then linear probes
# and fine-tuning with class-balanced 1% / 10% / 100% label subsets (seed 0),
# against logistic regression on raw pixels, a linear probe of the same
# encoder at random initialisation, and supervised training from scratch.
# Writes OUT/runs.tsv (one line per figure: row, fraction, wall seconds,
# result JSON, command), then docs/results.md and a PNG plot through
# scripts/plot_results.py.
#
#   scripts/fashion_mnist_table.sh [--budget MIN] [--fractions "0.01 0.1 1"]
#       [--train-minutes "4 8 12"] [--width 32] [--batch 128] [--methods "simclr moco"]
#       [--out runs/table] [--doc docs/results.md] [--pretrain-args "..."] [--no-lock]
#       [--simclr-args "..."] [--moco-args "..."] [--pretrained simclr=DIR] [--resume]
#
# --budget: minutes of pretraining per method (30 in the issue's protocol).
# --pretrain-args: extra `sslc pretrain` options for every method;
#   --simclr-args / --moco-args for one (SimCLR's default is the recipe
#   docs/results.md explains: --tau 0.2 --crop-scale-min 0.25 --lr 2; MoCo
#   v2 with its own defaults and the same crops: --crop-scale-min 0.25).
# --pretrained M=DIR: evaluate the run folder DIR of an earlier `sslc pretrain`
#   as method M instead of pretraining it again (repeatable); the table shows
#   the configuration stored in DIR/config.txt and the pretraining time from
#   DIR/metrics.jsonl.
# --resume: keep the figures of an earlier run into the same --out whose
#   row, fraction and command are unchanged (an interrupted table, or one
#   method added to it); run only the others.
# --train-minutes: minutes of fine-tuning / supervised training for each
#   fraction (the anchors' supervised runs took 4 / 8 / 12 minutes).
# Every heavy command runs under flock /tmp/sslc-cpu.lock so timings are
# not shared with other jobs on the machine (--no-lock: don't).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SSLC=${SSLC:-$ROOT/build/src/cli/sslc}
BUDGET=30
FRACTIONS="0.01 0.1 1"
TRAIN_MINUTES=""
WIDTH=32
BATCH=128
METHODS="simclr moco"
OUT=$ROOT/runs/table
DOC=$ROOT/docs/results.md
LOCK=1
RESUME=0
EXTRA_PRETRAIN=""
declare -A METHOD_ARGS=([simclr]="--tau 0.2 --crop-scale-min 0.25 --lr 2" [moco]="--crop-scale-min 0.25")
declare -A PRETRAINED=()
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) BUDGET=$2; shift 2 ;;
        --fractions) FRACTIONS=$2; shift 2 ;;
        --train-minutes) TRAIN_MINUTES=$2; shift 2 ;;
        --width) WIDTH=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --methods) METHODS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --doc) DOC=$2; shift 2 ;;
        --pretrain-args) EXTRA_PRETRAIN=$2; shift 2 ;;
        --simclr-args) METHOD_ARGS[simclr]=$2; shift 2 ;;
        --moco-args) METHOD_ARGS[moco]=$2; shift 2 ;;
        --no-lock) LOCK=0; shift ;;
        --resume) RESUME=1; shift ;;
        --pretrained) PRETRAINED[${2%%=*}]=${2#*=}; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "fashion_mnist_table.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$SSLC" ] || { echo "fashion_mnist_table.sh: no sslc binary at $SSLC (build first: ninja -C build)" >&2; exit 1; }
mkdir -p "$OUT"
TSV=$OUT/runs.tsv
PREV=$OUT/runs.prev.tsv
: > "$PREV"
if [ $RESUME = 1 ] && [ -f "$TSV" ]; then cp "$TSV" "$PREV"; fi
: > "$TSV"

# reuse ROW FRACTION SHOWN: copies the earlier run's line for this figure
# into the table; fails when there is none.
reuse() {
    awk -F'\t' -v r="$1" -v f="$2" -v c="$3" '$1 == r && $2 == f && $5 == c { print; found = 1 }
        END { exit !found }' "$PREV" >> "$TSV"
}

# Minutes of fine-tuning / supervised training for a fraction: from
# --train-minutes (same order as --fractions), else 4 / 8 / 12 as the anchors.
train_minutes() {
    local f=$1 i=0
    if [ -n "$TRAIN_MINUTES" ]; then
        for x in $FRACTIONS; do
            set -- $TRAIN_MINUTES
            shift $i
            [ "$x" = "$f" ] && { echo "${1:-4}"; return; }
            i=$((i + 1))
        done
    fi
    case $f in 0.01) echo 4 ;; 0.1) echo 8 ;; *) echo 12 ;; esac
}

# run ROW FRACTION NAME -- command...: times the command, keeps its log
# (NAME.log) and its --results line (NAME.json).
run() {
    local row=$1 frac=$2 name=$3
    shift 4
    local res=$OUT/$name.json log=$OUT/$name.log
    local cmd=("$@")
    # The command as one could paste it (paths relative to the repository;
    # --results / --name are bookkeeping and left out).
    local shown=${cmd[*]}
    shown=${shown//$ROOT\//}
    if reuse "$row" "$frac" "$shown"; then echo "== $row ${frac/#-/} : kept from the earlier run" >&2; return; fi
    rm -f "$res"
    if [ "$frac" != "-" ]; then cmd+=(--results "$res" --name "$row"); fi
    echo "== $row ${frac/#-/} : $shown" >&2
    # Timed inside the lock: the wall time is the command's own, not the wait.
    local timed=(bash -c 't0=$(date +%s.%N); "$@"; rc=$?; t1=$(date +%s.%N); echo "$t1 - $t0" | bc > "$0"; exit $rc' "$OUT/$name.wall")
    if [ $LOCK = 1 ]; then timed=(flock /tmp/sslc-cpu.lock "${timed[@]}"); fi
    "${timed[@]}" "${cmd[@]}" > "$log" 2>&1 || { echo "failed, see $log" >&2; tail -5 "$log" >&2; return 1; }
    local wall
    wall=$(cat "$OUT/$name.wall")
    [ -f "$res" ] || res=-
    printf '%s\t%s\t%s\t%s\t%s\n' "$row" "$frac" "$wall" "$res" "$shown" >> "$TSV"
    tail -1 "$log" >&2
}

S="${SSLC#$ROOT/}"
cd "$ROOT"
# 1. Pretraining, no labels.
for m in $METHODS; do
    if [ -n "${PRETRAINED[$m]:-}" ]; then
        dir=$(cd "${PRETRAINED[$m]}" && pwd)
        rm -rf "$OUT/$m"
        ln -s "$dir" "$OUT/$m"
        wall=$(tail -1 "$dir/metrics.jsonl" | sed 's/.*"time": \([0-9.]*\).*/\1/')
        printf '%s\t-\t%s\t-\t%s\n' "$m pretraining (earlier run, pretraining time only)" "$wall" \
            "$S pretrain $(tr -d '\n' < "$dir/config.txt" | sed 's/^ *//')" >> "$TSV"
        continue
    fi
    # An encoder is kept by --resume only when its run finished.
    if [ $RESUME = 0 ] || [ ! -f "$OUT/$m/last.h5" ]; then rm -rf "$OUT/$m"; fi
    run "$m pretraining" - "pretrain-$m" -- "$S" pretrain --method "$m" --width "$WIDTH" \
        --batch "$BATCH" --epochs 1000 --minutes "$BUDGET" --knn-every 0 --out "$OUT/$m" \
        ${METHOD_ARGS[$m]:-} $EXTRA_PRETRAIN
done
# 2. Evaluations per label fraction.
for f in $FRACTIONS; do
    tm=$(train_minutes "$f")
    run "raw pixels, logistic regression" "$f" "pixels-$f" -- "$S" linear-eval --features pixels \
        --label-fraction "$f"
    run "random-init encoder, linear probe" "$f" "random-$f" -- "$S" linear-eval --ckpt random \
        --width "$WIDTH" --label-fraction "$f"
    for m in $METHODS; do
        run "$m, linear probe" "$f" "probe-$m-$f" -- "$S" linear-eval --ckpt "$OUT/$m/last.h5" \
            --label-fraction "$f" --out "$OUT/probe-$m-$f"
        run "$m, fine-tuned" "$f" "finetune-$m-$f" -- "$S" finetune --ckpt "$OUT/$m/last.h5" \
            --label-fraction "$f" --minutes "$tm" --epochs 1000
    done
    run "supervised from scratch" "$f" "supervised-$f" -- "$S" supervised --width "$WIDTH" \
        --label-fraction "$f" --minutes "$tm" --epochs 1000
done
/usr/bin/python3 "$ROOT/scripts/plot_results.py" --runs "$TSV" --doc "$DOC" \
    --png "${DOC%.md}.png" --budget "$BUDGET" --width "$WIDTH" --batch "$BATCH"
for m in $METHODS; do
    last=$(ls -d "$OUT"/probe-"$m"-*/ 2>/dev/null | sort -t- -k3 -g | tail -1)
    [ -n "$last" ] && /usr/bin/python3 "$ROOT/scripts/plot_confusion.py" "${last%/}/confusion.csv" \
        "$OUT/confusion-$m.png" || true
done
echo "wrote $DOC" >&2
