#!/usr/bin/env bash
# Build the Lambda zips for x86_64 and arm64 and measure them with
# bench/lambda_bundles.py on moto. It reports sizes, cold start (process
# start to the first `next`) and the time of a warm invoke of a trivial
# event. It also measures the worker's CPU time for the default ladder
# over the 1080p clips of the media corpus, and the cost estimate that
# follows from it. arm64 runs
# under qemu-aarch64-static: its timings are emulated.
#
# usage: bench/lambda_bundles.sh [ARGS FOR lambda_bundles.py]
#
# The zips and CMake builds go to /tmp/sn-bench-lambda-zips (kept, so a
# second run only relinks); the report is printed as Markdown.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=/tmp/sn-bench-lambda-zips
export SN_BUILD_JOBS=${SN_BUILD_JOBS:-2}
export SN_MEDIA_DIR=${SN_MEDIA_DIR:-$(dirname "$root")/shared/media}

for arch in x86_64 arm64; do
    "$root/scripts/lambda-bundle.sh" --arch "$arch" \
        --build-dir "$work/build-$arch" --out "$work/$arch" >&2
done

"$root/tests/aws/with_moto.sh" python3 "$root/bench/lambda_bundles.py" \
    --zips "x86_64=$work/x86_64" --zips "arm64=$work/arm64" "$@"
