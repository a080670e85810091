#!/usr/bin/env bash
# The README's main job as a new user runs it, in a short mode: scripts/run.sh
# with a 0.2-minute pretraining budget into a fresh run folder, then checks
# that it exited 0, printed the probe table (four rows), and left a
# checkpoint that `sslc info` reads. Used by scripts/test.sh in CI.
#   scripts/check_main_job.sh [LOG]
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:-$(mktemp)}
run=$(mktemp -d)/run
fail() { echo "main job: $*" >&2; tail -n 40 "$log" >&2; exit 1; }

start=$SECONDS
SSLC_MINUTES=${SSLC_MINUTES:-0.2} SSLC_OUT=$run bash scripts/run.sh > "$log" 2>&1 ||
    fail "scripts/run.sh exited $? (log: $log)"
grep -q "^linear probe, top-1" "$log" || fail "no probe table"
rows=$(grep -cE "^  (SimCLR|random-init) encoder +[0-9]+% labels: [0-9.]+%" "$log")
[ "$rows" = 4 ] || fail "the probe table has $rows rows, not 4"
./build/src/cli/sslc info "$run/last.h5" > /dev/null 2>>"$log" || fail "sslc info cannot read $run/last.h5"
echo "main job: scripts/run.sh ran in $((SECONDS - start)) s, probe table and $run/last.h5 fine"
grep -E "^  (SimCLR|random-init)" "$log"
