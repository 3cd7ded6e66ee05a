# Settings and helpers shared by the scripts in scripts/aws/; sourced, not
# run. Every setting comes from the environment, with these defaults:
#
#   SINATRA_PREFIX         sinatra          start of every resource name
#   SINATRA_STACK          $SINATRA_PREFIX  CloudFormation stack name
#   SINATRA_DEPLOY_BUCKET  sinatra-deploy   bucket that contains the zips
#   SINATRA_ARCH           x86_64           x86_64 or arm64
#   SINATRA_LAMBDA_DIR     target/lambda    folder of the two zips
#   AWS_ENDPOINT_URL       (unset)          another endpoint, e.g. moto
#
# The region and credentials come from the AWS CLI's usual sources
# (AWS_REGION, AWS_PROFILE, ~/.aws).

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=${SINATRA_PREFIX:-sinatra}
stack=${SINATRA_STACK:-$prefix}
deploy_bucket=${SINATRA_DEPLOY_BUCKET:-sinatra-deploy}
arch=${SINATRA_ARCH:-x86_64}
lambda_dir=${SINATRA_LAMBDA_DIR:-$root/target/lambda}
template=$root/infra/sinatra.yaml
orchestrator_key=lambda/aws_orchestrator.zip
worker_key=lambda/aws_worker.zip
script=$(basename "$0")

die() {
    echo "$script: $*" >&2
    exit 1
}

if ! command -v aws >/dev/null; then
    die "the aws command (AWS CLI) was not found; install Debian's" \
        "awscli package or AWS CLI v2"
fi
case $arch in
x86_64 | arm64) ;;
*) die "SINATRA_ARCH is $arch; expected x86_64 or arm64" ;;
esac
# The template's AllowedPattern for Prefix, checked here too because the
# scripts name buckets before CloudFormation checks the value.
if [[ ! $prefix =~ ^[a-z][a-z0-9-]{1,40}[a-z0-9]$ || $prefix == xn--* ]]
then
    die "SINATRA_PREFIX is '$prefix'; expected 3 to 42 lower-case" \
        "letters, digits and hyphens, starting with a letter (not" \
        "\"xn--\", which S3 reserves) and ending with a letter or digit"
fi

# AWS CLI v1 reads the region from AWS_DEFAULT_REGION only.
if [[ -n ${AWS_REGION:-} && -z ${AWS_DEFAULT_REGION:-} ]]; then
    export AWS_DEFAULT_REGION=$AWS_REGION
fi

# Runs the AWS CLI. AWS_ENDPOINT_URL is passed as --endpoint-url because
# AWS CLI versions before 2.13 (Debian 12 has 2.9) ignore the variable.
aws_cli() {
    if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
        aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"
    else
        aws "$@"
    fi
}

# Prints "OutputKey<TAB>OutputValue" lines of the stack, or fails.
stack_outputs() {
    aws_cli cloudformation describe-stacks --stack-name "$stack" \
        --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
}
