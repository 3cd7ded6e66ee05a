#!/usr/bin/env bash
# Builds the two Lambda zips and uploads them to the deploy bucket,
# creating the bucket (private, encrypted) when it does not exist.
#
# usage: scripts/aws/upload-code.sh [--no-build]
#
# --no-build uploads the zips in SINATRA_LAMBDA_DIR as they are, without
# make lambda.
# Settings: see scripts/aws/common.sh (SINATRA_DEPLOY_BUCKET, SINATRA_ARCH).
set -euo pipefail
source "$(dirname "$0")/common.sh"

build=1
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    *) die "unknown argument: $arg (usage: $script [--no-build])" ;;
    esac
done

if ((build)); then
    make -C "$root" lambda ARCH="$arch"
fi
for name in aws_orchestrator aws_worker; do
    if [[ ! -f $lambda_dir/$name.zip ]]; then
        die "$lambda_dir/$name.zip not found; run make lambda" \
            "ARCH=$arch first"
    fi
done

if ! aws_cli s3api head-bucket --bucket "$deploy_bucket" >/dev/null 2>&1; then
    echo "$script: creating bucket $deploy_bucket"
    region=$(aws_cli configure get region || true)
    region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$region}}
    # us-east-1 rejects a LocationConstraint; every other region needs one.
    if [[ -z $region || $region == us-east-1 ]]; then
        aws_cli s3api create-bucket --bucket "$deploy_bucket" >/dev/null
    else
        aws_cli s3api create-bucket --bucket "$deploy_bucket" \
            --create-bucket-configuration "LocationConstraint=$region" \
            >/dev/null
    fi
    aws_cli s3api put-public-access-block --bucket "$deploy_bucket" \
        --public-access-block-configuration \
        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
    aws_cli s3api put-bucket-encryption --bucket "$deploy_bucket" \
        --server-side-encryption-configuration \
        '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
fi

aws_cli s3 cp --only-show-errors "$lambda_dir/aws_orchestrator.zip" \
    "s3://$deploy_bucket/$orchestrator_key"
aws_cli s3 cp --only-show-errors "$lambda_dir/aws_worker.zip" \
    "s3://$deploy_bucket/$worker_key"
echo "$script: uploaded s3://$deploy_bucket/$orchestrator_key and" \
     "s3://$deploy_bucket/$worker_key ($arch)"
