#!/usr/bin/env bash
# Install the Debian 12 packages that Sinatra needs to build, test and run
# the demo. Only missing packages are installed; when every package is
# present, the script makes no apt-get call and finishes in well under a
# second. Runs apt-get through sudo unless it already runs as root.
set -euo pipefail

packages=(
    build-essential
    cmake
    pkg-config
    # FFmpeg 5.1 libraries; Debian's libavcodec is built with libx264.
    libavformat-dev
    libavcodec-dev
    libavfilter-dev
    libswscale-dev
    libswresample-dev
    libavutil-dev
    libjansson-dev
    libsqlite3-dev
    # The ffmpeg and ffprobe programs make the demo sample and check the
    # output of the media tests; python3 runs those tests.
    ffmpeg
    python3
    # libmicrohttpd is the HTTP server library of `sinatra serve`.
    libmicrohttpd-dev
    # libcurl carries the AWS requests; OpenSSL's libcrypto hashes and
    # signs them (SigV4).
    libcurl4-openssl-dev
    libssl-dev
    # Node.js runs scripts/npm-install.sh and the browser test.
    nodejs
    # Headless Chromium plays the web page in tests/browser/play.mjs.
    chromium
    # nginx, a reference static server, and wrk, a load generator, for
    # benchmarks of how `sinatra serve` delivers HLS files.
    nginx
    wrk
    # The Lambda zips (scripts/lambda-bundle.sh) and their tests need zip,
    # Debian's CA bundle, a static busybox as the shell of the empty
    # chroot, and strace to list the files a bundle opens. For arm64 (AWS
    # Graviton) they need a cross compiler, qemu to run the result, and
    # the arm64 development libraries that sinatra-lambda links.
    zip
    ca-certificates
    busybox-static
    strace
    gcc-aarch64-linux-gnu
    qemu-user-static
    libavformat-dev:arm64
    libavcodec-dev:arm64
    libavfilter-dev:arm64
    libswscale-dev:arm64
    libswresample-dev:arm64
    libavutil-dev:arm64
    libjansson-dev:arm64
    libcurl4-openssl-dev:arm64
    libssl-dev:arm64
)
# PyYAML parses the CloudFormation template in tests/infra. The AWS CLI
# deploys it (scripts/aws/); Debian's awscli is listed only where no aws
# command exists, so a newer AWS CLI v2 installed by hand is kept.
packages+=(python3-yaml)
if ! command -v aws >/dev/null; then
    packages+=(awscli)
fi
# npm installs hls.js and playwright-core. A NodeSource nodejs package
# contains npm and conflicts with Debian's npm package, so Debian's npm is
# listed only where no npm command exists.
if ! command -v npm >/dev/null; then
    packages+=(npm)
fi

# Print the packages that are not fully installed ("ii" in dpkg's status),
# with one dpkg-query call for all of them. A name without ":ARCH" means
# the native architecture or an "all" package.
missing_packages() {
    local installed package native

    native=$(dpkg --print-architecture)
    installed=$(dpkg-query -W \
                -f='${db:Status-Abbrev} ${Package}:${Architecture}\n' \
                "${packages[@]}" 2>/dev/null || true)
    for package in "${packages[@]}"; do
        if [[ $package == *:* ]]; then
            grep -qx "ii  *$package" <<<"$installed" || echo "$package"
        elif ! grep -qx -e "ii  *$package:$native" -e "ii  *$package:all" \
                <<<"$installed"; then
            echo "$package"
        fi
    done
}

if [[ ! -r /etc/debian_version ]] || ! command -v dpkg-query >/dev/null; then
    echo "setup.sh: this script needs Debian 12 (dpkg and apt-get);" \
         "install the packages it lists by hand on other systems" >&2
    exit 1
fi

# Sinatra encodes every rung with libx264 through libavcodec. The ffmpeg
# program links the same libavcodec, so its encoder list shows whether
# libx264 is there.
check_libx264() {
    local encoders

    encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null || true)
    if [[ $encoders != *" libx264 "* ]]; then
        echo "setup.sh: the installed FFmpeg has no libx264 encoder;" \
             "install Debian 12's ffmpeg and libavcodec packages" >&2
        exit 1
    fi
}

# moto's server plays S3, SQS and DynamoDB on loopback for the AWS tests
# (tests/aws/with_moto.sh). It is not a Debian package; where it is
# missing, pip installs it for the current user, and the AWS tests are
# skipped if that fails.
install_moto() {
    if command -v moto_server >/dev/null &&
        python3 -c 'import boto3' 2>/dev/null; then
        return 0
    fi
    echo "setup.sh: installing moto[server] and boto3 with pip"
    python3 -m pip install --user --quiet 'moto[server]' boto3 ||
        echo "setup.sh: pip could not install moto; the AWS tests will" \
             "be skipped" >&2
}

# cfn-lint, AWS's CloudFormation linter, checks infra/sinatra.yaml. It is
# not a Debian 12 package; where it is missing, pip installs it like moto,
# and the lint test is skipped if that fails.
install_cfn_lint() {
    if command -v cfn-lint >/dev/null; then
        return 0
    fi
    echo "setup.sh: installing cfn-lint with pip"
    python3 -m pip install --user --quiet cfn-lint ||
        echo "setup.sh: pip could not install cfn-lint; the template" \
             "lint test will be skipped" >&2
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
    install_moto
    install_cfn_lint
    check_libx264
    echo "setup.sh: all ${#packages[@]} packages are installed"
    exit 0
fi

sudo=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "setup.sh: missing packages: ${missing[*]};" \
             "run this script as root or install sudo" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "setup.sh: installing ${missing[*]}"
# The :arm64 packages need arm64 as a foreign architecture in dpkg.
if [[ " ${missing[*]}" == *:arm64* ]] &&
    ! dpkg --print-foreign-architectures | grep -qx arm64; then
    "${sudo[@]}" dpkg --add-architecture arm64
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} != 0)); then
    echo "setup.sh: still missing after apt-get install: ${missing[*]}" >&2
    exit 1
fi
check_libx264
install_moto
install_cfn_lint
echo "setup.sh: installed; all ${#packages[@]} packages are present"
