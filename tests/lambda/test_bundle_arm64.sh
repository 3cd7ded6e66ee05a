#!/usr/bin/env bash
# The arm64 Lambda zips probe and transcode clips under qemu using only
# their own files.
#
# usage: tests/aws/with_moto.sh tests/lambda/test_bundle_arm64.sh BUILD_DIR
#
# Cross-builds sinatra-lambda for arm64 into BUILD_DIR (kept between runs,
# so a second run only relinks) and packages it with
# scripts/lambda-bundle.sh --arch arm64. Then runs the upload case of
# test_lambda_e2e.py with both zips: the first case whose name starts with
# "uploads_", where the orchestrator probes the clips through ranged
# reads and the worker transcodes their chunks. Each bootstrap starts
# under qemu-aarch64-static with the bundle's own loader, so no host
# sysroot is involved. qemu translates every instruction: the worker's
# encoding takes about ten times as long as on x86_64, and the timings do
# not predict Graviton's speed.
#
# The case must pass, and test_bundle_opens.py must find, in strace's and
# LD_DEBUG's output, that only the bundle's libraries were loaded, all of
# them, and no file outside the bundle was opened. Exits 77 (skipped)
# when the cross compiler, qemu or the arm64 libraries are missing, or
# when the end-to-end case skips itself (no moto, no media corpus).
# SN_KEEP_TMP=1 keeps the work folder.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if (($# != 1)); then
    echo "usage: test_bundle_arm64.sh BUILD_DIR" >&2
    exit 2
fi
build_dir=$1

for tool in aarch64-linux-gnu-gcc qemu-aarch64-static strace zip; do
    if ! command -v "$tool" >/dev/null; then
        echo "test_bundle_arm64.sh: $tool not found: skipped" \
             "(scripts/setup.sh installs it)"
        exit 77
    fi
done
if [[ ! -e /usr/lib/aarch64-linux-gnu/libavcodec.so ]]; then
    echo "test_bundle_arm64.sh: the arm64 FFmpeg libraries are missing:" \
         "skipped (scripts/setup.sh installs them)"
    exit 77
fi

work=$(mktemp -d /tmp/sn-bundle-arm64-XXXXXX)
cleanup() {
    if [[ -n ${SN_KEEP_TMP:-} ]]; then
        echo "test_bundle_arm64.sh: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

e2e_case=$(python3 "$here/test_lambda_e2e.py" --list | grep -m1 '^uploads_')
if [[ -z $e2e_case ]]; then
    echo "test_bundle_arm64.sh: FAILED: test_lambda_e2e.py --list names" \
         "no case starting with uploads_"
    exit 1
fi

echo "=== cross-building and packaging sinatra-lambda for arm64"
if ! SN_BUILD_JOBS=${SN_BUILD_JOBS:-2} "$root/scripts/lambda-bundle.sh" \
        --arch arm64 --build-dir "$build_dir" --out "$work/zips"; then
    echo "test_bundle_arm64.sh: FAILED: scripts/lambda-bundle.sh --arch arm64"
    exit 1
fi

echo "=== $e2e_case under qemu-aarch64-static"
failed=0
mkdir -p "$work/trace"
status=0
SN_LAMBDA_CODE_ORCHESTRATOR=$work/zips/aws_orchestrator.zip \
SN_LAMBDA_CODE_WORKER=$work/zips/aws_worker.zip \
SN_LAMBDA_PREFIX="$here/test_bundle_wrap.sh qemu $work/trace" \
    python3 "$here/test_lambda_e2e.py" "$e2e_case" || status=$?
if ((status == 77)); then
    echo "test_bundle_arm64.sh: the end-to-end case was skipped"
    exit 77
fi
((status == 0)) || failed=1

python3 "$here/test_bundle_opens.py" --bundle "$work/zips/aws_worker.zip" \
    --trace "$work/trace" --ld "$work/trace" --min-processes 2 || failed=1

if ((failed)); then
    echo "test_bundle_arm64.sh: FAILED"
    exit 1
fi
echo "test_bundle_arm64.sh: passed"
