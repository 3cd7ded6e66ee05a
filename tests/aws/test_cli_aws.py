#!/usr/bin/env python3
"""The AWS side of the command line on moto: `sinatra process s3://…`
options, output and repeats, and `sinatra worker --backend aws` limits,
start-up checks and exit codes.

    usage: tests/aws/with_moto.sh tests/aws/test_cli_aws.py SINATRA_BINARY

Each case makes its own buckets, queue and table, named after the case, on
the one moto server of with_moto.sh, which checks every signature. Cases:

- worker_adopts_redrive_max_receives: a queue whose redrive policy has
  maxReceiveCount 2 and a job that always fails (its plan.json deleted)
  end with the video failed and a reason, under the default
  --max-receives; an explicit --max-receives 5 is a usage error naming
  both values.
- process_options_in_any_position: --quiet before the URL, --rungs and
  --json after it, an unknown option, and the s3:// form's own usage.
- process_names_generation_prefix: the output line names ID/GEN/ and the
  master playlist key.
- process_again_resends_pending_jobs: a repeat on a video whose messages
  are gone sends every job not done again; on a ready or failed video it
  sends nothing and prints that.
- worker_stops_on_configuration_errors: a wrong secret, a missing queue,
  table or bucket end the worker with exit 1 and one line; a queue
  deleted under a running worker ends it with 1 too.
- exit_codes_of_process_s3: a missing object or bucket gives 3, an
  invalid queue URL 2 (the worker's too), a missing table 4, and no error
  line counts attempts that were never retried.

Exit status: 0 pass, 1 fail, 77 skipped (no endpoint or media corpus).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import boto3

BEAR = "packager-bear-640x360-trailing-moov.mp4"
KEY = "stream/bear.mp4"
PROCESS_TIMEOUT = 120
FAIL_TIMEOUT = 60       # seconds for a failing job to fail its video
READY_TIMEOUT = 180
EXIT_TIMEOUT = 30       # seconds for a worker to exit on its own


class CaseFailed(Exception):
    pass


class Test:
    def __init__(self, binary, media):
        self.binary = binary
        self.bear = os.path.join(media, BEAR)
        self.failures = []
        self.n_checks = 0
        self.case = ""
        kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                  region_name=os.environ["AWS_REGION"])
        self.s3 = boto3.client("s3", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ddb = boto3.client("dynamodb", **kw)

    # ---- checks -------------------------------------------------------

    def expect(self, cond, msg):
        self.n_checks += 1
        if not cond:
            self.failures.append("%s: %s" % (self.case, msg))
            print("FAIL %s: %s" % (self.case, msg), flush=True)
        return cond

    def require(self, cond, msg):
        if not self.expect(cond, msg):
            raise CaseFailed()

    # ---- resources ----------------------------------------------------

    def resources(self, name, max_receives=None):
        """Creates the buckets, queue (with a dead-letter queue and a
        redrive policy when max_receives is set) and table of a case, puts
        the bear clip under KEY and returns the environment for sinatra."""
        r = {"videos": name + "-videos", "hls": name + "-hls",
             "table": name + "-state"}

        for bucket in (r["videos"], r["hls"]):
            self.s3.create_bucket(Bucket=bucket)
        self.s3.upload_file(self.bear, r["videos"], KEY)

        attributes = {}
        if max_receives is not None:
            dead = self.sqs.create_queue(QueueName=name + "-dead")
            arn = self.sqs.get_queue_attributes(
                QueueUrl=dead["QueueUrl"], AttributeNames=["QueueArn"])
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": str(max_receives)})
        r["queue"] = self.sqs.create_queue(
            QueueName=name + "-jobs", Attributes=attributes)["QueueUrl"]
        self.ddb.create_table(
            TableName=r["table"],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id",
                                   "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")

        env = dict(os.environ)
        env.update({"SINATRA_VIDEOS_BUCKET": r["videos"],
                    "SINATRA_HLS_BUCKET": r["hls"],
                    "SINATRA_JOB_QUEUE_URL": r["queue"],
                    "SINATRA_STATE_TABLE": r["table"]})
        r["env"] = env
        return r

    def item(self, r, vid):
        return self.ddb.get_item(TableName=r["table"],
                                 Key={"id": {"S": vid}},
                                 ConsistentRead=True).get("Item", {})

    def queue_depth(self, r):
        a = self.sqs.get_queue_attributes(
            QueueUrl=r["queue"],
            AttributeNames=["ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible"])
        a = a["Attributes"]
        return (int(a["ApproximateNumberOfMessages"]) +
                int(a["ApproximateNumberOfMessagesNotVisible"]))

    def drain(self, r):
        """Deletes every visible message; returns how many."""
        n = 0
        while True:
            got = self.sqs.receive_message(
                QueueUrl=r["queue"], MaxNumberOfMessages=10,
                WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return n
            for m in got:
                self.sqs.delete_message(QueueUrl=r["queue"],
                                        ReceiptHandle=m["ReceiptHandle"])
            n += len(got)

    # ---- running sinatra ----------------------------------------------

    def run(self, args, env, timeout=PROCESS_TIMEOUT):
        """Runs sinatra with args; a run that outlasts timeout is killed
        and returned with returncode None."""
        try:
            return subprocess.run([self.binary] + args, env=env,
                                  capture_output=True, text=True,
                                  timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            def text(b):
                return b.decode("utf-8", "replace") if isinstance(
                    b, bytes) else (b or "")
            return subprocess.CompletedProcess(e.cmd, None, text(e.stdout),
                                               text(e.stderr))

    def process(self, r, *args, key=KEY):
        return self.run(["process", "s3://%s/%s" % (r["videos"], key)] +
                        list(args), r["env"])

    def video_id(self, out):
        m = re.search(r"video ([0-9a-f]{16}) ", out)
        return m.group(1) if m else None

    def start_worker(self, r, *args, env=None):
        log = open(os.path.join("/tmp", "sn-cli-aws-%d-%s.log"
                                % (os.getpid(), self.case)), "w+")
        p = subprocess.Popen(
            [self.binary, "worker", "--backend", "aws", "--workers", "1",
             "--visibility-timeout", "10"] + list(args),
            env=env or r["env"], stdout=log, stderr=log,
            stdin=subprocess.DEVNULL)
        p.log = log
        return p

    def stop_worker(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.log.seek(0)
        text = p.log.read()
        p.log.close()
        os.unlink(p.log.name)
        return text

    def wait_exit(self, p, timeout=EXIT_TIMEOUT):
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_status(self, r, vid, want, timeout):
        deadline = time.monotonic() + timeout
        item = {}
        while time.monotonic() < deadline:
            item = self.item(r, vid)
            if item.get("status", {}).get("S") in want:
                break
            time.sleep(0.5)
        return item

    # ---- cases --------------------------------------------------------

    def worker_adopts_redrive_max_receives(self):
        r = self.resources("redrive", max_receives=2)
        p = self.process(r)
        self.require(p.returncode == 0, "process exited with %r: %s"
                     % (p.returncode, p.stderr))
        vid = self.video_id(p.stdout)
        self.require(vid is not None, "no video id in %r" % p.stdout)

        bad = self.run(["worker", "--backend", "aws", "--max-receives", "5"],
                       r["env"], timeout=EXIT_TIMEOUT)
        self.expect(bad.returncode == 2, "worker --max-receives 5 on a "
                    "queue with maxReceiveCount 2 exited with %r, expected "
                    "2" % bad.returncode)
        self.expect("5" in bad.stderr and "maxReceiveCount 2" in bad.stderr,
                    "the usage error does not name both values: %r"
                    % bad.stderr)

        # Every job needs the plan, so without it each delivery fails
        # with an error worth retrying.
        plan = "jobs/%s/1/plan.json" % vid
        self.s3.delete_object(Bucket=r["videos"], Key=plan)
        w = self.start_worker(r)
        item = self.wait_status(r, vid, ("failed", "ready"), FAIL_TIMEOUT)
        log = self.stop_worker(w)
        status = item.get("status", {}).get("S")
        self.expect(status == "failed", "video %s is %r %d s after its "
                    "jobs started failing, expected failed; worker log: %s"
                    % (vid, status, FAIL_TIMEOUT, log[-2000:]))
        reason = item.get("error", {}).get("S", "")
        self.expect("plan.json" in reason, "video %s failed with %r, "
                    "expected the missing plan.json as the reason"
                    % (vid, reason))
        self.expect("2 deliveries per job" in log, "the worker did not log "
                    "the queue's limit of 2 deliveries: %s" % log[-2000:])

    def process_options_in_any_position(self):
        r = self.resources("options")
        p = self.process(r, "--quiet")
        self.expect(p.returncode == 0, "process s3://… --quiet exited "
                    "with %r: %s" % (p.returncode, p.stderr))
        self.expect(p.stdout == "", "--quiet printed %r" % p.stdout)

        self.s3.upload_file(self.bear, r["videos"], "stream/first.mp4")
        p = self.run(["process", "--quiet", "s3://%s/stream/first.mp4"
                      % r["videos"]], r["env"])
        self.expect(p.returncode == 0, "process --quiet s3://… exited "
                    "with %r: %s" % (p.returncode, p.stderr))
        self.expect(p.stdout == "", "--quiet printed %r" % p.stdout)

        self.s3.upload_file(self.bear, r["videos"], "stream/rungs.mp4")
        p = self.process(r, "--rungs", "360", "--json",
                         key="stream/rungs.mp4")
        self.require(p.returncode == 0, "process s3://… --rungs 360 --json "
                     "exited with %r: %s" % (p.returncode, p.stderr))
        try:
            event = json.loads(p.stdout)
        except ValueError:
            event = {}
        self.require(event.get("planned") is True, "--json printed %r, "
                     "expected one object with planned true" % p.stdout)
        plan = json.loads(self.s3.get_object(
            Bucket=r["videos"], Key="jobs/%s/1/plan.json" % event["video"])
            ["Body"].read())
        names = [rung["name"] for rung in plan["rungs"]]
        self.expect(names == ["360p"], "--rungs 360 planned rungs %s"
                    % names)
        self.expect(event.get("sent") == event.get("jobs") and
                    event.get("jobs", 0) > 0, "--json event %r: sent is "
                    "not the job count" % event)

        p = self.process(r, "--no-such-option")
        self.expect(p.returncode == 2, "an unknown option exited with %r"
                    % p.returncode)
        self.expect("usage: sinatra process s3://" in p.stderr and
                    "usage: sinatra worker" not in p.stderr,
                    "an unknown option printed %r" % p.stderr[:300])
        p = self.process(r, "--output", "x")
        self.expect(p.returncode == 2 and "does not apply" in p.stderr,
                    "--output with s3:// exited with %r: %r"
                    % (p.returncode, p.stderr[:200]))
        p = self.run(["process", "--help", "s3://%s/%s" % (r["videos"], KEY)],
                     r["env"])
        self.expect(p.returncode == 0 and "--queue-url" in p.stdout and
                    "--rungs" in p.stdout, "--help before the URL printed "
                    "%r" % p.stdout[:300])

    def process_names_generation_prefix(self):
        r = self.resources("prefix")
        p = self.process(r)
        self.require(p.returncode == 0, "process exited with %r: %s"
                     % (p.returncode, p.stderr))
        vid = self.video_id(p.stdout)
        self.expect("%s/1/master.m3u8" % vid in p.stdout, "the output does "
                    "not name %s/1/master.m3u8: %r" % (vid, p.stdout))
        self.expect("under s3://" not in p.stdout, "the output still "
                    "claims a place in the HLS bucket: %r" % p.stdout)
        self.expect("HLS bucket" in p.stdout, "the output does not say "
                    "the workers' HLS bucket decides: %r" % p.stdout)

    def process_again_resends_pending_jobs(self):
        r = self.resources("again", max_receives=2)
        p = self.process(r)
        self.require(p.returncode == 0, "process exited with %r: %s"
                     % (p.returncode, p.stderr))
        vid = self.video_id(p.stdout)
        n_jobs = int(self.item(r, vid)["n_jobs"]["N"])
        lost = self.drain(r)
        self.expect(lost == n_jobs, "the queue held %d messages, expected "
                    "%d" % (lost, n_jobs))

        p = self.process(r)
        self.expect(p.returncode == 0, "the repeat exited with %r: %s"
                    % (p.returncode, p.stderr))
        self.expect("sent the %d jobs not done yet once more" % n_jobs
                    in p.stdout,
                    "the repeat printed %r, expected %d jobs sent again"
                    % (p.stdout, n_jobs))
        self.expect(self.queue_depth(r) == n_jobs, "the queue holds %d "
                    "messages after the repeat, expected %d"
                    % (self.queue_depth(r), n_jobs))

        w = self.start_worker(r)
        item = self.wait_status(r, vid, ("ready", "failed"), READY_TIMEOUT)
        log = self.stop_worker(w)
        self.require(item.get("status", {}).get("S") == "ready", "video %s "
                     "is %r, expected ready; worker log: %s"
                     % (vid, item.get("status"), log[-2000:]))
        p = self.process(r)
        self.expect(p.returncode == 0 and "already ready" in p.stdout and
                    "nothing sent" in p.stdout, "a repeat on a ready video "
                    "exited with %r and printed %r"
                    % (p.returncode, p.stdout))
        self.expect(self.queue_depth(r) == 0, "a repeat on a ready video "
                    "sent %d messages" % self.queue_depth(r))

        # A failed video: a source that is not media.
        self.s3.put_object(Bucket=r["videos"], Key="stream/notes.mp4",
                           Body=b"not a video\n" * 100)
        p = self.process(r, key="stream/notes.mp4")
        self.expect(p.returncode == 3, "a source that is not media exited "
                    "with %r: %s" % (p.returncode, p.stderr))
        p = self.process(r, key="stream/notes.mp4")
        self.expect(p.returncode == 0 and "has failed" in p.stdout and
                    "nothing sent" in p.stdout, "a repeat on a failed video "
                    "exited with %r and printed %r"
                    % (p.returncode, p.stdout))
        self.expect(self.queue_depth(r) == 0, "a repeat on a failed video "
                    "sent %d messages" % self.queue_depth(r))

    def expect_worker_exit(self, r, what, args, env, want_text):
        start = time.monotonic()
        w = self.start_worker(r, *args, env=env)
        rc = self.wait_exit(w)
        log = self.stop_worker(w)
        lines = [ln for ln in log.splitlines() if ln.strip()]
        self.expect(rc == 1, "worker with %s exited with %r after %.0f s, "
                    "expected 1; log: %s" % (what, rc,
                                             time.monotonic() - start,
                                             log[-1500:]))
        self.expect(len(lines) == 1 and want_text in log, "worker with %s "
                    "logged %r, expected one line with %r"
                    % (what, log[-1500:], want_text))
        self.expect("attempt" not in log, "worker with %s counts attempts "
                    "that were never retried: %r" % (what, log[-500:]))
        return log

    def worker_stops_on_configuration_errors(self):
        r = self.resources("config")
        env = dict(r["env"], AWS_SECRET_ACCESS_KEY="wrong-secret")
        self.expect_worker_exit(r, "a wrong secret", [], env,
                                "AWS_ACCESS_KEY_ID")
        gone = r["queue"].rsplit("/", 1)[0] + "/no-such-queue"
        self.expect_worker_exit(r, "a missing queue", ["--queue-url", gone],
                                None, "no-such-queue")
        self.expect_worker_exit(r, "a missing table",
                                ["--state-table", "no-such-table"], None,
                                "no-such-table")
        self.expect_worker_exit(r, "a missing HLS bucket",
                                ["--hls-bucket", "no-such-bucket"], None,
                                "no-such-bucket")
        self.expect_worker_exit(r, "a missing uploads bucket",
                                ["--videos-bucket", "no-such-uploads"],
                                None, "no-such-uploads")

        # The queue goes away under a running worker.
        w = self.start_worker(r)
        time.sleep(2)
        if w.poll() is not None:
            self.require(False, "the worker exited at start: %s"
                         % self.stop_worker(w))
        self.sqs.delete_queue(QueueUrl=r["queue"])
        rc = self.wait_exit(w)
        log = self.stop_worker(w)
        self.expect(rc == 1, "worker exited with %r after its queue was "
                    "deleted, expected 1; log: %s" % (rc, log[-1500:]))
        self.expect(log.count("cannot receive jobs") == 1, "worker logged "
                    "%r, expected one 'cannot receive jobs' line"
                    % log[-1500:])

    def exit_codes_of_process_s3(self):
        r = self.resources("codes")
        p = self.process(r, key="stream/missing.mp4")
        self.expect(p.returncode == 3, "a missing object exited with %r: %s"
                    % (p.returncode, p.stderr))
        self.expect("attempt" not in p.stderr, "a missing object's error "
                    "counts attempts: %r" % p.stderr)
        p = self.run(["process", "s3://no-such-bucket/%s" % KEY], r["env"])
        self.expect(p.returncode == 3, "a missing bucket exited with %r: %s"
                    % (p.returncode, p.stderr))
        # Checked before any request: the endpoint is a closed port, so a
        # request would fail with exit 4 instead.
        offline = dict(r["env"], AWS_ENDPOINT_URL="http://127.0.0.1:9")
        for url, cause in (
                ("s3://Bad_Bucket/%s" % KEY, "invalid bucket name"),
                ("s3://ab/%s" % KEY, "invalid bucket name"),
                ("s3://%s/stream/" % r["videos"], "not an upload key"),
                ("s3://%s/stream/a/b.mp4" % r["videos"], "not an upload key"),
                ("s3://%s/other/x.mp4" % r["videos"], "not an upload key"),
                ("s3://%s/stream/a\nb.mp4" % r["videos"],
                 "control character")):
            p = self.run(["process", url], offline)
            self.expect(p.returncode == 2, "process %r exited with %r: %s"
                        % (url, p.returncode, p.stderr[:300]))
            self.expect(cause in p.stderr.splitlines()[0] if p.stderr
                        else False, "process %r printed %r, expected %r "
                        "on the first line" % (url, p.stderr[:300], cause))
        p = self.process(r, "--queue-url", "not-a-url")
        self.expect(p.returncode == 2, "process with a garbage queue URL "
                    "exited with %r: %s" % (p.returncode, p.stderr))
        p = self.run(["worker", "--backend", "aws", "--queue-url",
                      "not-a-url"], r["env"], timeout=EXIT_TIMEOUT)
        self.expect(p.returncode == 2, "worker with a garbage queue URL "
                    "exited with %r: %s" % (p.returncode, p.stderr))
        p = self.process(r, "--state-table", "no-such-table")
        self.expect(p.returncode == 4 and "no-such-table" in p.stderr,
                    "process with a missing table exited with %r: %s"
                    % (p.returncode, p.stderr))
        self.expect(len(p.stderr.strip().splitlines()) == 1,
                    "process with a missing table printed %r, expected one "
                    "line" % p.stderr)
        env = dict(r["env"], AWS_SECRET_ACCESS_KEY="wrong-secret")
        p = self.run(["process", "s3://%s/%s" % (r["videos"], KEY)], env)
        self.expect(p.returncode == 4 and "AWS_ACCESS_KEY_ID" in p.stderr,
                    "process with a wrong secret exited with %r: %s"
                    % (p.returncode, p.stderr))

    CASES = ("worker_adopts_redrive_max_receives",
             "process_options_in_any_position",
             "process_names_generation_prefix",
             "process_again_resends_pending_jobs",
             "worker_stops_on_configuration_errors",
             "exit_codes_of_process_s3")

    def run_all(self, only):
        for name in self.CASES:
            if only and name not in only:
                continue
            self.case = name
            started = time.monotonic()
            try:
                getattr(self, name)()
            except CaseFailed:
                pass
            print("%s: %.0f s" % (name, time.monotonic() - started),
                  flush=True)


def main(argv):
    if len(argv) < 1:
        print("usage: test_cli_aws.py SINATRA_BINARY [CASE...]",
              file=sys.stderr)
        return 2
    media = os.environ.get("SN_MEDIA_DIR", "")
    if not os.environ.get("AWS_ENDPOINT_URL") or not os.path.isfile(
            os.path.join(media, BEAR)):
        print("test_cli_aws.py: AWS_ENDPOINT_URL or SN_MEDIA_DIR/%s is "
              "missing: skipped" % BEAR, file=sys.stderr)
        return 77
    t = Test(os.path.abspath(argv[0]), media)
    t.run_all(argv[1:])
    if t.failures:
        print("test_cli_aws.py: %d of %d checks failed"
              % (len(t.failures), t.n_checks))
        return 1
    print("test_cli_aws.py: %d checks passed" % t.n_checks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
