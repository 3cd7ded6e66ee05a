#!/usr/bin/env bash
# Configure and build Sinatra into build/ at the repository root:
# RelWithDebInfo, warnings as errors, one compile job per core.
# The binary is build/sinatra. Extra arguments go to the cmake configure
# step, e.g. scripts/build.sh -DSN_WERROR=OFF.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S "$root" -B "$root/build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSN_WERROR=ON "$@"
cmake --build "$root/build" --parallel "$jobs"
