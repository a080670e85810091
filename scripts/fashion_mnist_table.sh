#!/bin/bash
# The Fashion-MNIST label-efficiency table (issues 7, 16 and 17): pretraining
# on the 60k training images without labels (SimCLR, MoCo v2, SimCLR with
# multi-crop views, SimCLR with SimCLRv2's 3-layer head; ViT-Tiny with MoCo
# v3 or SimCLR), then linear probes and fine-tuning (every weight, or one of
# the parameter-efficient --modes) with class-balanced 1% / 10% / 100% label
# subsets, the
# SimCLRv2 encoder fine-tuned from its first head layer and distilled into
# a student on the unlabeled images, against logistic regression on raw
# pixels, a linear probe of the same encoder at random initialisation, and
# supervised training from scratch. Below 100% every figure is measured for
# each of --seeds label subsets (pretraining stays one run per method); the
# table shows mean +- standard deviation. Writes OUT/runs.tsv (one line per
# figure: row, fraction, seed, wall seconds, result JSON, command, hash of
# the checkpoints it read), then docs/results.md and a PNG plot through
# scripts/plot_results.py.
#
#   scripts/fashion_mnist_table.sh [--budget MIN] [--fractions "0.01 0.1 1"]
#       [--seeds "0 1 2"] [--train-minutes "4 8 12"] [--distill-minutes "11 7 3"]
#       [--width 32] [--batch 128] [--methods "simclr moco simclr-multicrop simclr-v2"]
#       [--modes "full"] [--mode-args [METHOD:]MODE="..."] [--no-anchors] [--title TEXT]
#       [--preamble FILE] [--notes FILE]
#       [--distill "simclr-v2"] [--out runs/table] [--doc docs/results.md]
#       [--pretrain-args "..."] [--args METHOD="..."] [--pretrained METHOD=DIR]
#       [--resume] [--no-lock]
#
# --budget: minutes of pretraining per method (30 in the issues' protocol).
# --methods: which pretrainings; each is `sslc pretrain` with its own
#   options, replaced by --args METHOD="..." (defaults: simclr is the recipe
#   docs/results.md explains, --method simclr --tau 0.2 --crop-scale-min
#   0.25 --lr 2; moco is MoCo v2 with the same crops; simclr-multicrop adds
#   --local-crops 4 --local-size 14; simclr-v2 adds --proj-layers 3
#   --proj-bn and is fine-tuned with --from-head-layer 1; vit-mocov3 is
#   ViT-Tiny, patch 4, with MoCo v3, its sin-cos positions and frozen patch
#   projection; vit-simclr the same ViT with SimCLR and AdamW; both with a
#   kNN monitor bank of 10,000 images, as a ViT forward over all 50,000 is slow).
# --modes: how each encoder is fine-tuned (sslc finetune --mode): full
#   (every weight; the row "M, fine-tuned"), bias, lora, prompt (ViT),
#   bn-head (ResNet); each other mode is the row "M, fine-tuned (MODE)". A
#   mode the encoder cannot take is left out for it (prompt for a ResNet,
#   bn-head for a ViT: a ViT is a method named vit-* or run with --arch vit-*).
# --mode-args MODE="..." or METHOD:MODE="...": extra `sslc finetune`
#   options for every fine-tuning in that mode (of that method), e.g. the
#   learning rate scripts/finetune_search.sh chose on the validation split.
# --no-anchors: leave out the rows that do not depend on --methods (raw
#   pixels, random-init encoder, supervised from scratch).
# --title: the encoder as the page's text names it; --preamble, --notes:
#   markdown files the page has before and after the table (how choices
#   were made, what the figures say).
# --pretrain-args: extra `sslc pretrain` options for every method.
# --distill: the methods whose fine-tuned classifiers teach a student
#   (`sslc distill`, initialised from the same pretrained encoder).
# --pretrained M=DIR: evaluate the run folder DIR of an earlier `sslc pretrain`
#   as method M instead of pretraining it again (repeatable); the table shows
#   the configuration stored in DIR/config.txt and the pretraining time from
#   DIR/metrics.jsonl.
# --resume: keep the figures of an earlier run into the same --out whose
#   row, fraction, seed, command and input checkpoints (by content, not
#   path) are unchanged; run only the others.
# --train-minutes: minutes of fine-tuning / supervised training for each
#   fraction (the anchors' supervised runs took 4 / 8 / 12 minutes);
#   --distill-minutes: of distillation (default: 15 minus those).
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
METHODS="simclr moco simclr-multicrop simclr-v2"
MODES="full"
ANCHORS=1
TITLE=""
PREAMBLE=""
NOTES=""
DISTILL="simclr-v2"
SEEDS="0 1 2"
DISTILL_MINUTES=""
OUT=$ROOT/runs/table
DOC=$ROOT/docs/results.md
LOCK=1
RESUME=0
EXTRA_PRETRAIN=""
SIMCLR="--method simclr --tau 0.2 --crop-scale-min 0.25 --lr 2"
declare -A METHOD_ARGS=([simclr]="$SIMCLR" [moco]="--method moco --crop-scale-min 0.25"
    [simclr-multicrop]="$SIMCLR --local-crops 4 --local-size 14"
    [simclr-v2]="$SIMCLR --proj-layers 3 --proj-bn"
    [vit-mocov3]="--method moco --moco-version 3 --arch vit-tiny --patch 4 --pos-embed sincos --freeze-patch --crop-scale-min 0.25 --knn-bank-limit 10000"
    [vit-simclr]="--method simclr --arch vit-tiny --patch 4 --optimizer adamw --tau 0.2 --crop-scale-min 0.25 --knn-bank-limit 10000")
declare -A FINETUNE_ARGS=([simclr-v2]="--from-head-layer 1")
declare -A PRETRAINED=()
declare -A MODE_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) BUDGET=$2; shift 2 ;;
        --fractions) FRACTIONS=$2; shift 2 ;;
        --train-minutes) TRAIN_MINUTES=$2; shift 2 ;;
        --width) WIDTH=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --methods) METHODS=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --mode-args) MODE_ARGS[${2%%=*}]=${2#*=}; shift 2 ;;
        --no-anchors) ANCHORS=0; shift ;;
        --title) TITLE=$2; shift 2 ;;
        --preamble) PREAMBLE=$2; shift 2 ;;
        --notes) NOTES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --doc) DOC=$2; shift 2 ;;
        --pretrain-args) EXTRA_PRETRAIN=$2; shift 2 ;;
        --args) METHOD_ARGS[${2%%=*}]=${2#*=}; shift 2 ;;
        --seeds) SEEDS=$2; shift 2 ;;
        --distill) DISTILL=$2; shift 2 ;;
        --distill-minutes) DISTILL_MINUTES=$2; shift 2 ;;
        --no-lock) LOCK=0; shift ;;
        --resume) RESUME=1; shift ;;
        --pretrained) PRETRAINED[${2%%=*}]=${2#*=}; shift 2 ;;
        -h|--help) sed -n '2,64p' "$0"; exit 0 ;;
        *) echo "fashion_mnist_table.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
source "$ROOT/scripts/deps.sh"
sslc_ensure_packages "${sslc_plot_packages[@]}"
[ -x "$SSLC" ] || { echo "fashion_mnist_table.sh: no sslc binary at $SSLC (build first: ninja -C build)" >&2; exit 1; }
mkdir -p "$OUT"
TSV=$OUT/runs.tsv
PREV=$OUT/runs.prev.tsv
: > "$PREV"
if [ $RESUME = 1 ] && [ -f "$TSV" ]; then cp "$TSV" "$PREV"; fi
: > "$TSV"

# reuse ROW FRACTION SEED SHOWN HASH: copies the earlier run's line for this
# figure into the table; fails when there is none. The checkpoints a command
# reads are part of the key by their content (HASH), not their path: a figure
# measured on an earlier encoder at the same path is not kept.
reuse() {
    awk -F'\t' -v r="$1" -v f="$2" -v s="$3" -v c="$4" -v h="$5" \
        '$1 == r && $2 == f && $3 == s && $6 == c && $7 == h { print; found = 1 }
        END { exit !found }' "$PREV" >> "$TSV"
}

# inputs_hash ARGS...: the SHA-256 (first 16 hex digits) of the checkpoint
# files named after --ckpt, --teacher or --init, "-" when there are none.
inputs_hash() {
    local files=() prev=""
    for a in "$@"; do
        case $prev in --ckpt|--teacher|--init) [ -f "$a" ] && files+=("$a") ;; esac
        prev=$a
    done
    [ ${#files[@]} -gt 0 ] || { echo -; return; }
    sha256sum "${files[@]}" | cut -c1-64 | sha256sum | cut -c1-16
}

# nth_of LIST FRACTION DEFAULT: the word of LIST at FRACTION's place in
# --fractions, DEFAULT when LIST is empty or short.
nth_of() {
    local list=$1 f=$2 default=$3 i=0
    for x in $FRACTIONS; do
        if [ "$x" = "$f" ]; then
            set -- $list
            shift $i 2>/dev/null || set --
            echo "${1:-$default}"
            return
        fi
        i=$((i + 1))
    done
    echo "$default"
}

# Minutes of fine-tuning / supervised training for a fraction: from
# --train-minutes (same order as --fractions), else 4 / 8 / 12 as the anchors.
train_minutes() {
    local d
    case $1 in 0.01) d=4 ;; 0.1) d=8 ;; *) d=12 ;; esac
    nth_of "$TRAIN_MINUTES" "$1" "$d"
}

# Minutes of distillation for a fraction: from --distill-minutes, else what
# the issue's 15 minutes of fine-tuning plus distillation leave.
distill_minutes() {
    nth_of "$DISTILL_MINUTES" "$1" "$(awk -v t="$2" 'BEGIN { print 15 - t }')"
}

# run ROW FRACTION SEED NAME -- command...: times the command, keeps its log
# (NAME.log) and its --results line (NAME.json). SEED "-": the command has
# no seed of its own (pretraining, 100% of the labels with seed 0).
run() {
    local row=$1 frac=$2 seed=$3 name=$4
    shift 5
    local res=$OUT/$name.json log=$OUT/$name.log
    local cmd=("$@")
    # The command as one could paste it (paths relative to the repository;
    # --results / --name are bookkeeping and left out).
    local shown=${cmd[*]}
    shown=${shown//$ROOT\//}
    local hash
    hash=$(inputs_hash "${cmd[@]}")
    if reuse "$row" "$frac" "$seed" "$shown" "$hash"; then
        echo "== $row ${frac/#-/} ${seed/#-/} : kept from the earlier run" >&2
        return
    fi
    rm -f "$res"
    if [ "$frac" != "-" ]; then cmd+=(--results "$res" --name "$row"); fi
    echo "== $row ${frac/#-/} ${seed/#-/} : $shown" >&2
    # Timed inside the lock: the wall time is the command's own, not the wait.
    local timed=(bash -c 't0=$(date +%s.%N); "$@"; rc=$?; t1=$(date +%s.%N); echo "$t1 - $t0" | bc > "$0"; exit $rc' "$OUT/$name.wall")
    if [ $LOCK = 1 ]; then timed=(flock /tmp/sslc-cpu.lock "${timed[@]}"); fi
    "${timed[@]}" "${cmd[@]}" > "$log" 2>&1 || { echo "failed, see $log" >&2; tail -5 "$log" >&2; return 1; }
    local wall
    wall=$(cat "$OUT/$name.wall")
    [ -f "$res" ] || res=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$frac" "$seed" "$wall" "$res" "$shown" "$hash" \
        >> "$TSV"
    tail -1 "$log" >&2
}

# takes_mode METHOD MODE: whether the method's encoder can be fine-tuned so.
takes_mode() {
    local vit=0
    if [[ $1 == vit-* || " ${METHOD_ARGS[$1]:-} " == *" --arch vit-"* ]]; then vit=1; fi
    case $2 in
        prompt) [ $vit = 1 ] ;;
        bn-head) [ $vit = 0 ] ;;
        *) true ;;
    esac
}

# The label-subset seeds of a fraction: --seeds below 100%, seed 0 at 100%
# (every image is in the subset; only the order and initialisation move).
seeds_of() {
    if [ "$1" = 1 ]; then echo 0; else echo "$SEEDS"; fi
}

S="${SSLC#$ROOT/}"
cd "$ROOT"
# 1. Pretraining, no labels.
for m in $METHODS; do
    if [ -n "${PRETRAINED[$m]:-}" ]; then
        dir=$(cd "${PRETRAINED[$m]}" && pwd)
        rm -rf "$OUT/$m"
        ln -s "$dir" "$OUT/$m"
        wall=$(grep '"time"' "$dir/metrics.jsonl" | tail -1 | sed 's/.*"time": \([0-9.]*\).*/\1/')
        printf '%s\t-\t-\t%s\t-\t%s\t-\n' "$m pretraining (earlier run, pretraining time only)" \
            "$wall" "$S pretrain $(tr -d '\n' < "$dir/config.txt" | sed 's/^ *//')" >> "$TSV"
        continue
    fi
    # An encoder is kept by --resume only when its run finished (it has its
    # line in the earlier table; a run cut short starts again).
    if ! grep -q "^$m pretraining	" "$PREV"; then rm -rf "$OUT/$m"; fi
    run "$m pretraining" - - "pretrain-$m" -- "$S" pretrain --width "$WIDTH" --batch "$BATCH" \
        --epochs 1000 --minutes "$BUDGET" --knn-every 0 --out "$OUT/$m" ${METHOD_ARGS[$m]} \
        $EXTRA_PRETRAIN
done
# 2. Evaluations per label fraction and subset seed.
for f in $FRACTIONS; do
    tm=$(train_minutes "$f")
    dm=$(distill_minutes "$f" "$tm")
    for seed in $(seeds_of "$f"); do
        sd=(--seed "$seed")
        if [ $ANCHORS = 1 ]; then
            run "raw pixels, logistic regression" "$f" "$seed" "pixels-$f-s$seed" -- "$S" \
                linear-eval --features pixels --label-fraction "$f" "${sd[@]}"
            run "random-init encoder, linear probe" "$f" "$seed" "random-$f-s$seed" -- "$S" \
                linear-eval --ckpt random --width "$WIDTH" --label-fraction "$f" "${sd[@]}"
        fi
        for m in $METHODS; do
            run "$m, linear probe" "$f" "$seed" "probe-$m-$f-s$seed" -- "$S" linear-eval \
                --ckpt "$OUT/$m/last.h5" --label-fraction "$f" "${sd[@]}" \
                --out "$OUT/probe-$m-$f-s$seed"
            for mode in $MODES; do
                takes_mode "$m" "$mode" || continue
                margs=${MODE_ARGS[$m:$mode]:-${MODE_ARGS[$mode]:-}}
                if [ "$mode" = full ]; then
                    run "$m, fine-tuned${FINETUNE_ARGS[$m]:+ (${FINETUNE_ARGS[$m]})}" "$f" \
                        "$seed" "finetune-$m-$f-s$seed" -- "$S" finetune --ckpt "$OUT/$m/last.h5" \
                        --label-fraction "$f" "${sd[@]}" --minutes "$tm" --epochs 1000 \
                        --out "$OUT/finetune-$m-$f-s$seed" ${FINETUNE_ARGS[$m]:-} $margs
                else
                    run "$m, fine-tuned ($mode)" "$f" "$seed" "finetune-$m-$mode-$f-s$seed" -- \
                        "$S" finetune --ckpt "$OUT/$m/last.h5" --mode "$mode" \
                        --label-fraction "$f" "${sd[@]}" --minutes "$tm" --epochs 1000 \
                        --out "$OUT/finetune-$m-$mode-$f-s$seed" $margs
                fi
            done
        done
        for m in $DISTILL; do
            [[ " $METHODS " == *" $m "* ]] || continue
            run "$m, fine-tuned then distilled" "$f" "$seed" "distill-$m-$f-s$seed" -- "$S" \
                distill --teacher "$OUT/finetune-$m-$f-s$seed/model.h5" \
                --init "$OUT/$m/last.h5" "${sd[@]}" --minutes "$dm" \
                --epochs 1000
        done
        [ $ANCHORS = 1 ] || continue
        run "supervised from scratch" "$f" "$seed" "supervised-$f-s$seed" -- "$S" supervised \
            --width "$WIDTH" --label-fraction "$f" "${sd[@]}" --minutes "$tm" --epochs 1000
    done
done
/usr/bin/python3 "$ROOT/scripts/plot_results.py" --runs "$TSV" --doc "$DOC" \
    --png "${DOC%.md}.png" --budget "$BUDGET" --width "$WIDTH" --batch "$BATCH" \
    ${TITLE:+--encoder "$TITLE"} ${PREAMBLE:+--preamble "$PREAMBLE"} ${NOTES:+--notes "$NOTES"}
for m in $METHODS; do
    last=$(ls -d "$OUT"/probe-"$m"-*/ 2>/dev/null | sort -t- -k3 -g | tail -1)
    [ -n "$last" ] && /usr/bin/python3 "$ROOT/scripts/plot_confusion.py" "${last%/}/confusion.csv" \
        "$OUT/confusion-$m.png" || true
done
echo "wrote $DOC" >&2
