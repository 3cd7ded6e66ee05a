#!/usr/bin/env bash
# Follows the log events of both functions, each line prefixed with the
# function's name, until interrupted. Needs AWS CLI v2 (aws logs tail).
#
# usage: scripts/aws/logs.sh [--since DURATION]
#
# DURATION is how far back to start, as aws logs tail reads it (default
# 10m; for example 1h or 30s).
set -euo pipefail
source "$(dirname "$0")/common.sh"

since=10m
case ${1:-} in
"") ;;
--since) since=${2:?"$script: --since needs a duration"} ;;
*) die "unknown argument: $1 (usage: $script [--since DURATION])" ;;
esac

# AWS CLI v1 has no `aws logs tail`; it would print its usage and exit.
version=$(aws --version 2>&1)
if [[ $version != aws-cli/2.* ]]; then
    die "aws logs tail needs AWS CLI v2; found ${version%% *}. Install" \
        "AWS CLI v2, or read the log groups /aws/lambda/$prefix-orchestrator" \
        "and /aws/lambda/$prefix-worker in the CloudWatch console"
fi

pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap stop EXIT INT TERM

for function in orchestrator worker; do
    aws_cli logs tail "/aws/lambda/$prefix-$function" --follow \
        --since "$since" --format short |
        sed -u "s/^/$function: /" &
    pids+=($!)
done
wait
