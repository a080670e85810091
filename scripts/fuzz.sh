#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in build-fuzz/, then fuzzes each for a bounded
# time (docs/fuzzing.md). Installs clang and the build packages when missing.
#   scripts/fuzz.sh                         every target, 60 s each (about 5 minutes in all)
#   scripts/fuzz.sh png ckpt                only these (png jpeg idx ckpt)
#   SSLC_FUZZ_SECONDS=3600 scripts/fuzz.sh jpeg   longer
#   SSLC_FUZZ_SECONDS=0 scripts/fuzz.sh     no fuzzing: replay the regressions and seeds only
# Each target first replays the committed inputs of earlier findings
# (tests/fuzz/regressions/<target>/), then fuzzes from the committed seeds
# (tests/fuzz/corpus/<target>/) plus what earlier runs here found
# (build-fuzz/corpus/<target>/, kept between runs). A finding is written to
# build-fuzz/findings/<target>/. Ends with one line per target; exits 1 when
# any target found something, 2 when the set-up or build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

all_targets=(png jpeg idx ckpt)
seconds=${SSLC_FUZZ_SECONDS:-60}
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in
    *" $t "*) ;;
    *) echo "fuzz: no target '$t' (targets: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done
case $seconds in
'' | *[!0-9]*)
    echo "fuzz: SSLC_FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2 ;;
esac

# ---------------------------------------------------------------- set-up
sslc_ensure_packages meson ninja-build pkg-config libc6-dev libpng-dev libjpeg62-turbo-dev \
    libhdf5-dev zlib1g-dev python3 clang
# libFuzzer's runtime is a separate package in Debian (libclang-rt-14-dev
# for Debian 12's clang 14); install it when a fuzzer does not link.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
have_libfuzzer() {
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return !d + !n; }' \
        > "$probe_dir/probe.c"
    clang -fsanitize=fuzzer,address,undefined "$probe_dir/probe.c" -o "$probe_dir/probe" 2>/dev/null
}
if ! have_libfuzzer; then
    major=$(clang -dumpversion | cut -d. -f1)
    sslc_ensure_packages "libclang-rt-$major-dev"
    if ! have_libfuzzer; then
        echo "fuzz: clang cannot link -fsanitize=fuzzer even with libclang-rt-$major-dev" >&2
        exit 2
    fi
fi

# ---------------------------------------------------------------- build
# Only the libraries the targets need are built (not the CLI or the tests).
# OpenMP and oneDNN are left out: the readers use neither, and clang would
# need libomp.
dir=build-fuzz
opts=(-Dfuzz=true -Dtests=disabled -Dopenmp=disabled -Dblas=naive -Dbuildtype=debugoptimized
      -Db_sanitize=address,undefined -Db_lundef=false)
stamp="$dir/.sslc-options"
if [ ! -f "$dir/build.ninja" ]; then
    CC=clang meson setup "$dir" "${opts[@]}" >/dev/null
elif [ "$(cat "$stamp" 2>/dev/null)" != "${opts[*]}" ]; then
    CC=clang meson setup --wipe "$dir" "${opts[@]}" >/dev/null
fi
printf '%s' "${opts[*]}" > "$stamp"
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz_$t"); done
if ! log=$(ninja -C "$dir" "${exes[@]}" 2>&1); then
    printf '%s\n' "$log" | tail -n 60 >&2
    echo "fuzz: the build in $dir failed (above)" >&2
    exit 2
fi

# ---------------------------------------------------------------- run
# Sanitizer findings stop the target and are saved. Allocations that fail
# return NULL, as malloc does outside ASan, so sslc's out-of-memory paths run;
# libFuzzer's -malloc_limit_mb still flags one allocation over 2 GiB.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Leaks inside HDF5 itself on corrupt files are not sslc's (the file says why).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
# libFuzzer: a single input over 25 s or 2 GiB (RSS or one allocation) is a finding.
limits=(-timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=2048)
# A target that crashes leaves its scratch files (sslc-fuzz-PID-*, in
# /dev/shm or $TMPDIR); removed once their process is gone.
clean_scratch() {
    local f pid
    for f in /dev/shm/sslc-fuzz-* "${TMPDIR:-/tmp}"/sslc-fuzz-*; do
        [ -e "$f" ] || continue
        pid=${f##*/sslc-fuzz-}
        pid=${pid%%-*}
        kill -0 "$pid" 2>/dev/null || rm -f "$f"
    done
}
summary=()
found=0
# One summary line: target, verdict, details.
note() { summary+=("$(printf '%-10s %-6s %s' "fuzz_$1" "$2" "$3")"); }
for t in "${targets[@]}"; do
    exe="$dir/tests/fuzz/fuzz_$t"
    log="$dir/fuzz-$t.log"
    findings="$dir/findings/$t"
    mkdir -p "$dir/corpus/$t" "$findings"
    echo "== fuzz_$t: ${seconds} s (log: $log)"
    regressions=(tests/fuzz/regressions/"$t"/*)
    if [ -e "${regressions[0]}" ] &&
        ! "$exe" "${limits[@]}" -artifact_prefix="$findings/" "${regressions[@]}" > "$log" 2>&1; then
        tail -n 30 "$log"
        note "$t" FOUND "a committed regression input fails again ($log)"
        found=1
        continue
    fi
    rc=0
    # -max_total_time=0 would mean no limit; -runs=0 runs the corpus once.
    budget=(-max_total_time="$seconds")
    [ "$seconds" -gt 0 ] || budget=(-runs=0)
    "$exe" "${limits[@]}" "${budget[@]}" -print_final_stats=1 \
        -artifact_prefix="$findings/" "$dir/corpus/$t" "tests/fuzz/corpus/$t" > "$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR|SUMMARY|broken promise|runtime error' "$log" | head -n 8 || true
        what=$(grep -m1 -oE 'broken promise[^:]*|SUMMARY: .*|ERROR: libFuzzer: [a-z-]+' "$log" ||
               echo "exit status $rc")
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        note "$t" FOUND "$what (reproduce: $exe ${input:-<see $log>})"
        found=1
        continue
    fi
    final() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; } # libFuzzer's final stats
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true) # "#N DONE cov: E ft: F corp: C/..."
    corpus=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<< "$last")
    edges=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<< "$last")
    note "$t" ok "$(final number_of_executed_units) runs in $seconds s ($(final average_exec_per_sec)/s), \
corpus ${corpus:-?} inputs, ${edges:-?} edges, peak $(final peak_rss_mb) MiB"
done
clean_scratch
printf '%s\n' "${summary[@]}"
exit $found
