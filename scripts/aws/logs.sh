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
