#!/usr/bin/env python3
"""End to end on moto through the command line, with workers that crash
and jobs that arrive twice.

    usage: tests/aws/with_verified_moto.py tests/aws/test_workers_aws.py \\
               SINATRA_BINARY

It runs under with_verified_moto.py because the upload names carry '+',
parentheses and accented letters, whose requests moto 5.2.1 cannot verify
itself (see that script). Steps:

1. Clips from the media corpus (SN_MEDIA_DIR) go to the uploads bucket as
   "stream/my clip (1).mp4" (the bear clip looped to 12 s), "stream/a+b.mp4"
   and "stream/née.mp4" (both the bear clip, byte for byte).
2. `sinatra process s3://…` plans the first one. One `sinatra worker
   --backend aws --visibility-timeout 5` takes its jobs alone and is killed
   with SIGKILL while a job's files are in its scratch folder. That job's
   message must come back once its visibility runs out (not before the
   timeout minus one heartbeat) and be finished by another worker.
3. The other two uploads are planned. The test takes the job messages
   off the queue and sends them back with each job of "née.mp4" twice in
   a row, so that both copies run at once. Two new worker processes
   finish all three
   videos. They are stopped with SIGTERM and must exit with 0.
4. Each video's DynamoDB item is ready with every job done and was
   finished once ("video ready" logged once). Its HLS in the output
   bucket passes the checks the local output gets. Every playlist
   parses, every URI in it names an object, segments are not empty, media
   playlists are VOD with ENDLIST, and content types and caching are set.
   The tree, downloaded, passes tests/server/test_serve.py's check_output
   (frames, IDR positions, durations, decoding). "née.mp4", which got
   every job twice, has the same bytes as "a+b.mp4".
5. A duplicate of every job of every video is sent; once two more workers
   have taken them all, every output object (size, ETag), every job
   result and every state item is unchanged.

Exit status: 0 pass, 1 fail, 77 skipped (no endpoint or corpus).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "media"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "server"))

import boto3  # noqa: E402

import hlscheck as H  # noqa: E402
import servekit as K  # noqa: E402
import test_serve as S  # noqa: E402

BEAR = "packager-bear-640x360-trailing-moov.mp4"
KILL_NAME = "stream/my clip (1).mp4"
PLAIN_NAME = "stream/a+b.mp4"
TWICE_NAME = "stream/n\u00e9e.mp4"
VIDEOS_BUCKET, HLS_BUCKET = "sinatra-videos", "sinatra-hls"
TABLE, QUEUE = "sinatra-video-state", "sinatra-jobs"

VISIBILITY_S = 5
HEARTBEAT_S = VISIBILITY_S // 3      # what the worker derives from it
READY_TIMEOUT = 150                  # seconds for all videos to finish
KILL_TIMEOUT = 60                    # seconds to catch a job in progress

CONTENT_TYPES = {".m3u8": ("application/vnd.apple.mpegurl",),
                 ".m4s": ("video/iso.segment", "video/mp4"),
                 ".mp4": ("video/mp4",),
                 ".jpg": ("image/jpeg",)}


class Test:
    def __init__(self, binary, media):
        self.binary = binary
        self.media = media
        self.c = H.Checks()
        self.tmp = tempfile.mkdtemp(prefix="sn-workers-aws-")
        self.n_probes = 0
        self.workers = []
        kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                  region_name=os.environ["AWS_REGION"])
        self.s3 = boto3.client("s3", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ddb = boto3.client("dynamodb", **kw)
        self.queue_url = None

    # ---- setup --------------------------------------------------------

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def create_resources(self):
        for bucket in (VIDEOS_BUCKET, HLS_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        self.ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id",
                                   "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")

    def looped_bear(self, seconds):
        """Makes the bear clip looped to `seconds` (H.264 + AAC, MP4)."""
        out = self.path("inputs", "bear-%ds.mp4" % seconds)
        H.ffmpeg(["-stream_loop", int(seconds / 2.7) + 1, "-i",
                  os.path.join(self.media, BEAR), "-t", seconds, "-c:v",
                  "libx264", "-preset", "veryfast", "-crf", "23", "-c:a",
                  "aac", "-b:a", "128k", out])
        return out

    def env(self):
        env = dict(os.environ)
        env["SINATRA_JOB_QUEUE_URL"] = self.queue_url
        return env

    def process(self, key):
        """Runs `sinatra process s3://…` on key and returns the video id."""
        url = "s3://%s/%s" % (VIDEOS_BUCKET, key)
        r = subprocess.run([self.binary, "process", url], env=self.env(),
                           capture_output=True, text=True, timeout=120)
        self.c.require(r.returncode == 0, "`sinatra process %s` exited with "
                       "%d: %s" % (url, r.returncode, r.stderr.strip()))
        vid = K.video_id(key[len(K.UPLOAD_PREFIX):])
        self.c.require(vid in r.stdout, "`sinatra process %s` printed no "
                       "video id %s: %r" % (url, vid, r.stdout))
        return vid

    def start_worker(self, label):
        """Starts `sinatra worker --backend aws` with a scratch folder of
        its own (TMPDIR), so the test can see when it is in a job."""
        scratch = self.path("scratch", label, "x")
        scratch = os.path.dirname(scratch)
        env = self.env()
        env["TMPDIR"] = scratch
        log = self.path("logs", label + ".log")
        with open(log, "ab") as fh:
            p = subprocess.Popen(
                [self.binary, "worker", "--backend", "aws", "--workers", "1",
                 "--visibility-timeout", str(VISIBILITY_S)],
                env=env, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                start_new_session=True)
        w = {"label": label, "proc": p, "log": log, "scratch": scratch}
        self.workers.append(w)
        return w

    def stop_workers(self):
        for w in self.workers:
            p = w["proc"]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def logs(self):
        text = ""
        for w in self.workers:
            with open(w["log"], encoding="utf-8", errors="replace") as fh:
                text += fh.read()
        return text

    def log_tails(self):
        return "".join("\n--- %s ---\n%s" % (w["label"], w_tail(w))
                       for w in self.workers)

    # ---- state --------------------------------------------------------

    def item(self, vid):
        return self.ddb.get_item(TableName=TABLE, Key={"id": {"S": vid}},
                                 ConsistentRead=True).get("Item", {})

    def done_set(self, vid):
        return {int(n) for n in self.item(vid).get("done", {}).get("NS", [])}

    def queue_depth(self):
        a = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible"])
        a = a["Attributes"]
        return (int(a["ApproximateNumberOfMessages"]) +
                int(a["ApproximateNumberOfMessagesNotVisible"]))

    def job_body(self, vid, generation, job):
        # The orchestrator's format: pipeline/orchestrate.c.
        return json.dumps({"video": vid, "generation": generation,
                           "job": job}, separators=(",", ":"))

    def send_duplicates(self, vid):
        """Sends every job of vid once more; returns how many."""
        item = self.item(vid)
        generation = int(item["generation"]["N"])
        n_jobs = int(item["n_jobs"]["N"])
        entries = [{"Id": str(j), "MessageBody":
                    self.job_body(vid, generation, j)}
                   for j in range(n_jobs)]
        for i in range(0, len(entries), 10):
            r = self.sqs.send_message_batch(QueueUrl=self.queue_url,
                                            Entries=entries[i:i + 10])
            self.c.require(not r.get("Failed"), "send_message_batch: %r"
                           % r.get("Failed"))
        return n_jobs

    def duplicate_in_place(self, vid):
        """Takes every visible message off the queue and sends them back in
        the same order, those of vid twice in a row, so two workers take
        both copies of a job at the same time."""
        received = []
        while True:
            r = self.sqs.receive_message(QueueUrl=self.queue_url,
                                         MaxNumberOfMessages=10,
                                         VisibilityTimeout=300,
                                         WaitTimeSeconds=0)
            if not r.get("Messages"):
                break
            received += r["Messages"]

        item = self.item(vid)
        want = [self.job_body(vid, int(item["generation"]["N"]), j)
                for j in range(int(item["n_jobs"]["N"]))]
        mine = [m["Body"] for m in received if vid in m["Body"]]
        self.c.require(sorted(mine) == sorted(want), "video %s: the queue "
                       "held the job messages %s, expected %s"
                       % (vid, mine, want))

        bodies = []
        for m in received:
            bodies += [m["Body"]] * (2 if vid in m["Body"] else 1)
        for i in range(0, len(bodies), 10):
            r = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(k), "MessageBody": b}
                         for k, b in enumerate(bodies[i:i + 10])])
            self.c.require(not r.get("Failed"), "send_message_batch: %r"
                           % r.get("Failed"))

        for m in received:
            self.sqs.delete_message(QueueUrl=self.queue_url,
                                    ReceiptHandle=m["ReceiptHandle"])

    # ---- the crash ----------------------------------------------------

    def kill_in_job(self, vid):
        """Runs one worker alone until a job's files are in its scratch
        folder, kills it, and returns (job, time of the kill)."""
        w = self.start_worker("killed")
        deadline = time.monotonic() + KILL_TIMEOUT
        entries = None
        while time.monotonic() < deadline and w["proc"].poll() is None:
            entries = scratch_entries(w["scratch"])
            if entries:
                break
            time.sleep(0.01)
        self.c.require(entries, "worker `killed` never had a job's files "
                       "in %s within %d s; log: %s"
                       % (w["scratch"], KILL_TIMEOUT, w_tail(w)))
        done_before = self.done_set(vid)
        os.kill(w["proc"].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        w["proc"].wait()

        # Alone, the worker took the jobs in queue order (moto keeps the
        # order they were sent in), so the job it held is the first one
        # not done. Its files must agree.
        item = self.item(vid)
        n_jobs = int(item["n_jobs"]["N"])
        missing = [j for j in range(n_jobs) if j not in done_before]
        self.c.require(missing, "video %s: every job was done when the "
                       "worker was killed" % vid)
        job = missing[0]
        plan = self.plan(vid, int(item["generation"]["N"]))
        want = expected_scratch_entries(plan, job)
        self.c.require(entries <= want, "the killed worker's scratch "
                       "folder held %s, but job %d of video %s writes %s"
                       % (sorted(entries), job, vid, sorted(want)))
        return job, killed_at

    def plan(self, vid, generation):
        key = "jobs/%s/%d/plan.json" % (vid, generation)
        body = self.s3.get_object(Bucket=VIDEOS_BUCKET, Key=key)["Body"]
        return json.loads(body.read())

    # ---- waiting ------------------------------------------------------

    def wait_ready(self, vids, watch_job=None):
        """Polls the state until every video is ready. With watch_job
        (video, job), returns the time that job was first seen done."""
        deadline = time.monotonic() + READY_TIMEOUT
        seen_done = None
        status = {}
        while time.monotonic() < deadline:
            for vid in vids:
                item = self.item(vid)
                status[vid] = item.get("status", {}).get("S")
                self.c.require(status[vid] != "failed", "video %s failed: "
                               "%s" % (vid, item.get("error", {}).get("S")))
                if watch_job and watch_job[0] == vid and seen_done is None:
                    done = item.get("done", {}).get("NS", [])
                    if str(watch_job[1]) in done:
                        seen_done = time.monotonic()
            if all(s == "ready" for s in status.values()):
                return seen_done
            time.sleep(0.25)
        self.c.require(False, "videos not ready within %d s: %s; logs: %s"
                       % (READY_TIMEOUT, status, self.log_tails()))

    def wait_queue_empty(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue_depth() == 0:
                return
            time.sleep(0.5)
        self.c.require(False, "the queue still holds %d messages after %d "
                       "s; logs: %s" % (self.queue_depth(), timeout,
                                        self.log_tails()))

    # ---- output checks ------------------------------------------------

    def objects(self, bucket, prefix):
        """Returns {key: (size, ETag)} under prefix."""
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["Size"], o["ETag"])
        return out

    def check_hls_in_bucket(self, vid, prefix, src_path):
        """Checks the HLS tree under prefix/ in the output bucket as a
        player reads it, then downloads it and runs the local checks."""
        c = self.c
        objects = self.objects(HLS_BUCKET, prefix + "/")
        pending, seen = ["master.m3u8"], set()
        while pending:
            rel = pending.pop(0)
            if rel in seen:
                continue
            seen.add(rel)
            key = prefix + "/" + rel
            if not c.expect(key in objects, "video %s: %s is named by a "
                            "playlist but is not in s3://%s" %
                            (vid, key, HLS_BUCKET)):
                continue
            head = self.s3.head_object(Bucket=HLS_BUCKET, Key=key)
            self.check_headers(key, head)
            c.expect(head["ContentLength"] > 0, "s3://%s/%s is empty"
                     % (HLS_BUCKET, key))
            if not rel.endswith(".m3u8"):
                continue
            text = self.s3.get_object(Bucket=HLS_BUCKET, Key=key)[
                "Body"].read().decode("utf-8", "replace")
            for p in K.playlist_problems(text):
                c.expect(False, "s3://%s/%s %s" % (HLS_BUCKET, key, p))
            if rel != "master.m3u8":
                c.expect(K.is_final(text) and K.playlist_type(text) == "VOD",
                         "s3://%s/%s is not a VOD playlist with ENDLIST"
                         % (HLS_BUCKET, key))
            for uri in K.playlist_uris(text):
                target = urllib.parse.urljoin(rel, uri)
                c.expect("://" not in uri and not uri.startswith("/"),
                         "s3://%s/%s names %r, expected a relative URI"
                         % (HLS_BUCKET, key, uri))
                pending.append(urllib.parse.unquote(target))
        c.expect(prefix + "/poster.jpg" in objects, "video %s has no "
                 "poster.jpg" % vid)

        outdir = self.path("out", vid, "x")
        outdir = os.path.dirname(outdir)
        for key in objects:
            dest = os.path.join(outdir, key[len(prefix) + 1:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            self.s3.download_file(HLS_BUCKET, key, dest)
        S.check_output(self, outdir, src_path, "video %s" % vid)
        return objects

    def check_headers(self, key, head):
        ext = os.path.splitext(key)[1]
        ctype = head.get("ContentType", "").split(";")[0].strip()
        want = CONTENT_TYPES.get(ext)
        if want is not None:
            self.c.expect(ctype in want, "s3://%s/%s has Content-Type %r, "
                          "expected %s" % (HLS_BUCKET, key, ctype,
                                           " or ".join(want)))
        cache = head.get("CacheControl", "")
        if ext in (".m4s", ".mp4", ".jpg"):
            self.c.expect("immutable" in cache, "s3://%s/%s has "
                          "Cache-Control %r, expected immutable"
                          % (HLS_BUCKET, key, cache))
        elif ext == ".m3u8":
            self.c.expect("max-age" in cache and "immutable" not in cache,
                          "s3://%s/%s has Cache-Control %r, expected a short "
                          "max-age" % (HLS_BUCKET, key, cache))

    def check_finished_once(self, vid):
        item = self.item(vid)
        n_jobs = int(item.get("n_jobs", {}).get("N", "0"))
        done = self.done_set(vid)
        self.c.expect(item.get("status", {}).get("S") == "ready",
                      "video %s has status %r, expected ready"
                      % (vid, item.get("status")))
        self.c.expect(n_jobs > 0 and done == set(range(n_jobs)),
                      "video %s: done set %s, expected jobs 0 to %d"
                      % (vid, sorted(done), n_jobs - 1))
        self.c.expect("finished_by" in item, "video %s has no finished_by"
                      % vid)
        lines = [ln for ln in self.logs().splitlines()
                 if vid in ln and "video ready" in ln]
        self.c.expect(len(lines) == 1, "video %s: %d 'video ready' lines "
                      "in the worker logs, expected 1: %s"
                      % (vid, len(lines), lines))

    def snapshot(self, vids):
        items = {vid: self.item(vid) for vid in vids}
        return (self.objects(HLS_BUCKET, ""),
                self.objects(VIDEOS_BUCKET, "jobs/"), items)

    # ---- the run ------------------------------------------------------

    def run(self):
        c = self.c
        bear = os.path.join(self.media, BEAR)
        long_clip = self.looped_bear(12)
        self.create_resources()
        self.s3.upload_file(long_clip, VIDEOS_BUCKET, KILL_NAME)
        self.s3.upload_file(bear, VIDEOS_BUCKET, PLAIN_NAME)
        self.s3.upload_file(bear, VIDEOS_BUCKET, TWICE_NAME)

        # A worker killed in the middle of a job.
        kill_vid = self.process(KILL_NAME)
        job, killed_at = self.kill_in_job(kill_vid)

        plain_vid = self.process(PLAIN_NAME)
        twice_vid = self.process(TWICE_NAME)
        self.duplicate_in_place(twice_vid)
        self.start_worker("first")
        self.start_worker("second")
        done_at = self.wait_ready([kill_vid, plain_vid, twice_vid],
                                  (kill_vid, job))
        if done_at is not None:
            c.note("job %d of video %s was done %.1f s after its worker was "
                   "killed" % (job, kill_vid, done_at - killed_at))
        c.expect(done_at is not None and
                 done_at - killed_at >= VISIBILITY_S - HEARTBEAT_S,
                 "job %d of video %s, held by the killed worker, was done "
                 "%.1f s after the kill, before its visibility timeout of "
                 "%d s could have run out"
                 % (job, kill_vid, (done_at or 0) - killed_at, VISIBILITY_S))
        self.wait_queue_empty()
        self.stop_workers_checked()

        encoded = sum(1 for ln in self.logs().splitlines()
                      if twice_vid in ln and "] done in " in ln)
        c.note("video %s: %d encodes for %s jobs sent twice" % (
            twice_vid, encoded, self.item(twice_vid)["n_jobs"]["N"]))

        sources = {kill_vid: long_clip, plain_vid: bear, twice_vid: bear}
        trees = {}
        for vid in (kill_vid, plain_vid, twice_vid):
            self.check_finished_once(vid)
            prefix = "%s/%s" % (vid, self.item(vid)["generation"]["N"])
            objects = self.check_hls_in_bucket(vid, prefix, sources[vid])
            trees[vid] = {k[len(prefix):]: v for k, v in objects.items()}
        c.expect(trees[plain_vid] == trees[twice_vid],
                 "video %s, whose jobs all ran twice, differs from video %s "
                 "of the same source: %s" % (
                     twice_vid, plain_vid,
                     differences(trees[plain_vid], trees[twice_vid])))

        # A duplicate of every job, after the videos are ready, taken by
        # two new workers.
        vids = [kill_vid, plain_vid, twice_vid]
        before = self.snapshot(vids)
        skipped_before = self.logs().count("skipped: generation")
        sent = sum(self.send_duplicates(vid) for vid in vids)
        self.start_worker("third")
        self.start_worker("fourth")
        self.wait_queue_empty()
        self.stop_workers_checked()
        skipped = self.logs().count("skipped: generation") - skipped_before
        c.expect(skipped == sent, "the workers skipped %d duplicate jobs, "
                 "expected %d" % (skipped, sent))
        after = self.snapshot(vids)
        for what, a, b in (("output objects", before[0], after[0]),
                           ("job results", before[1], after[1])):
            c.expect(a == b, "%s changed after duplicate jobs: %s"
                     % (what, differences(a, b)))
        for vid in vids:
            c.expect(before[2][vid] == after[2][vid], "the state item of "
                     "video %s changed after duplicate jobs: %r, then %r"
                     % (vid, before[2][vid], after[2][vid]))
            self.check_finished_once(vid)

    def stop_workers_checked(self):
        """Stops the running workers with SIGTERM; each must exit with 0."""
        for w in self.workers:
            p = w["proc"]
            if p.returncode is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            self.c.expect(rc == 0, "worker %s exited with %s after SIGTERM, "
                          "expected 0; log: %s" % (w["label"], rc, w_tail(w)))

    def cleanup(self):
        self.stop_workers()
        if os.environ.get("SN_KEEP_TMP"):
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def w_tail(w, n=2000):
    try:
        with open(w["log"], encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    return text if len(text) <= n else "..." + text[-n:]


def scratch_entries(folder):
    """Returns the top-level entries of a scratch folder in folder that
    holds at least one file, or an empty set."""
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    for name in names:
        top = os.path.join(folder, name)
        files = [f for _, _, fs in os.walk(top) for f in fs]
        if files:
            try:
                return set(os.listdir(top))
            except OSError:
                return set()
    return set()


def expected_scratch_entries(plan, job):
    """Returns what job of plan may put at the top of its scratch folder:
    its rung folders, "audio", or "poster.jpg"."""
    kind, _chunk, first_rung, n_rungs = plan["jobs"][job]
    if kind == 0:
        return {r["name"] for r in plan["rungs"][first_rung:
                                                 first_rung + n_rungs]}
    return {"audio"} if kind == 1 else {"poster.jpg"}


def differences(a, b, n=5):
    keys = sorted(set(a) | set(b))
    diff = [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]
    return "%d keys differ, first %s" % (len(diff), diff[:n])


def main(argv):
    if len(argv) != 1:
        print("usage: test_workers_aws.py SINATRA_BINARY", file=sys.stderr)
        return 2
    media = os.environ.get("SN_MEDIA_DIR") or os.path.join(
        os.path.dirname(REPO_ROOT), "shared", "media")
    if not os.environ.get("AWS_ENDPOINT_URL") or not os.path.isfile(
            os.path.join(media, BEAR)):
        print("test_workers_aws.py: AWS_ENDPOINT_URL or %s is missing: "
              "skipped" % os.path.join(media, BEAR), file=sys.stderr)
        return 77
    t = Test(os.path.abspath(argv[0]), media)
    started = time.monotonic()
    try:
        t.run()
    except H.CaseFailed:
        pass
    finally:
        t.cleanup()
    elapsed = time.monotonic() - started
    if t.c.failures:
        print("test_workers_aws.py: %d of %d checks failed (%.0f s)"
              % (len(t.c.failures), t.c.n_checks, elapsed))
        return 1
    print("test_workers_aws.py: %d checks passed (%.0f s)"
          % (t.c.n_checks, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
