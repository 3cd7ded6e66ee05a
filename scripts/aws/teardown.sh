#!/usr/bin/env bash
# Deletes everything the stack created. The buckets are emptied first
# (every object version and delete marker), because CloudFormation cannot
# delete a bucket that contains objects.
#
# usage: scripts/aws/teardown.sh [--delete-deploy-bucket]
#
# --delete-deploy-bucket also empties and deletes the deploy bucket.
set -euo pipefail
source "$(dirname "$0")/common.sh"

delete_deploy_bucket=0
case ${1:-} in
"") ;;
--delete-deploy-bucket) delete_deploy_bucket=1 ;;
*) die "unknown argument: $1 (usage: $script [--delete-deploy-bucket])" ;;
esac

# Deletes every version and delete marker in bucket $1, 1000 at a time
# (DeleteObjects' maximum). A missing bucket is already empty.
empty_bucket() {
    local bucket=$1 batch errors

    if ! aws_cli s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
        return 0
    fi
    while :; do
        batch=$(aws_cli s3api list-object-versions --bucket "$bucket" \
            --max-items 1000 --output json --query \
            '{Objects: [Versions, DeleteMarkers][][].{Key: Key, VersionId: VersionId}, Quiet: `true`}')
        if [[ $batch == *'"Objects": []'* || $batch == *'"Objects": null'* ]]; then
            break
        fi
        errors=$(aws_cli s3api delete-objects --bucket "$bucket" \
            --delete "$batch" --query 'Errors[].[Key, Code, Message]' \
            --output text)
        if [[ -n $errors && $errors != None ]]; then
            die "could not delete objects of bucket $bucket: $errors"
        fi
    done
    echo "$script: emptied bucket $bucket"
}

if aws_cli cloudformation describe-stacks --stack-name "$stack" \
        >/dev/null 2>&1; then
    empty_bucket "$prefix-videos"
    empty_bucket "$prefix-hls"
    aws_cli cloudformation delete-stack --stack-name "$stack"
    aws_cli cloudformation wait stack-delete-complete --stack-name "$stack"
    echo "$script: deleted stack $stack"
else
    echo "$script: stack $stack not found; nothing to delete"
fi

if ((delete_deploy_bucket)); then
    empty_bucket "$deploy_bucket"
    if aws_cli s3api head-bucket --bucket "$deploy_bucket" >/dev/null 2>&1
    then
        aws_cli s3api delete-bucket --bucket "$deploy_bucket"
        echo "$script: deleted bucket $deploy_bucket"
    fi
fi
