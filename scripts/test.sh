#!/usr/bin/env bash
# Runs every test suite twice: an optimised build, then one under
# AddressSanitizer + UndefinedBehaviorSanitizer. Installs what is missing.
# Warnings are errors. The last line is the totals: "N passed, N failed,
# N skipped" (scripts/count_tests.py; with CI set, a skip that prints no
# SKIP-REASON line counts as a failure).
#   scripts/test.sh            everything but the `slow` suite under sanitizers
#   SSLC_TEST_SLOW=0 scripts/test.sh   skip the slow suite in both builds
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sslc_ensure_packages "${sslc_build_packages[@]}" "${sslc_data_packages[@]}" "${sslc_torch_packages[@]}"

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
    run_suite build-asan --no-suite slow --timeout-multiplier 4

/usr/bin/python3 scripts/count_tests.py "${logs[@]}"
