#!/usr/bin/env bash
# Run every Sinatra test; CI runs this script through .ci/run.
#
#  1. scripts/setup.sh installs the missing Debian packages.
#  2. build/ (RelWithDebInfo, -Werror): all unit tests and all media
#     integration tests that are not disabled, two at a time.
#  3. build-asan/ (Debug, AddressSanitizer, UndefinedBehaviorSanitizer,
#     LeakSanitizer, -Werror): the unit tests and one media case that
#     transcodes video and audio end to end.
#
# The media tests read the shared media corpus from SN_MEDIA_DIR, which
# defaults to ../shared/media next to the repository. Without the corpus
# they exit 77, and CTest reports them as skipped, not failed.
# Every step runs even after an earlier one failed, so one run shows every
# failure. The script exits 1 if any step failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Two tests at a time, although each media test already runs one encoder
# worker per core: on 2 cores the same cases passed and failed with -j1
# and -j2, and -j2 took 200 s against 366 s in one measurement.
test_jobs=2

# This case transcodes corpus footage with video and audio and checks the
# layout, playlists, I-frame playlists and poster. Under the sanitizers it
# takes about 10 s on 2 cores.
asan_media_case=media_output_layout_matches_the_documented_tree

# Stops AWS SDKs and the AWS CLI, in tests to come, from asking the EC2
# instance metadata service for credentials.
export AWS_EC2_METADATA_DISABLED=true

corpus=$(dirname "$root")/shared/media
if [[ -z ${SN_MEDIA_DIR:-} && -d $corpus ]]; then
    export SN_MEDIA_DIR=$corpus
fi
if [[ -n ${SN_MEDIA_DIR:-} && -d $SN_MEDIA_DIR ]]; then
    echo "test.sh: media corpus: $SN_MEDIA_DIR"
else
    echo "test.sh: media corpus not found (set SN_MEDIA_DIR or place it" \
         "at $corpus); the media tests will be skipped"
fi

failed_steps=()
junit_files=()

# Run one step: print its name, run the command, record a failure.
# Returns the command's exit status.
run_step() {
    local name=$1 started=$SECONDS status=0

    shift
    echo
    echo "=== test.sh: $name"
    "$@" || status=$?

    if ((status == 0)); then
        echo "=== test.sh: $name: passed in $((SECONDS - started)) s"
    else
        echo "=== test.sh: $name: FAILED with exit code $status" \
             "after $((SECONDS - started)) s"
        failed_steps+=("$name")
    fi
    return "$status"
}

# Run ctest in BUILD_DIR, writing a JUnit report for the final count.
# --no-tests=error makes a filter that matches nothing a failure.
run_ctest() {
    local build_dir=$1 report

    shift
    report=$build_dir/Testing/junit-${#junit_files[@]}.xml
    junit_files+=("$report")
    rm -f "$report"
    ctest --test-dir "$build_dir" --output-on-failure --no-tests=error \
        --output-junit "$report" "$@"
}

# Print "N passed, N failed, N skipped" over every JUnit report written.
count_tests() {
    python3 - "${junit_files[@]}" <<'EOF'
import os
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.isfile(path):
        continue
    suite = ET.parse(path).getroot()
    total = int(suite.get("tests", 0))
    failures = int(suite.get("failures", 0))
    not_run = int(suite.get("skipped", 0)) + int(suite.get("disabled", 0))
    passed += total - failures - not_run
    failed += failures
    skipped += not_run
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
EOF
}

# Compare the option table in README.md, between the "sinatra process
# --help" markers and inside a code fence, with the binary's own output.
check_readme_help() {
    local begin='<!-- sinatra process --help: begin -->'
    local end='<!-- sinatra process --help: end -->'

    if ! diff -u --label README.md --label "sinatra process --help" \
        <(sed -n "\|^$begin\$|,\|^$end\$|p" "$root/README.md" |
          sed '1,2d' | head -n -2) \
        <("$root/build/sinatra" process --help); then
        echo "README.md: the option table differs from" \
             "build/sinatra process --help (diff above); paste the" \
             "program's output between the markers" >&2
        return 1
    fi
}

build_asan() {
    cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug \
        -DSN_SANITIZE=ON -DSN_WERROR=ON &&
        cmake --build "$root/build-asan" --parallel "$jobs"
}

# Run a command with the sanitizer settings for the build-asan/ tests.
# The build passes -fno-sanitize-recover=all, so the first ASan or UBSan
# report ends the process with status 1. LeakSanitizer checks at exit and
# also turns the status into 1 when it finds a leak.
sanitized() {
    local -x ASAN_OPTIONS=detect_leaks=1
    local -x UBSAN_OPTIONS=print_stacktrace=1

    "$@"
}

if ! run_step "setup" "$root/scripts/setup.sh"; then
    echo "test.sh: setup failed; nothing can be built" >&2
    exit 1
fi

# hls.js for the web page and playwright-core for the browser test.
run_step "npm packages" "$root/scripts/npm-install.sh"

if run_step "build/ (RelWithDebInfo, -Werror)" "$root/scripts/build.sh"; then
    run_step "all tests in build/" \
        run_ctest "$root/build" --parallel "$test_jobs"
    run_step "README.md option table" check_readme_help
fi

if run_step "build-asan/ (Debug, sanitizers, -Werror)" build_asan; then
    run_step "unit tests in build-asan/" \
        sanitized run_ctest "$root/build-asan" -L unit
    run_step "$asan_media_case in build-asan/" \
        sanitized run_ctest "$root/build-asan" -R "^${asan_media_case}\$"
    run_step "test_pipeline in build-asan/" \
        sanitized run_ctest "$root/build-asan" -R "^test_pipeline\$"
fi

echo
for step in "${failed_steps[@]}"; do
    echo "test.sh: failed step: $step"
done
echo "test.sh: $(count_tests)"
if ((${#failed_steps[@]} > 0)); then
    exit 1
fi
