#!/usr/bin/env bash
# Build the Lambda zips of sinatra-lambda for the OS-only runtime
# provided.al2023, on Debian 12.
#
# usage: scripts/lambda-bundle.sh [--arch x86_64|arm64] [--out DIR]
#                                 [--build-dir DIR] [--binary FILE]
#
#   --arch       x86_64 (default) or arm64; arm64 is cross-built with
#                cmake/aarch64-linux-gnu.cmake
#   --out        where the zips go, by default target/lambda
#   --build-dir  the CMake build folder, by default target/lambda/build-ARCH
#   --binary     package this sinatra-lambda instead of building one
#
# Writes OUT/aws_orchestrator.zip and OUT/aws_worker.zip. Both hold the
# same files and differ only in the handler that `bootstrap` passes:
#
#   bootstrap                   /bin/sh script that Lambda runs
#   bin/sinatra-lambda          the program, stripped
#   lib/                        glibc, the dynamic loader and every library
#                               in the program's DT_NEEDED closure
#   certs/ca-certificates.crt   Debian's CA bundle for TLS
#   ssl/openssl.cnf             an empty OpenSSL configuration
#   zoneinfo/UTC                Debian's tzdata file for TZ=:UTC
#
# Amazon Linux 2023 has glibc 2.34, and Debian 12's libraries need
# symbols up to GLIBC_2.36, so the zip carries its own glibc and starts
# the program through its own loader. The unpacked folder stays in
# OUT/ARCH/ for inspection; the script fails if it exceeds Lambda's
# limit of 262,144,000 bytes unzipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=x86_64
out=$root/target/lambda
build_dir=
binary=
jobs=${SN_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Lambda's quota for the function and its layers, unzipped.
max_unzipped_bytes=262144000
ca_bundle=/etc/ssl/certs/ca-certificates.crt
utc_zone=/usr/share/zoneinfo/UTC

die() {
    echo "lambda-bundle.sh: $*" >&2
    exit 1
}

while (($# > 0)); do
    case $1 in
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a folder}; shift 2 ;;
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
                 exit 0 ;;
    *) die "unknown argument '$1'; see --help" ;;
    esac
done

case $arch in
x86_64 | amd64)
    arch=x86_64
    triplet=x86_64-linux-gnu
    tool_prefix=
    loader=ld-linux-x86-64.so.2
    machine="Advanced Micro Devices X86-64"
    cmake_args=()
    if [[ $(uname -m) != x86_64 ]]; then
        die "x86_64 bundles are built on x86_64 hosts only, not $(uname -m)"
    fi
    ;;
arm64 | aarch64)
    arch=arm64
    triplet=aarch64-linux-gnu
    tool_prefix=aarch64-linux-gnu-
    loader=ld-linux-aarch64.so.1
    machine=AArch64
    cmake_args=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake")
    ;;
*) die "invalid --arch '$arch': expected x86_64 or arm64" ;;
esac

readelf=${tool_prefix}readelf
strip=${tool_prefix}strip
for tool in "$readelf" "$strip" zip; do
    command -v "$tool" >/dev/null ||
        die "$tool not found; run scripts/setup.sh"
done
[[ -r $ca_bundle ]] ||
    die "$ca_bundle not found; install Debian's ca-certificates package"
[[ -r $utc_zone ]] || die "$utc_zone not found; install Debian's tzdata"
# The loader and libraries come from Debian's multiarch folders, the same
# ones the program was linked against.
[[ -e /lib/$triplet/libc.so.6 ]] ||
    die "/lib/$triplet/libc.so.6 not found; run scripts/setup.sh"
search_dirs=("/lib/$triplet" "/usr/lib/$triplet")

# Configure and build sinatra-lambda alone. --as-needed drops DT_NEEDED
# entries for libraries the program never calls, which keeps their
# dependencies out of the zip.
build_program() {
    build_dir=${build_dir:-$out/build-$arch}
    cmake -S "$root" -B "$build_dir" -DSN_LAMBDA_ONLY=ON \
        -DCMAKE_BUILD_TYPE=Release -DSN_WERROR=ON \
        -DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed "${cmake_args[@]}" >&2
    cmake --build "$build_dir" --target sinatra-lambda \
        --parallel "$jobs" >&2
    echo "$build_dir/sinatra-lambda"
}

# Print the RUNPATH or RPATH folders in DYNAMIC (the output of readelf -d
# for OBJECT), one a line, with $ORIGIN replaced by the object's folder.
run_paths() {
    local dynamic=$1 origin

    origin=$(dirname "$2")
    sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p' <<<"$dynamic" |
        tr ':' '\n' |
        sed "s|\\\$ORIGIN|$origin|g; s|\\\${ORIGIN}|$origin|g"
}

# Print the path of library NAME as the loader would find it: the
# folders in DIRS (the needing object's RUNPATH) first, then the default
# folders of Debian's loader. ld.so.cache is never used, as in the bundle.
resolve_library() {
    local name=$1 dirs=$2 dir

    while read -r dir; do
        if [[ -n $dir && -e $dir/$name ]]; then
            echo "$dir/$name"
            return 0
        fi
    done < <(printf '%s\n' "$dirs" "${search_dirs[@]}")
    return 1
}

# Fill the associative array `closure` (soname -> path on this machine)
# with every object reachable from PROGRAM through DT_NEEDED.
compute_closure() {
    local program=$1 object dynamic dirs name path
    local -a pending=("$program")

    while ((${#pending[@]} > 0)); do
        object=${pending[0]}
        pending=("${pending[@]:1}")
        dynamic=$("$readelf" -d "$object")
        dirs=$(run_paths "$dynamic" "$object")
        while read -r name; do
            if [[ -z $name || -n ${closure[$name]:-} ]]; then
                continue
            fi
            path=$(resolve_library "$name" "$dirs") ||
                die "$name (needed by $object) not found in" \
                    "${search_dirs[*]}"
            closure[$name]=$path
            pending+=("$path")
        done < <(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<<"$dynamic")
    done
}

# Check that FILE is an ELF object for the target machine, so a host
# library never slips into an arm64 zip.
check_machine() {
    "$readelf" -h "$1" | grep -q "Machine: *$machine\$" ||
        die "$1 is not an $arch ELF object"
}

# Write the bootstrap that runs HANDLER. Lambda starts it with
# LAMBDA_TASK_ROOT set to the unpacked zip (/var/task). It runs the
# program through the bundled loader: --library-path replaces
# LD_LIBRARY_PATH (Lambda's points at Amazon Linux libraries), and
# --inhibit-cache keeps the loader off /etc/ld.so.cache, where Amazon
# Linux libraries could fill a gap in the bundle. Two variables keep the
# program from reading system files: OPENSSL_CONF replaces Debian's
# /usr/lib/ssl/openssl.cnf, and TZDIR makes glibc read the zone of
# Lambda's TZ=:UTC from the zip instead of /usr/share/zoneinfo. Plain
# POSIX sh: it runs under Amazon Linux's shell and under a static busybox
# in the tests.
write_bootstrap() {
    local file=$1 handler=$2 cache_flag=

    if grep -q -- --inhibit-cache "$stage/lib/$loader"; then
        cache_flag=' --inhibit-cache'
    fi
    cat >"$file" <<EOF
#!/bin/sh
# Runs sinatra-lambda $handler with the glibc and libraries of this zip.
root=\${LAMBDA_TASK_ROOT:-\$(cd "\$(dirname "\$0")" && pwd)}
export OPENSSL_CONF="\$root/ssl/openssl.cnf" TZDIR="\$root/zoneinfo"
exec "\$root/lib/$loader"$cache_flag --library-path "\$root/lib" \\
    "\$root/bin/sinatra-lambda" $handler
EOF
    chmod 0755 "$file"
}

# Copy the program, its closure and the CA bundle into the stage folder.
# Each library is copied under the name the loader looks for (its
# DT_NEEDED name); a second name for the same file becomes a symlink.
stage_files() {
    local program=$1 name path real
    local -A copied=()

    rm -rf "$stage"
    mkdir -p "$stage/bin" "$stage/lib" "$stage/certs" "$stage/ssl" \
        "$stage/zoneinfo"
    check_machine "$program"
    "$strip" --strip-unneeded -o "$stage/bin/sinatra-lambda" "$program"
    chmod 0755 "$stage/bin/sinatra-lambda"

    for name in "${!closure[@]}"; do
        path=${closure[$name]}
        real=$(readlink -f "$path")
        check_machine "$real"
        if [[ -n ${copied[$real]:-} ]]; then
            ln -s "${copied[$real]}" "$stage/lib/$name"
            continue
        fi
        cp "$real" "$stage/lib/$name"
        chmod 0644 "$stage/lib/$name"
        copied[$real]=$name
    done
    [[ -e $stage/lib/$loader ]] ||
        die "the closure of $program has no $loader"
    chmod 0755 "$stage/lib/$loader"

    cp "$ca_bundle" "$stage/certs/ca-certificates.crt"
    echo "# Empty: OpenSSL's built-in defaults, no system configuration." \
        >"$stage/ssl/openssl.cnf"
    cp "$(readlink -f "$utc_zone")" "$stage/zoneinfo/UTC"
    chmod 0644 "$stage/certs/ca-certificates.crt" "$stage/ssl/openssl.cnf" \
        "$stage/zoneinfo/UTC"
}

# Zip everything but the bootstrap from the stage folder once into COMMON_ZIP.
# Fixed modification times make the zip depend on the file contents only.
# zip's default level: -9 took three times as long for 0.4% less.
zip_common() {
    local common_zip=$1

    find "$stage" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +
    rm -f "$common_zip"
    (cd "$stage" && zip -q -X -r --symlinks "$common_zip" \
        bin lib certs ssl zoneinfo)
}

# Write ZIP_FILE: COMMON_ZIP plus the bootstrap of HANDLER.
make_zip() {
    local handler=$1 common_zip=$2 zip_file=$3

    write_bootstrap "$stage/bootstrap" "$handler"
    touch -d '2000-01-01 00:00:00 UTC' "$stage/bootstrap"
    cp "$common_zip" "$zip_file.tmp"
    (cd "$stage" && zip -q -X "$zip_file.tmp" bootstrap)
    zip -q -z "$zip_file.tmp" <<<"sinatra-lambda $handler, $arch"
    mv "$zip_file.tmp" "$zip_file"
}

if [[ -z $binary ]]; then
    binary=$(build_program)
fi
[[ -f $binary ]] || die "$binary not found"
binary=$(readlink -f "$binary")

declare -A closure=()
compute_closure "$binary"
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/$arch
stage_files "$binary"

unzipped=$(find "$stage" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
if ((unzipped > max_unzipped_bytes)); then
    die "$stage is $unzipped bytes, more than Lambda's limit of" \
        "$max_unzipped_bytes bytes unzipped; link fewer libraries"
fi

zip_common "$out/common-$arch.zip"
for handler in orchestrator worker; do
    make_zip "$handler" "$out/common-$arch.zip" "$out/aws_$handler.zip"
    echo "lambda-bundle.sh: $out/aws_$handler.zip ($arch):" \
         "$(stat -c %s "$out/aws_$handler.zip") bytes zipped," \
         "$unzipped bytes unzipped, ${#closure[@]} libraries"
done
rm -f "$out/common-$arch.zip"
