#!/usr/bin/env python3
"""The Lambda functions end to end on moto, with the test playing the
Lambda service and its S3 and SQS triggers.

    tests/aws/with_moto.sh python3 tests/lambda/test_lambda_e2e.py CASE
    python3 tests/lambda/test_lambda_e2e.py --list

Each case uploads clips from the media corpus with boto3 to the videos
bucket, whose notification configuration sends ObjectCreated events under
stream/ to a notification queue. The case hands each S3 event from that
queue to the orchestrator, the s3:TestEvent too, which must be skipped.
Then it polls the job queue and hands batches of up to 10 messages, in
Lambda's SQS event shape, to the worker. Messages not listed in
batchItemFailures are deleted. The others stay and come back after the
visibility timeout, and after maxReceiveCount receives SQS moves them to
the dead-letter queue.

Exit status: 0 pass, 1 fail, 77 skip (no moto endpoint, no binary, no
corpus). Settings are the environment variables listed in
tests/lambda/lambdakit.py:
  SN_LAMBDA_BINARY, or SN_LAMBDA_CODE_ORCHESTRATOR and
  SN_LAMBDA_CODE_WORKER (unpacked bundles); SN_LAMBDA_PREFIX and
  SN_LAMBDA_TASK_ROOT for a wrapper such as a chroot;
  SINATRA_VIDEOS_BUCKET, SINATRA_HLS_BUCKET, SINATRA_JOB_QUEUE_URL (with a
  RedrivePolicy), SINATRA_STATE_TABLE and SINATRA_NOTIFY_QUEUE_URL to run
  on resources made elsewhere instead of creating them.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lambdakit as LK  # noqa: E402
from lambdakit import S3UploadFailedError  # noqa: E402
from lambdakit import H, K  # noqa: E402
from test_lambda_events import media_path  # noqa: E402

BEAR = "packager-bear-640x360-trailing-moov.mp4"
SINTEL = "packager-sintel-1024x436.mp4"
READY_TIMEOUT = 300         # seconds from the events to finished videos
# The deadline case: jobs that take a second or more (a slower x264 preset
# on three rungs) and a timeout in which the worker can start such a job
# but not finish it.
SLOW_ENV = {"SINATRA_PRESET": "medium", "SINATRA_RUNGS": "236,360,432"}
SHORT_TIMEOUT = 1.5         # seconds

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Setup:
    """Resources, credentials and the two functions of one case."""

    def __init__(self, c, tmp, env=None):
        LK.require_env()
        self.c = c
        self.tmp = tmp
        self.aws = LK.clients()
        self.res = LK.Resources(self.aws, LK.unique_suffix()).create()
        credentials = LK.function_credentials(self.aws)
        self.orchestrator = LK.make_function(
            "orchestrator", tmp, self.res, credentials,
            LK.ORCHESTRATOR_TIMEOUT, env=env)
        self.worker = LK.make_function("worker", tmp, self.res, credentials,
                                       LK.WORKER_TIMEOUT, env=env)

    def stop(self):
        for fn in (self.orchestrator, self.worker):
            inits = [t[0] * 1000 for t in fn.timings if t[0] is not None]
            runs = [t[1] * 1000 for t in fn.timings if t[1] is not None]
            if runs:
                self.c.note("%s: cold start (process start to first next) "
                            "%s ms; %d invokes, median %.0f ms"
                            % (fn.name, ", ".join("%.1f" % t for t in inits),
                               len(runs), sorted(runs)[len(runs) // 2]))
            fn.stop()

    def upload(self, name, clip):
        key = K.UPLOAD_PREFIX + name
        try:
            self.aws["s3"].upload_file(media_path(clip), self.res.videos, key)
        except (self.aws["s3"].exceptions.ClientError,
                S3UploadFailedError) as e:
            self.c.require(False, "upload of %s to s3://%s/%s failed: %s"
                           % (clip, self.res.videos, key, e))
        return K.video_id(name)

    def orchestrate_notifications(self, expect):
        """Hands the S3 events on the notification queue to the
        orchestrator; requires expect events with Records."""
        c = self.c
        events, tests = LK.notification_events(
            self.aws, self.res.notify, wait_s=15, expect=expect)
        c.require(len(events) == expect,
                  "%d S3 events on the notification queue, expected %d"
                  % (len(events), expect))
        for event in tests + events:
            r = self.orchestrator.invoke(event)
            what = event.get("Event") or ", ".join(
                rec["s3"]["object"]["key"] for rec in event["Records"])
            c.expect(r.kind == "response",
                     "orchestrator on %s: %s %s; log: %s"
                     % (what, r.kind, r.body[:300],
                        self.orchestrator.log_text()[-1500:]))

    def check_logs(self):
        for fn in (self.orchestrator, self.worker):
            problem = LK.log_problems(fn)
            self.c.expect(problem is None, problem)

    def queue_depth(self, url):
        attrs = self.aws["sqs"].get_queue_attributes(
            QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + \
            int(attrs["ApproximateNumberOfMessagesNotVisible"])


def run(c, tmp, body, **kw):
    setup = Setup(c, tmp, **kw)
    try:
        body(setup)
    finally:
        setup.stop()


@case
def uploads_become_ready_hls_in_s3(c, tmp):
    def body(s):
        clips = {s.upload("bear clip.mp4", BEAR): BEAR,
                 s.upload("sintel.mp4", SINTEL): SINTEL}
        s.orchestrate_notifications(expect=len(clips))
        batches = []
        t0 = time.monotonic()
        items = LK.drain_jobs(c, s.aws, s.worker, s.res, list(clips),
                              READY_TIMEOUT, batches=batches)
        c.note("%d batches (%d messages) in %.1f s"
               % (len(batches), sum(len(b.records) for b in batches),
                  time.monotonic() - t0))
        for b in batches:
            c.expect(not b.whole_batch_failed and not b.failed_ids,
                     "batch %s failed: %s %s" % (b.ids(), b.reason,
                                                 b.result.body[:300]))
        for video, clip in clips.items():
            item = items[video]
            if not c.expect(item.get("status") == "ready",
                            "video %s (%s) ended %s: %s"
                            % (video, clip, item.get("status"),
                               item.get("error"))):
                continue
            LK.check_ready_output(c, s.aws, s.res, video, item,
                                  media_path(clip), tmp, clip)
        c.expect(s.queue_depth(s.res.jobs) == 0, "job queue not empty")
        c.expect(s.queue_depth(s.res.dlq) == 0, "dead-letter queue holds "
                 "%d messages" % s.queue_depth(s.res.dlq))
        s.check_logs()
    run(c, tmp, body)


@case
def poison_job_reaches_dlq_and_fails_video(c, tmp):
    def body(s):
        name = "poison.mp4"
        video = s.upload(name, BEAR)
        s.orchestrate_notifications(expect=1)
        # The jobs are planned: the source goes away under them.
        s.aws["s3"].delete_object(Bucket=s.res.videos,
                                  Key=K.UPLOAD_PREFIX + name)
        items = LK.drain_jobs(c, s.aws, s.worker, s.res, [video],
                              READY_TIMEOUT)
        item = items[video]
        c.expect(item.get("status") == "failed",
                 "video %s ended %s, expected failed"
                 % (video, item.get("status")))
        c.expect(bool(item.get("error")), "video %s failed without a reason"
                 % video)
        c.note("reason: %s" % item.get("error"))

        # SQS moves a message on the receive after its last allowed one.
        dead = []
        deadline = time.monotonic() + 4 * s.res.visibility_s + 10
        while not dead and time.monotonic() < deadline:
            messages = LK.receive(s.aws, s.res.jobs)
            if messages:
                LK.run_batch(s.aws, s.worker, s.res.jobs, messages)
            dead = LK.receive(s.aws, s.res.dlq, wait_s=1)
        c.require(dead, "no message reached the dead-letter queue %s"
                  % s.res.dlq)
        for m in dead:
            count = int(m["Attributes"]["ApproximateReceiveCount"])
            c.expect(video in m["Body"], "dead letter %s is not a job of "
                     "video %s: %s" % (m["MessageId"], video, m["Body"]))
            c.expect(count > s.res.max_receives,
                     "dead letter %s was received %d times, the queue "
                     "allows %d" % (m["MessageId"], count,
                                    s.res.max_receives))
        s.check_logs()
    run(c, tmp, body)


@case
def worker_stops_before_deadline_and_job_returns(c, tmp):
    def body(s):
        video = s.upload("deadline.mp4", SINTEL)
        s.orchestrate_notifications(expect=1)
        stopped = stop_a_job(s)
        r = stopped.result
        job = stopped.records[0]["messageId"]
        c.expect(stopped.failed_ids == [job], "batchItemFailures %s, "
                 "expected [%s]: %s" % (stopped.failed_ids, job,
                                        r.body[:300]))
        c.expect(s.worker.alive(), "the worker process is gone after "
                 "answering")

        # The message comes back after the visibility timeout.
        back = []
        deadline = time.monotonic() + s.res.visibility_s + 15
        while not back and time.monotonic() < deadline:
            back = LK.receive(s.aws, s.res.jobs, max_messages=1)
            if back and back[0]["MessageId"] != job:
                LK.run_batch(s.aws, s.worker, s.res.jobs, back)
                back = []
        c.require(back, "job %s did not come back to the queue" % job)
        count = int(back[0]["Attributes"]["ApproximateReceiveCount"])
        c.expect(count == 2, "job %s came back with receive count %d, "
                 "expected 2" % (job, count))
        again = LK.run_batch(s.aws, s.worker, s.res.jobs, back)
        c.expect(again.result.kind == "response" and not again.failed_ids,
                 "job %s with the normal timeout: %s %s"
                 % (job, again.result.kind, again.result.body[:300]))
        c.note("job %s: stopped after %.3f s with a %.1f s timeout, done "
               "in %.3f s with %.0f s" % (job, r.duration_s, SHORT_TIMEOUT,
                                          again.result.duration_s,
                                          LK.WORKER_TIMEOUT))
        c.expect(again.result.duration_s > r.duration_s,
                 "job %s took %.3f s with the normal timeout, less than the "
                 "%.3f s it had with the short one, so the short timeout "
                 "tested nothing" % (job, again.result.duration_s,
                                     r.duration_s))

        items = LK.drain_jobs(c, s.aws, s.worker, s.res, [video],
                              READY_TIMEOUT)
        item = items[video]
        c.require(item.get("status") == "ready", "video %s ended %s: %s"
                  % (video, item.get("status"), item.get("error")))
        LK.check_ready_output(c, s.aws, s.res, video, item,
                              media_path(SINTEL), tmp, SINTEL)
        s.check_logs()
    run(c, tmp, body, env=SLOW_ENV)


# Events that are not usable at all: each must come back as an
# invocation error of type Sinatra.InvalidEvent, with the process still
# up for the next event.
INVALID_EVENTS = [
    b"{", b"{}", b"[]", b"null", b'"hello"', b"", b'{"Records":{}}',
    b'{"Records":"x"}', b'{"Records":null}', b"\xff\xff\xff",
    b"[" * 200000,
]
# Batches the worker cannot report message by message: a record that is
# not an object, one without a usable messageId, an S3 event.
INVALID_BATCHES = [
    {"Records": [1]},
    {"Records": [{"body": "{}"}]},
    {"Records": [{"messageId": "m\udc80", "body": "{}"}]},
    {"Records": [{"messageId": "m" * 200000, "body": "{}"}]},
    {"Records": [{"eventSource": "aws:s3", "eventName":
                  "ObjectCreated:Put", "s3": {}}]},
]


def s3_event(bucket, *keys):
    return {"Records": [
        {"eventVersion": "2.1", "eventSource": "aws:s3",
         "eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
        for key in keys]}


def check_invalid_event(c, fn, event, what):
    r = fn.invoke(event)
    c.expect(r.kind == "error" and r.error_type == "Sinatra.InvalidEvent",
             "%s on %s: %s %s %s; log: %s"
             % (fn.name, what, r.kind, r.error_type, r.body[:200],
                fn.log_text()[-1000:]))
    c.expect(fn.alive(), "%s exited after %s; log: %s"
             % (fn.name, what, fn.log_text()[-1000:]))


@case
def invalid_events_fail_invocation_not_process(c, tmp):
    def body(s):
        for fn in (s.orchestrator, s.worker):
            for event in INVALID_EVENTS:
                check_invalid_event(c, fn, event, repr(event[:20]))
        for event in INVALID_BATCHES:
            text = json.dumps(event).encode("utf-8", "surrogatepass")
            check_invalid_event(c, s.worker, text, repr(text[:60]))

        # Only the malformed record of a batch comes back.
        batch = {"Records": [
            {"messageId": "m-bad-count", "body": "{}",
             "attributes": {"ApproximateReceiveCount": "abc"}},
            {"messageId": "m-not-a-job", "body": "{}"}]}
        r = s.worker.invoke(batch)
        c.expect(r.kind == "response" and r.payload == {
            "batchItemFailures": [{"itemIdentifier": "m-bad-count"}]},
            "worker on a batch with one malformed record: %s %s"
            % (r.kind, r.body[:300]))
        r = s.orchestrator.invoke({"Event": "s3:TestEvent"})
        c.expect(r.kind == "response", "orchestrator after the invalid "
                 "events: %s %s" % (r.kind, r.body[:300]))
        for fn in (s.orchestrator, s.worker):
            c.expect(fn.cold_starts == 1, "%s started %d times"
                     % (fn.name, fn.cold_starts))
            c.expect("HTTP 403" not in fn.log_text(), "%s: the Runtime API "
                     "rejected a call; log: %s"
                     % (fn.name, fn.log_text()[-1000:]))
        s.check_logs()
    run(c, tmp, body)


@case
def undecodable_key_is_ignored_alone(c, tmp):
    def body(s):
        video = s.upload("t5-mkv.mkv", BEAR)
        r = s.orchestrator.invoke(s3_event(s.res.videos, "stream/%FF.mp4",
                                           "stream/t5-mkv.mkv"))
        c.require(r.kind == "response", "orchestrator: %s %s; log: %s"
                  % (r.kind, r.body[:300],
                     s.orchestrator.log_text()[-1000:]))
        ignored = r.payload.get("ignored", [])
        c.expect(len(ignored) == 1 and
                 ignored[0].get("key") == "stream/%FF.mp4" and
                 "invalid UTF-8" in ignored[0].get("reason", ""),
                 "ignored: %r" % ignored)
        planned = [p.get("video") for p in r.payload.get("planned", [])]
        c.expect(planned == [video], "planned %r, expected [%s]"
                 % (planned, video))
        s.check_logs()
    run(c, tmp, body)


@case
def repeat_of_failed_upload_is_listed_failed(c, tmp):
    def body(s):
        key = K.UPLOAD_PREFIX + "notes.mp4"
        s.aws["s3"].put_object(Bucket=s.res.videos, Key=key,
                               Body=b"these are not video frames\n" * 64)
        event = s3_event(s.res.videos, key)
        first = s.orchestrator.invoke(event)
        again = s.orchestrator.invoke(event)
        for label, r in (("first", first), ("repeated", again)):
            c.require(r.kind == "response", "%s event: %s %s"
                      % (label, r.kind, r.body[:300]))
            failed = r.payload.get("failed", [])
            c.expect(not r.payload.get("planned") and len(failed) == 1 and
                     failed[0].get("key") == key and
                     failed[0].get("reason"),
                     "%s event: %s" % (label, r.body[:300]))
        c.expect(first.payload.get("failed") == again.payload.get("failed"),
                 "the repeat reports %r, the first event %r"
                 % (again.payload.get("failed"),
                    first.payload.get("failed")))
        s.check_logs()
    run(c, tmp, body)


def stop_a_job(s):
    """Hands the jobs one at a time to the worker with SHORT_TIMEOUT until
    the worker reports one failed because the deadline came first (jobs
    short enough finish in time). Every response must come before the
    deadline, so a worker killed there fails the case. Returns the
    Batch."""
    c = s.c
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        messages = LK.receive(s.aws, s.res.jobs, max_messages=1)
        if not messages:
            continue
        batch = LK.run_batch(s.aws, s.worker, s.res.jobs, messages,
                             timeout=SHORT_TIMEOUT)
        r = batch.result
        c.require(r.kind == "response", "worker with %.1f s: %s %s "
                  "(killed at the deadline: %s); log: %s"
                  % (SHORT_TIMEOUT, r.kind, r.body[:300], r.timed_out,
                     s.worker.log_text()[-1500:]))
        c.expect(r.duration_s < SHORT_TIMEOUT, "worker answered after "
                 "%.3f s, past its %.1f s deadline"
                 % (r.duration_s, SHORT_TIMEOUT))
        if batch.failed_ids:
            return batch
    c.require(False, "no job was stopped by the %.1f s timeout within "
              "%d s" % (SHORT_TIMEOUT, READY_TIMEOUT))


if __name__ == "__main__":
    sys.exit(LK.run_case(CASES, sys.argv[1:], "test_lambda_e2e.py"))
