#!/usr/bin/env bash
# Uploads a video under stream/ in the videos bucket, which starts the
# orchestrator.
#
# usage: scripts/aws/upload-video.sh FILE [NAME]
#
# NAME is the object's name under stream/ (default: FILE's base name).
set -euo pipefail
source "$(dirname "$0")/common.sh"

if (($# < 1 || $# > 2)); then
    die "usage: $script FILE [NAME]"
fi
file=$1
name=${2:-$(basename "$file")}
if [[ ! -f $file ]]; then
    die "$file: no such file"
fi

aws_cli s3 cp --only-show-errors "$file" "s3://$prefix-videos/stream/$name"
echo "$script: uploaded s3://$prefix-videos/stream/$name"
