#!/usr/bin/env bash
# Prints the state of an uploaded video and, once its first segments are
# out, the URL to play it from CloudFront.
#
# usage: scripts/aws/status.sh NAME
#
# NAME is the object's name under stream/, as given to upload-video.sh.
# The video id is the first 16 hex digits of the SHA-256 of the key
# "stream/NAME", and the output of each upload of that name sits under
# ID/GENERATION/ in the HLS bucket, so the URL names both.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if (($# != 1)); then
    die "usage: $script NAME"
fi
key=stream/$1
id=$(printf '%s' "$key" | sha256sum | cut -c1-16)

item=$(aws_cli dynamodb get-item --table-name "$prefix-video-state" \
           --key "{\"id\": {\"S\": \"$id\"}}" --output json) ||
    die "reading video $id from table $prefix-video-state failed (see the" \
        "AWS CLI's message above)"
if [[ -z $item || $item == "{}" ]]; then
    die "s3://$prefix-videos/$key: video $id not found in table" \
        "$prefix-video-state; check the name, or wait for the orchestrator"
fi

read -r status generation error < <(python3 -c '
import json
import sys

item = json.load(sys.stdin)["Item"]
print(item.get("status", {}).get("S", "?"),
      item.get("generation", {}).get("N", "0"),
      item.get("error", {}).get("S", "").replace("\n", " "))
' <<<"$item")

echo "video $id ($key): $status, generation $generation"
if [[ $status == failed ]]; then
    echo "reason: $error"
    exit 1
fi
master=$id/$generation/master.m3u8
if ! aws_cli s3api head-object --bucket "$prefix-hls" --key "$master" \
        >/dev/null 2>&1; then
    echo "no master playlist yet; run again in a few seconds"
    exit 0
fi
cdn=$(stack_outputs 2>/dev/null |
      awk -F'\t' '$1 == "HlsCdnUrl" {print $2}') || true
if [[ -n $cdn ]]; then
    echo "play: $cdn/$master"
else
    echo "master playlist: s3://$prefix-hls/$master (the stack has no" \
         "CDN URL output)"
fi
