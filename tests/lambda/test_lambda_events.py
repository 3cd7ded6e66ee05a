#!/usr/bin/env python3
"""The S3 event fixtures with encoded keys, end to end on moto: each key
must name exactly the uploaded object, and the output must be complete.

    tests/aws/with_moto.sh python3 tests/lambda/test_lambda_events.py CASE
    python3 tests/lambda/test_lambda_events.py --list

For each fixture in tests/lambda/events/ the case uploads a clip from the
media corpus under the decoded key. It hands the fixture (bucket, size and
ETag set to the real object's) to the orchestrator and the job queue's
messages to the worker, as the SQS trigger does. Then it checks that:
  - the state item names the decoded key and the clip's duration;
  - for a+b.mp4, the object stream/a b.mp4 (a different clip) was not
    the one read;
  - every URI in the master, media and I-frame playlists resolves to an
    object in the HLS bucket;
  - the output passes the checks of the local output (frames equal the
    source's, IDR frames on the segment grid, final playlists).

Exit status: 0 pass, 1 fail, 77 skip (no moto endpoint, no binary, no
corpus). Settings (binary, bundle folders, wrapper command, resource
names) are the environment variables listed in tests/lambda/lambdakit.py:
SN_LAMBDA_BINARY or SN_LAMBDA_CODE_ORCHESTRATOR and SN_LAMBDA_CODE_WORKER,
SN_LAMBDA_PREFIX, SN_LAMBDA_TASK_ROOT, SINATRA_VIDEOS_BUCKET,
SINATRA_HLS_BUCKET, SINATRA_JOB_QUEUE_URL, SINATRA_STATE_TABLE.
"""

import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lambdakit as LK  # noqa: E402
from lambdakit import S3UploadFailedError  # noqa: E402
from lambdakit import H, K  # noqa: E402

EVENTS = os.path.join(HERE, "events")
BEAR = "packager-bear-640x360-trailing-moov.mp4"
SINTEL = "packager-sintel-1024x436.mp4"
READY_TIMEOUT = 300         # seconds from the event to a finished video

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def media_path(name):
    folder = os.environ.get("SN_MEDIA_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared",
        "media")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise H.CaseSkipped("corpus file %s is absent" % path)
    return path


def fixture_event(fixture, bucket, head):
    """Loads a fixture and points its record at the real object."""
    with open(os.path.join(EVENTS, fixture)) as fh:
        event = json.load(fh)
    event = copy.deepcopy(event)
    for record in event["Records"]:
        s3 = record["s3"]
        s3["bucket"]["name"] = bucket
        s3["bucket"]["arn"] = "arn:aws:s3:::" + bucket
        s3["object"]["size"] = head["ContentLength"]
        s3["object"]["eTag"] = head["ETag"].strip('"')
    return event


def upload(c, aws, bucket, key, path):
    """Uploads path to s3://bucket/key; a failure stops the case with the
    object and the cause."""
    try:
        aws["s3"].upload_file(path, bucket, key)
        return aws["s3"].head_object(Bucket=bucket, Key=key)
    except (aws["s3"].exceptions.ClientError, S3UploadFailedError) as e:
        c.require(False, "upload of %s to s3://%s/%s failed: %s"
                  % (os.path.basename(path), bucket, key, e))


def run_fixture(c, tmp, fixture, name, clip, decoys=()):
    """Runs one fixture whose key decodes to stream/NAME with the clip
    uploaded there and the decoys (name, clip) next to it."""
    LK.require_env()
    src = media_path(clip)
    aws = LK.clients()
    res = LK.Resources(aws, LK.unique_suffix()).create()
    credentials = LK.function_credentials(aws)

    key = K.UPLOAD_PREFIX + name
    head = upload(c, aws, res.videos, key, src)
    for decoy_name, decoy_clip in decoys:
        upload(c, aws, res.videos, K.UPLOAD_PREFIX + decoy_name,
               media_path(decoy_clip))
    event = fixture_event(fixture, res.videos, head)

    orchestrator = LK.make_function("orchestrator", tmp, res, credentials,
                                    LK.ORCHESTRATOR_TIMEOUT)
    worker = LK.make_function("worker", tmp, res, credentials,
                              LK.WORKER_TIMEOUT)
    try:
        r = orchestrator.invoke(event)
        c.require(r.kind == "response", "orchestrator on %s: %s %s; log: %s"
                  % (fixture, r.kind, r.body[:300],
                     orchestrator.log_text()[-1500:]))
        video = K.video_id(name)
        item = LK.video_item(aws, res.table, video)
        c.require(item, "no state item for video %s (key %s) after the "
                  "orchestrator ran; log: %s"
                  % (video, key, orchestrator.log_text()[-1500:]))
        c.expect(item.get("source") == key, "video %s: source %r, expected "
                 "%r" % (video, item.get("source"), key))
        check_duration(c, video, item, src, decoys)

        items = LK.drain_jobs(c, aws, worker, res, [video], READY_TIMEOUT)
        item = items[video]
        c.require(item.get("status") == "ready",
                  "video %s (%s) ended %s: %s; worker log: %s"
                  % (video, key, item.get("status"), item.get("error"),
                     worker.log_text()[-1500:]))
        LK.check_ready_output(c, aws, res, video, item, src, tmp,
                              "s3://%s/%s" % (res.videos, key))
        for fn in (orchestrator, worker):
            problem = LK.log_problems(fn)
            c.expect(problem is None, problem)
    finally:
        orchestrator.stop()
        worker.stop()


def check_duration(c, video, item, src, decoys):
    """The duration in state must be the uploaded clip's, not a decoy's."""
    want = source_duration(src)
    got = int(item.get("duration_us", -1)) / 1e6
    c.expect(abs(got - want) <= 0.1, "video %s: duration %.3f s in state, "
             "the uploaded clip lasts %.3f s" % (video, got, want))
    for decoy_name, decoy_clip in decoys:
        other = source_duration(media_path(decoy_clip))
        c.expect(abs(got - other) > 0.1, "video %s: duration %.3f s is the "
                 "one of %s (%.3f s), so the wrong object was read"
                 % (video, got, decoy_name, other))


def source_duration(path):
    _, fmt, _ = H.probe_streams(path)
    return float(fmt.get("duration", 0))


@case
def key_with_spaces_and_parentheses(c, tmp):
    run_fixture(c, tmp, "s3-put-my-clip.json", "my clip (1).mov", BEAR)


@case
def encoded_plus_is_not_a_space(c, tmp):
    run_fixture(c, tmp, "s3-put-a-plus-b.json", "a+b.mp4", BEAR,
                decoys=[("a b.mp4", SINTEL)])


@case
def key_with_non_ascii_letters(c, tmp):
    run_fixture(c, tmp, "s3-put-nee.json", "n\u00e9e.mp4", BEAR)


if __name__ == "__main__":
    sys.exit(LK.run_case(CASES, sys.argv[1:], "test_lambda_events.py"))
