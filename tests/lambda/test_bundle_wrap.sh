#!/bin/sh
# Command prefixes for lambda_service.py (SN_LAMBDA_PREFIX) that start a
# bundle's bootstrap in a harsher place than the host.
#
# usage: test_bundle_wrap.sh chroot SKELETON BOOTSTRAP
#        test_bundle_wrap.sh trace LOGDIR BOOTSTRAP
#        test_bundle_wrap.sh qemu LOGDIR BOOTSTRAP
#        test_bundle_wrap.sh emulate BOOTSTRAP
#
# The service starts the prefix in the host copy of the code folder and
# appends the path of bootstrap in the function's file system.
#
# chroot  Runs BOOTSTRAP (/var/task/bootstrap; set SN_LAMBDA_TASK_ROOT to
#         /var/task) chrooted into SKELETON as uid and gid 65534, in a
#         mount namespace of its own where the code folder is bind-mounted
#         read-only on SKELETON/var/task. SKELETON holds only /bin/sh (a
#         static busybox), /tmp, /dev/null and /dev/urandom
#         (test_bundle_x86_64.sh makes it). Needs root. The loader's
#         LD_DEBUG output goes to SKELETON/tmp/ld (ld.PID).
# trace   Runs BOOTSTRAP under strace -f, one file per process in LOGDIR
#         (trace.PID), listing open, openat and execve calls.
# qemu    Runs an arm64 BOOTSTRAP with its loader under qemu-aarch64-static:
#         a copy of bootstrap whose exec line is prefixed with qemu, so
#         the bundle's own loader, not a host sysroot, loads the program.
#         strace lists the files as in trace mode; the arm64 program's
#         opens reach the host as qemu's.
# emulate The same qemu run without strace and LD_DEBUG, for timings
#         (bench/lambda_bundles.sh).
#
# The other modes set LD_DEBUG=libs, so the test can list the objects the
# loader mapped: trace and qemu write LOGDIR/ld.PID.
set -eu

usage() {
    echo "usage: test_bundle_wrap.sh chroot SKELETON BOOTSTRAP" \
         "| trace LOGDIR BOOTSTRAP | qemu LOGDIR BOOTSTRAP" \
         "| emulate BOOTSTRAP" >&2
    exit 2
}

[ $# -ge 1 ] || usage
mode=$1
shift

case $mode in
chroot)
    [ $# -eq 2 ] || usage
    skeleton=$1 bootstrap=$2
    # Inside the chroot the log folder is SKELETON/tmp/ld, seen as /tmp/ld.
    mkdir -p "$skeleton/tmp/ld"
    chmod 1777 "$skeleton/tmp/ld"
    # The host tools run with the host's PATH and without LD_DEBUG; the
    # function gets the PATH that the service set.
    function_path=$PATH
    PATH=/usr/sbin:/usr/bin:/sbin:/bin
    exec unshare -m --propagation private -- /bin/sh -c '
        mount --bind -o ro "$1" "$2/var/task" || exit 1
        exec chroot --userspec=65534:65534 "$2" /bin/sh -c "
            cd /var/task &&
            PATH=\"\$1\" LD_DEBUG=libs LD_DEBUG_OUTPUT=/tmp/ld/ld exec \"\$0\"
            " "$3" "$4"' \
        sh "$(pwd)" "$skeleton" "$bootstrap" "$function_path"
    ;;
trace)
    [ $# -eq 2 ] || usage
    logdir=$1 bootstrap=$2
    exec strace -f -ff -qq -s 4096 -e trace=open,openat,execve \
        -E LD_DEBUG=libs -E LD_DEBUG_OUTPUT="$logdir/ld" \
        -o "$logdir/trace" "$bootstrap"
    ;;
qemu | emulate)
    if [ "$mode" = qemu ]; then
        [ $# -eq 2 ] || usage
        logdir=$1 bootstrap=$2
    else
        [ $# -eq 1 ] || usage
        bootstrap=$1
    fi
    # The generated bootstrap has one line starting with exec "; the copy
    # runs the same line under qemu. Fail if the line is not found, so a
    # change of the bootstrap cannot pass unnoticed.
    if [ "$(grep -c '^exec "' "$bootstrap")" != 1 ]; then
        echo "test_bundle_wrap.sh: $bootstrap has no single" \
             "'exec \"' line to run under qemu" >&2
        exit 1
    fi
    qemu=$(PATH=/usr/bin:/bin command -v qemu-aarch64-static) || {
        echo "test_bundle_wrap.sh: qemu-aarch64-static not found" >&2
        exit 1
    }
    script=$(sed "s|^exec \"|exec $qemu \"|" "$bootstrap")
    if [ "$mode" = emulate ]; then
        exec /bin/sh -c "$script"
    fi
    copy=$logdir/bootstrap.qemu.$$
    printf '%s\n' "$script" >"$copy"
    exec strace -f -ff -qq -s 4096 -e trace=open,openat,execve \
        -E LD_DEBUG=libs -E LD_DEBUG_OUTPUT="$logdir/ld" \
        -o "$logdir/trace" /bin/sh "$copy"
    ;;
*)
    usage
    ;;
esac
