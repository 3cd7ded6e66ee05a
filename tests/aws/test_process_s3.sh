#!/usr/bin/env bash
# End to end on moto through the command line: a clip uploaded to S3,
# `sinatra process s3://…` orchestrates it, `sinatra worker --backend aws`
# works until the video is ready, and the master playlist is in the output
# bucket. Runs under tests/aws/with_moto.sh; needs SN_MEDIA_DIR.
#
# usage: with_moto.sh tests/aws/test_process_s3.sh SINATRA_BINARY
set -uo pipefail

binary=$1
clip=${SN_MEDIA_DIR:-}/packager-bear-640x360-trailing-moov.mp4
if [[ -z ${AWS_ENDPOINT_URL:-} || ! -f $clip ]]; then
    echo "test_process_s3.sh: AWS_ENDPOINT_URL or the media corpus is" \
         "missing: skipped" >&2
    exit 77
fi

work=$(mktemp -d /tmp/sn-process-s3-XXXXXX)
worker_pid=
cleanup() {
    if [[ -n $worker_pid ]]; then
        kill -TERM "$worker_pid" 2>/dev/null
        wait "$worker_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export SINATRA_JOB_QUEUE_URL
SINATRA_JOB_QUEUE_URL=$(python3 - "$clip" <<'PY'
import os
import sys

import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
s3 = boto3.client("s3", endpoint_url=endpoint,
                      region_name=os.environ["AWS_REGION"])
for bucket in ("sinatra-videos", "sinatra-hls"):
    s3.create_bucket(Bucket=bucket)
s3.upload_file(sys.argv[1], "sinatra-videos", "stream/bear clip.mp4")
sqs = boto3.client("sqs", endpoint_url=endpoint,
                      region_name=os.environ["AWS_REGION"])
print(sqs.create_queue(QueueName="sinatra-jobs")["QueueUrl"])
ddb = boto3.client("dynamodb", endpoint_url=endpoint,
                      region_name=os.environ["AWS_REGION"])
ddb.create_table(TableName="sinatra-video-state",
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "id",
                                        "AttributeType": "S"}],
                 BillingMode="PAY_PER_REQUEST")
PY
)
if [[ -z $SINATRA_JOB_QUEUE_URL ]]; then
    echo "test_process_s3.sh: could not create the AWS resources" >&2
    exit 1
fi

if ! "$binary" process "s3://sinatra-videos/stream/bear clip.mp4" \
        >"$work/process.out" 2>&1; then
    echo "test_process_s3.sh: sinatra process failed:" >&2
    cat "$work/process.out" >&2
    exit 1
fi
id=$(sed -n 's/.*video \([0-9a-f]*\) planned.*/\1/p' "$work/process.out")
if [[ -z $id ]]; then
    echo "test_process_s3.sh: no video id in: $(cat "$work/process.out")" >&2
    exit 1
fi

"$binary" worker --backend aws --workers 1 2>"$work/worker.log" &
worker_pid=$!

python3 - "$id" <<'PY'
import os
import sys
import time

import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
video = sys.argv[1]
ddb = boto3.client("dynamodb", endpoint_url=endpoint,
                      region_name=os.environ["AWS_REGION"])
deadline = time.monotonic() + 180
status = None
while time.monotonic() < deadline:
    item = ddb.get_item(TableName="sinatra-video-state",
                        Key={"id": {"S": video}}).get("Item", {})
    status = item.get("status", {}).get("S")
    if status in ("ready", "failed"):
        break
    time.sleep(0.5)
if status != "ready":
    sys.exit("video %s ended as %r, expected ready" % (video, status))
s3 = boto3.client("s3", endpoint_url=endpoint,
                      region_name=os.environ["AWS_REGION"])
master = s3.get_object(Bucket="sinatra-hls",
                       Key=video + "/1/master.m3u8")
text = master["Body"].read().decode()
if "#EXT-X-STREAM-INF" not in text:
    sys.exit("master playlist without variants:\n" + text)
if master["ContentType"] != "application/vnd.apple.mpegurl":
    sys.exit("master playlist Content-Type %r" % master["ContentType"])
media = s3.get_object(Bucket="sinatra-hls", Key=video + "/1/360p/index.m3u8")
if "#EXT-X-ENDLIST" not in media["Body"].read().decode():
    sys.exit("360p playlist is not final")
print("video %s ready in the output bucket" % video)
PY
status=$?
if ((status != 0)); then
    echo "test_process_s3.sh: worker log:" >&2
    tail -n 30 "$work/worker.log" >&2
fi
exit "$status"
