#!/usr/bin/env bash
# The main job: builds sslc if needed (installing what is missing), then
# pretrains on the built-in default data. Extra arguments go to sslc.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sslc_ensure_packages "${sslc_build_packages[@]}" "${sslc_data_packages[@]}"
sslc_build build -Dtests=disabled
exec ./build/src/cli/sslc bench "$@"
