#!/usr/bin/env bash
# The x86_64 Lambda zips run the end-to-end case on moto using only their
# own files.
#
# usage: tests/aws/with_moto.sh tests/lambda/test_bundle_x86_64.sh BINARY
#
# Packages BINARY (a host build of sinatra-lambda) with
# scripts/lambda-bundle.sh, then runs the upload case of
# test_lambda_e2e.py (the first case whose name starts with "uploads_":
# clips uploaded, orchestrated, transcoded, checked) twice with both zips:
#
#  1. on the host under strace and LD_DEBUG=libs, so that a file missing
#     from the bundle shows up as an open of a host path instead of
#     hiding behind a failure;
#  2. in an empty chroot as uid and gid 65534: the root contains /bin/sh (a
#     static busybox, standing in for Lambda's shell), /tmp, /dev/null,
#     /dev/urandom and, mounted read-only at /var/task, the unpacked zip.
#     No /etc, no /usr, no /lib, no ld.so.cache.
#
# Both runs must pass, and test_bundle_opens.py must find that only the
# bundle's libraries were loaded, all of them, and that no file outside
# the bundle, /tmp and a short list of /proc, /sys and /dev paths was
# opened. Exits 77 (skipped) when not root (chroot and mount need it),
# when a tool is missing, or when the end-to-end case skips itself (no
# moto, no media corpus). SN_KEEP_TMP=1 keeps the work folder.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if (($# != 1)); then
    echo "usage: test_bundle_x86_64.sh BINARY" >&2
    exit 2
fi
binary=$1

if ((EUID != 0)); then
    echo "test_bundle_x86_64.sh: chroot and mount need root: skipped"
    exit 77
fi
for tool in strace unshare chroot zip; do
    if ! PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$tool" >/dev/null
    then
        echo "test_bundle_x86_64.sh: $tool not found: skipped" \
             "(scripts/setup.sh installs it)"
        exit 77
    fi
done
# Root in a container may lack the right to make mount namespaces.
if ! unshare -m --propagation private true 2>/dev/null; then
    echo "test_bundle_x86_64.sh: unshare -m is not permitted here: skipped"
    exit 77
fi
# A static busybox has no program interpreter, so it runs in the chroot.
if [[ ! -x /bin/busybox ]] ||
        readelf -l /bin/busybox | grep -q 'program interpreter'; then
    echo "test_bundle_x86_64.sh: no static /bin/busybox: skipped" \
         "(install busybox-static)"
    exit 77
fi

work=$(mktemp -d /tmp/sn-bundle-x86_64-XXXXXX)
cleanup() {
    if [[ -n ${SN_KEEP_TMP:-} ]]; then
        echo "test_bundle_x86_64.sh: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# Print a failed check; returns 1.
fail() {
    echo "test_bundle_x86_64.sh: FAILED: $*"
    return 1
}

# Run the end-to-end case with the two zips and the given prefix. Exits
# the script with 77 when the case skips itself.
run_e2e() {
    local status=0

    SN_LAMBDA_CODE_ORCHESTRATOR=$work/zips/aws_orchestrator.zip \
    SN_LAMBDA_CODE_WORKER=$work/zips/aws_worker.zip \
        python3 "$here/test_lambda_e2e.py" "$e2e_case" || status=$?
    if ((status == 77)); then
        echo "test_bundle_x86_64.sh: the end-to-end case was skipped"
        exit 77
    fi
    return "$status"
}

# The root of the chroot: exactly the entries listed in the header.
make_skeleton() {
    local skeleton=$1 listing expected

    mkdir -p "$skeleton"/{bin,tmp,dev,var/task}
    cp /bin/busybox "$skeleton/bin/sh"
    mknod -m 0666 "$skeleton/dev/null" c 1 3 &&
        mknod -m 0666 "$skeleton/dev/urandom" c 1 9 ||
        return 1
    chmod 1777 "$skeleton/tmp"
    chmod 0755 "$skeleton" "$skeleton"/{bin,dev,var,var/task}

    listing=$(cd "$skeleton" && find . | sort | tr '\n' ' ')
    expected='. ./bin ./bin/sh ./dev ./dev/null ./dev/urandom ./tmp ./var ./var/task '
    [[ $listing == "$expected" ]] ||
        fail "the chroot holds '$listing', expected '$expected'"
}

failed=0
e2e_case=$(python3 "$here/test_lambda_e2e.py" --list | grep -m1 '^uploads_')
if [[ -z $e2e_case ]]; then
    fail "test_lambda_e2e.py --list names no case starting with uploads_"
    exit 1
fi

echo "=== packaging $binary"
if ! "$root/scripts/lambda-bundle.sh" --arch x86_64 --binary "$binary" \
        --out "$work/zips"; then
    fail "scripts/lambda-bundle.sh"
    exit 1
fi

echo "=== run 1: on the host, under strace and LD_DEBUG=libs"
mkdir -p "$work/trace"
SN_LAMBDA_PREFIX="$here/test_bundle_wrap.sh trace $work/trace" run_e2e ||
    failed=1
python3 "$here/test_bundle_opens.py" --bundle "$work/zips/aws_worker.zip" \
    --trace "$work/trace" --ld "$work/trace" --min-processes 2 || failed=1

echo "=== run 2: in an empty chroot as uid 65534"
if ! make_skeleton "$work/root"; then
    fail "could not make the chroot in $work/root"
    exit 1
fi
SN_LAMBDA_PREFIX="$here/test_bundle_wrap.sh chroot $work/root" \
SN_LAMBDA_TASK_ROOT=/var/task run_e2e || failed=1
python3 "$here/test_bundle_opens.py" --bundle "$work/zips/aws_worker.zip" \
    --root /var/task --ld "$work/root/tmp/ld" --min-processes 2 || failed=1
# The loader's output files were written by the function's user.
owners=$(find "$work/root/tmp/ld" -type f -printf '%u:%g\n' | sort -u)
if [[ $owners != "65534:65534" && $owners != "nobody:nogroup" ]]; then
    fail "the function ran as '$owners', expected uid and gid 65534"
    failed=1
fi

if ((failed)); then
    echo "test_bundle_x86_64.sh: FAILED"
    exit 1
fi
echo "test_bundle_x86_64.sh: passed"
