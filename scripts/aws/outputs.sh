#!/usr/bin/env bash
# Prints the stack's outputs under the names the Pulumi program exports
# (videos_bucket_name, ...), or with --env as shell assignments of the
# variables the Lambda functions and tests/lambda read.
#
# usage: scripts/aws/outputs.sh [--env]
set -euo pipefail
source "$(dirname "$0")/common.sh"

format=names
case ${1:-} in
"") ;;
--env) format=env ;;
*) die "unknown argument: $1 (usage: $script [--env])" ;;
esac

declare -A snake=(
    [VideosBucketName]=videos_bucket_name
    [HlsBucketName]=hls_bucket_name
    [HlsCdnUrl]=hls_cdn_url
    [JobQueueUrl]=job_queue_url
    [VideoStateTableName]=video_state_table_name
    [OrchestratorLambdaArn]=orchestrator_lambda_arn
    [WorkerLambdaArn]=worker_lambda_arn
)
declare -A env_name=(
    [VideosBucketName]=SINATRA_VIDEOS_BUCKET
    [HlsBucketName]=SINATRA_HLS_BUCKET
    [JobQueueUrl]=SINATRA_JOB_QUEUE_URL
    [VideoStateTableName]=SINATRA_STATE_TABLE
)

outputs=$(stack_outputs) || die "could not read the outputs of stack $stack"
# describe-stacks prints "None" for a stack without outputs: one that is
# still being created, or one deployed to moto through a change set.
if [[ -z $outputs || $outputs == None ]]; then
    die "stack $stack has no outputs yet; check its status with: aws" \
        "cloudformation describe-stacks --stack-name $stack"
fi
while IFS=$'\t' read -r key value; do
    if [[ $format == names && -n ${snake[$key]:-} ]]; then
        printf '%s = %s\n' "${snake[$key]}" "$value"
    elif [[ $format == env && -n ${env_name[$key]:-} ]]; then
        printf '%s=%q\n' "${env_name[$key]}" "$value"
    fi
done <<<"$outputs"
