#!/usr/bin/env bash
# Every test suite: an optimised build, one under AddressSanitizer +
# UndefinedBehaviorSanitizer (without `slow`, and without `mpi`: Open MPI's
# own allocations are not sanitizer-clean), and the fallbacks (-Dopenmp=disabled
# -Dblas=naive, unit and gradcheck suites). With CI set (or SSLC_TEST_FULL=1)
# also the README's main job in a short mode (scripts/check_main_job.sh) and
# every fuzz target for a minute (scripts/fuzz.sh). Installs what is missing.
# Warnings are errors. The last line is the totals: "N passed, N failed,
# N skipped" (scripts/count_tests.py; with CI set, a skip that prints no
# SKIP-REASON line counts as a failure).
#   scripts/test.sh                    everything but the `slow` suite under sanitizers
#   SSLC_TEST_SLOW=0 scripts/test.sh   skip the slow suite in every build
#   SSLC_TEST_FULL=1 scripts/test.sh   add the main job and the fuzzers, as CI does
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sslc_ensure_packages "${sslc_build_packages[@]}" "${sslc_data_packages[@]}" "${sslc_torch_packages[@]}" \
    "${sslc_mpi_packages[@]}"

slow=${SSLC_TEST_SLOW:-1}
logs=()
run_suite() { # build-dir, extra meson test args...
    local dir=$1
    shift
    meson test -C "$dir" --print-errorlogs --num-processes 1 "$@" || true
    logs+=("$dir/meson-logs/testlog.json")
}

echo "== optimised build (build-test)"
sslc_build build-test -Dwerror=true -Dtests=enabled
if [ "$slow" = 1 ]; then run_suite build-test; else run_suite build-test --no-suite slow; fi

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan)"
sslc_build build-asan -Dwerror=true -Dtests=enabled -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan --no-suite slow --no-suite mpi --timeout-multiplier 4

echo "== fallbacks: no OpenMP, naive kernels, no MPI (build-naive)"
sslc_build build-naive -Dwerror=true -Dtests=enabled -Dopenmp=disabled -Dblas=naive -Dmpi=disabled
run_suite build-naive --suite unit --suite gradcheck

checks=()
if [ -n "${CI:-}" ] || [ "${SSLC_TEST_FULL:-0}" = 1 ]; then
    echo "== the README's main job, short (scripts/check_main_job.sh)"
    if bash scripts/check_main_job.sh build-test/main-job.log; then
        checks+=(--check "main job=passed")
    else
        checks+=(--check "main job=failed")
    fi
    echo "== fuzz targets (scripts/fuzz.sh)"
    bash scripts/fuzz.sh | tee build-test/fuzz.log || true
    for t in png jpeg idx ckpt; do
        if grep -qE "^fuzz_$t +ok " build-test/fuzz.log; then
            checks+=(--check "fuzz $t=passed")
        else
            checks+=(--check "fuzz $t=failed")
        fi
    done
fi

/usr/bin/python3 scripts/count_tests.py "${checks[@]}" "${logs[@]}"
