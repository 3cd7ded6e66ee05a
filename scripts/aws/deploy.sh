#!/usr/bin/env bash
# Creates or updates the stack from infra/sinatra.yaml, points both
# functions at the zips now in the deploy bucket, and prints the outputs.
#
# usage: scripts/aws/deploy.sh [Name=Value ...]
#
# Each Name=Value sets a template parameter (for example WorkerMemorySize=
# 4096); Prefix, Architecture and DeployBucket come from the settings in
# scripts/aws/common.sh. Upload the zips first (scripts/aws/upload-code.sh).
set -euo pipefail
source "$(dirname "$0")/common.sh"

for arg in "$@"; do
    if [[ $arg != ?*=* ]]; then
        die "invalid parameter override: $arg (expected Name=Value)"
    fi
done

aws_cli cloudformation deploy --stack-name "$stack" \
    --template-file "$template" \
    --capabilities CAPABILITY_NAMED_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "Prefix=$prefix" "Architecture=$arch" \
        "DeployBucket=$deploy_bucket" "$@"

# CloudFormation sees no change when a new zip replaces the old one under
# the same key, so UpdateFunctionCode makes both functions load it.
for function in orchestrator worker; do
    key=$orchestrator_key
    [[ $function == worker ]] && key=$worker_key
    aws_cli lambda update-function-code --function-name "$prefix-$function" \
        --s3-bucket "$deploy_bucket" --s3-key "$key" \
        --query 'LastUpdateStatus' --output text >/dev/null
done

"$(dirname "$0")/outputs.sh"
