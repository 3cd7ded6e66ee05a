#!/usr/bin/env python3
"""A long-running `sinatra worker --backend aws` on temporary credentials
from a container credentials endpoint, refreshed before they expire.

    usage: tests/aws/with_moto.sh tests/aws/test_credentials_refresh.py \\
               SINATRA_BINARY

Runs under with_moto.sh, which checks every signature. The test starts
two servers of its own on 127.0.0.1:

- a container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI).
  It requires the AWS_CONTAINER_AUTHORIZATION_TOKEN value in the
  Authorization header, and responds to each GET with a new session from
  moto's STS AssumeRole whose Expiration is 305 s ahead. With
  SN_AWS_REFRESH_AHEAD at 300 s, each of the worker's providers (every S3,
  SQS and DynamoDB client has one) fetches new keys about every 5 s;
- a proxy in front of moto, which the worker reaches as AWS_ENDPOINT_URL.
  It records the access key id of each request's Authorization header and
  the status moto returned.

The worker runs without the test user's keys: its only source is the
endpoint. Each case uploads a clip from the media corpus (SN_MEDIA_DIR),
plans it with `sinatra process s3://…` under the user's keys, and runs
one worker with two threads until the video is ready in DynamoDB.

1. rotation: the endpoint issued at least 3 key sets over at least 10 s,
   and every key set issued before the video was ready signed a request.
   No key set signed a request later than its refresh time plus a margin,
   moto rejected no request for its credentials or signature, and the
   worker logged no line about credentials.
2. failing refresh: the endpoint returns HTTP 500 from the first key set's
   refresh time on. The worker keeps signing with that key set, which is
   valid for 305 s, finishes the video, and logs the failed refresh once.

Exit status: 0 pass, 1 fail, 77 skipped (no endpoint or corpus).
"""

import datetime
import http.client
import http.server
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "media"))

import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402

import hlscheck as H  # noqa: E402

# 1920x1080, 10 s, H.264 + AAC: the corpus clip with the most encoding work
# for its ladder among the well-formed ones. `sinatra process` took 12.5 s
# on it on a 2-core machine, and the worker over moto about 14 s.
CLIP = "axm-edit_list_positive_shift.mp4"
VIDEOS_BUCKET, HLS_BUCKET = "sinatra-videos", "sinatra-hls"
TABLE, QUEUE = "sinatra-video-state", "sinatra-jobs"
ROLE = "sinatra-worker"

REFRESH_AHEAD_S = 300                # SN_AWS_REFRESH_AHEAD in credentials.h
LIFETIME_S = REFRESH_AHEAD_S + 5     # each key set's Expiration, from now
# A request may reach the proxy a little after it was signed, and a
# provider compares whole seconds: the margin covers both.
# Lines about a failed refresh: one per credentials provider of the
# worker, which has one per backend and worker thread.
MAX_REFRESH_FAILURE_LINES = 10
AGE_MARGIN_S = 2
READY_TIMEOUT_S = 120
# Error codes with which S3, SQS, DynamoDB and STS reject credentials or a
# signature. DynamoDB sends them with status 400.
CREDENTIALS_ERRORS = {
    "AccessDenied", "AccessDeniedException", "ExpiredToken",
    "ExpiredTokenException", "IncompleteSignature", "InvalidAccessKeyId",
    "InvalidClientTokenId", "InvalidSignatureException", "InvalidToken",
    "MissingAuthenticationToken", "SignatureDoesNotMatch",
    "UnrecognizedClientException"}
POOL_SIZE = 3


def iso8601(unix_time):
    return datetime.datetime.fromtimestamp(
        int(unix_time), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_id_of(authorization):
    """Returns the access key id of a SigV4 Authorization header, or None."""
    m = re.search(r"Credential=([^/,\s]+)/", authorization or "")
    return m.group(1) if m else None


def error_code(body):
    """Returns the AWS error code in an XML or JSON error body, or None."""
    text = body.decode("utf-8", errors="replace")
    m = re.search(r"<Code>([^<]+)</Code>", text)
    if m:
        return m.group(1)
    m = re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', text)
    return m.group(1) if m else None


def rejected_by_moto(r):
    """Returns whether moto rejected the recorded request r for its
    credentials or signature. moto 5.2.1 computes the canonical request
    from a decoded and requoted URL (see with_verified_moto.py), so it
    returns SignatureDoesNotMatch to correctly signed requests whose
    target contains %XX escapes, such as ListObjectsV2 with
    prefix=ID%2F. Those are left out: the other requests prove that the
    keys and signatures were valid."""
    status, code, target = r[4], r[5], r[3]
    if status not in (401, 403) and code not in CREDENTIALS_ERRORS:
        return False
    return not (code == "SignatureDoesNotMatch" and "%" in target)


class CredentialsEndpoint:
    """The container credentials endpoint. A background thread keeps
    POOL_SIZE sessions from AssumeRole ready, because moto serves one
    request at a time and the worker's provider gives up after 2 s. A
    session's Expiration is set when it is handed out.

    In the "rotate" mode every GET gets a new session. In the "fail" mode
    every GET gets the first session until that session's refresh time
    (Expiration minus REFRESH_AHEAD_S), so that each provider's first fetch
    succeeds, and 500 from then on."""

    def __init__(self, sts, role_arn, token, mode):
        self.sts = sts
        self.role_arn = role_arn
        self.token = token
        self.mode = mode
        self.lock = threading.Lock()
        self.issued = []             # (unix time, key id), in order
        self.first = None            # the reply body handed out first
        self.first_refresh_at = None
        self.n_500 = 0
        self.n_unauthorized = 0
        self.n_pool_empty = 0
        self.assume_error = None
        self.pool = queue.Queue(maxsize=POOL_SIZE)
        self.stopping = threading.Event()
        self.filler = threading.Thread(target=self.fill_pool, daemon=True)
        self.filler.start()

        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                endpoint.respond(self)

            def log_message(self, fmt, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.url = "http://127.0.0.1:%d/creds" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fill_pool(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                c = self.sts.assume_role(RoleArn=self.role_arn,
                                         RoleSessionName="worker-%d" % n)
            except (botocore.exceptions.BotoCoreError,
                    botocore.exceptions.ClientError) as e:
                self.assume_error = e
                return
            c = c["Credentials"]
            while not self.stopping.is_set():
                try:
                    self.pool.put(c, timeout=0.2)
                    break
                except queue.Full:
                    pass

    def respond(self, request):
        if request.path != "/creds":
            self.reply(request, 404, {"Message": "no such path"})
            return
        if request.headers.get("Authorization") != self.token:
            with self.lock:
                self.n_unauthorized += 1
            self.reply(request, 401, {"Message": "wrong Authorization"})
            return

        with self.lock:
            status, body = self.next_body()
        self.reply(request, status, body)

    def wait_until_ready(self, timeout=30):
        """Waits until the pool is full, so that no GET has to wait."""
        deadline = time.monotonic() + timeout
        while not self.pool.full() and time.monotonic() < deadline:
            if self.assume_error is not None:
                break
            time.sleep(0.1)
        return self.pool.full()

    def next_body(self):
        """Picks the reply to one GET. Called with self.lock held, so that
        concurrent first fetches in the "fail" mode get the same session.
        The pool is full when the worker starts and refills in a fraction
        of the 5 s between refreshes, so the wait here is short."""
        now = time.time()
        if self.mode == "fail" and self.first is not None:
            if now < self.first_refresh_at:
                return 200, self.first
            self.n_500 += 1
            return 500, {"Message": "refresh turned off by the test"}

        try:
            c = self.pool.get(timeout=1)
        except queue.Empty:
            self.n_pool_empty += 1
            return 503, {"Message": "no session ready"}
        expires = int(now) + LIFETIME_S
        body = {"AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"],
                "Expiration": iso8601(expires)}
        self.issued.append((now, c["AccessKeyId"]))
        if self.first is None:
            self.first = body
            self.first_refresh_at = expires - REFRESH_AHEAD_S
        return 200, body

    @staticmethod
    def reply(request, status, body):
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def close(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.filler.join(timeout=10)


class RecordingProxy:
    """Forwards each request to moto unchanged, Host header included, so
    that the signature still matches, and records (arrival time, access
    key id, method, request target, status, error code)."""

    HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection",
                  "transfer-encoding", "te", "trailer", "upgrade"}

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.target_host, self.target_port = u.hostname, u.port
        self.lock = threading.Lock()
        self.requests = []

        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                proxy.forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

            def log_message(self, fmt, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def forward(self, request):
        arrived = time.time()
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in self.HOP_BY_HOP}

        conn = http.client.HTTPConnection(self.target_host, self.target_port,
                                          timeout=60)
        try:
            conn.request(request.command, request.path, body, headers)
            r = conn.getresponse()
            status, reply_headers, data = r.status, r.getheaders(), r.read()
        except (OSError, http.client.HTTPException) as e:
            status, data = 502, ("proxy: %s" % e).encode()
            reply_headers = []
        finally:
            conn.close()

        with self.lock:
            self.requests.append(
                (arrived, key_id_of(request.headers.get("Authorization")),
                 request.command, request.path, status,
                 error_code(data) if status >= 400 else None))

        request.send_response_only(status)
        for name, value in reply_headers:
            lower = name.lower()
            if lower in self.HOP_BY_HOP or lower == "content-length":
                continue
            request.send_header(name, value)
        if request.command == "HEAD":
            request.send_header("Content-Length",
                                dict((k.lower(), v) for k, v in reply_headers)
                                .get("content-length", "0"))
            request.end_headers()
            return
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Test:
    def __init__(self, binary, media):
        self.binary = binary
        self.media = media
        self.c = H.Checks()
        self.tmp = tempfile.mkdtemp(prefix="sn-credentials-refresh-")
        self.moto = os.environ["AWS_ENDPOINT_URL"]
        self.region = os.environ["AWS_REGION"]
        kw = dict(endpoint_url=self.moto, region_name=self.region)
        self.s3 = boto3.client("s3", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ddb = boto3.client("dynamodb", **kw)
        self.iam = boto3.client("iam", **kw)
        self.sts = boto3.client("sts", **kw)
        self.queue_url = None
        self.role_arn = None
        self.servers = []
        self.worker = None

    # ---- setup --------------------------------------------------------

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

        # moto checks that the trust policy names the caller's ARN, and
        # authorizes a role session with the role's own policies.
        user_arn = self.sts.get_caller_identity()["Arn"]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": user_arn}}]}
        allow_all = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "*", "Resource": "*"}]}
        role = self.iam.create_role(RoleName=ROLE,
                                    AssumeRolePolicyDocument=json.dumps(trust))
        self.role_arn = role["Role"]["Arn"]
        self.iam.put_role_policy(RoleName=ROLE, PolicyName="allow-all",
                                 PolicyDocument=json.dumps(allow_all))

    def plan(self, key):
        """Uploads the clip as key, runs `sinatra process s3://…` with the
        test user's keys and returns the video id."""
        self.s3.upload_file(os.path.join(self.media, CLIP), VIDEOS_BUCKET,
                            key)
        url = "s3://%s/%s" % (VIDEOS_BUCKET, key)
        env = dict(os.environ, SINATRA_JOB_QUEUE_URL=self.queue_url)
        r = subprocess.run([self.binary, "process", url], env=env,
                           capture_output=True, text=True, timeout=120)
        self.c.require(r.returncode == 0, "`sinatra process %s` exited with "
                       "%d: %s" % (url, r.returncode, r.stderr.strip()))
        m = re.search(r"video ([0-9a-f]+) planned", r.stdout + r.stderr)
        self.c.require(m is not None, "`sinatra process %s` printed no video "
                       "id: %r" % (url, r.stdout + r.stderr))
        return m.group(1)

    def worker_env(self, endpoint, proxy):
        """The worker's environment: no AWS_* variable of the test's, so no
        static keys, and shared files that do not exist, so that the
        container endpoint is the only source of credentials."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        queue_url = urllib.parse.urlsplit(self.queue_url)
        env.update({
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": endpoint.token,
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "none"),
            "AWS_CONFIG_FILE": os.path.join(self.tmp, "none"),
            # SQS requests go to the queue URL's host: the proxy's.
            "SINATRA_JOB_QUEUE_URL": queue_url._replace(
                netloc=urllib.parse.urlsplit(proxy.url).netloc).geturl(),
        })
        return env

    # ---- one run ------------------------------------------------------

    def run_case(self, name, mode):
        """Plans the clip, runs a worker on endpoint credentials in the
        given mode until the video is ready, and returns what the servers
        and the worker recorded."""
        video = self.plan("stream/%s.mp4" % name)
        endpoint = CredentialsEndpoint(self.sts, self.role_arn,
                                       "Bearer " + secrets.token_hex(16),
                                       mode)
        proxy = RecordingProxy(self.moto)
        self.servers += [endpoint, proxy]
        self.c.require(endpoint.wait_until_ready(), "%s: no role sessions "
                       "from AssumeRole: %r" % (name, endpoint.assume_error))
        log = os.path.join(self.tmp, name + ".log")

        started = time.time()
        with open(log, "wb") as fh:
            self.worker = subprocess.Popen(
                [self.binary, "worker", "--backend", "aws", "--workers", "2"],
                env=self.worker_env(endpoint, proxy), stdout=fh, stderr=fh,
                stdin=subprocess.DEVNULL, start_new_session=True)
        status, ready_at = self.wait_for_video(video)
        exit_code = self.stop_worker()

        with open(log, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        endpoint.close()
        proxy.close()
        print("%s: video %s %s after %.1f s; %d key sets issued, %d "
              "requests, %d answered with HTTP 500" % (
                  name, video, status, ready_at - started,
                  len(endpoint.issued), len(proxy.requests), endpoint.n_500),
              flush=True)

        tail = text[-3000:]
        self.c.expect(status == "ready", "%s: video %s ended as %r, expected "
                      "ready; worker log tail:\n%s" % (name, video, status,
                                                       tail))
        self.c.expect(exit_code == 0, "%s: the worker exited with %r after "
                      "SIGTERM, expected 0" % (name, exit_code))
        self.c.expect(endpoint.n_unauthorized == 0, "%s: %d credentials "
                      "requests without the expected Authorization header"
                      % (name, endpoint.n_unauthorized))
        self.c.expect(endpoint.n_pool_empty == 0, "%s: %d credentials "
                      "requests found no session ready; AssumeRole failed "
                      "with %r" % (name, endpoint.n_pool_empty,
                                   endpoint.assume_error))
        unsigned = [r for r in proxy.requests if r[1] is None]
        self.c.expect(not unsigned, "%s: %d requests carried no SigV4 "
                      "Authorization header, first %r"
                      % (name, len(unsigned), unsigned[:1]))
        rejected = [r for r in proxy.requests if rejected_by_moto(r)]
        self.c.expect(not rejected, "%s: moto rejected %d requests, first %r"
                      % (name, len(rejected), rejected[:3]))
        return {"endpoint": endpoint, "proxy": proxy, "log": text,
                "started": started, "ready_at": ready_at}

    def wait_for_video(self, video):
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = None
        while time.monotonic() < deadline:
            item = self.ddb.get_item(TableName=TABLE,
                                     Key={"id": {"S": video}},
                                     ConsistentRead=True).get("Item", {})
            status = item.get("status", {}).get("S")
            if status in ("ready", "failed") or self.worker.poll() is not None:
                break
            time.sleep(0.5)
        return status, time.time()

    def stop_worker(self):
        p, self.worker = self.worker, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return "killed after 30 s"
        return p.returncode

    # ---- the cases ----------------------------------------------------

    def rotation(self):
        run = self.run_case("rotation", "rotate")
        issued = run["endpoint"].issued
        requests = run["proxy"].requests
        issue_time = dict((k, t) for t, k in issued)

        self.c.expect(len(issued) >= 3, "rotation: the endpoint issued %d "
                      "key sets, expected at least 3" % len(issued))
        span = issued[-1][0] - issued[0][0] if issued else 0
        self.c.expect(span >= 2 * (LIFETIME_S - REFRESH_AHEAD_S),
                      "rotation: key sets were issued over %.1f s only, "
                      "while the video took %.1f s: the worker did not "
                      "refresh, or the clip finished before two refreshes "
                      "were due" % (span, run["ready_at"] - run["started"]))

        used = {r[1] for r in requests}
        foreign = used - set(issue_time) - {None}
        self.c.expect(not foreign, "rotation: requests were signed with key "
                      "ids the endpoint never issued: %s" % sorted(foreign))
        before_ready = [k for t, k in issued if t < run["ready_at"]]
        unused = [k for k in before_ready if k not in used]
        self.c.expect(not unused, "rotation: %d of the %d key sets issued "
                      "before the video was ready signed no request"
                      % (len(unused), len(before_ready)))
        self.c.expect(len(used - {None}) >= 3, "rotation: requests were "
                      "signed with %d key sets, expected at least 3"
                      % len(used - {None}))

        max_age = LIFETIME_S - REFRESH_AHEAD_S + AGE_MARGIN_S
        stale = [(r[0] - issue_time[r[1]], r[2], r[3]) for r in requests
                 if r[1] in issue_time and r[0] - issue_time[r[1]] > max_age]
        self.c.expect(not stale, "rotation: %d requests were signed with a "
                      "key set older than %d s (refresh time plus %d s), "
                      "first (age, method, path) %r" % (
                          len(stale), max_age, AGE_MARGIN_S, stale[:3]))

        errors = [line for line in run["log"].splitlines()
                  if "credentials" in line.lower()]
        self.c.expect(not errors, "rotation: the worker logged %d lines "
                      "about credentials, first %r" % (len(errors),
                                                       errors[:3]))

    def failing_refresh(self):
        run = self.run_case("failing-refresh", "fail")
        endpoint = run["endpoint"]
        first_key = endpoint.first["AccessKeyId"] if endpoint.first else None

        self.c.expect(len(endpoint.issued) == 1, "failing refresh: the "
                      "endpoint issued %d key sets, expected 1"
                      % len(endpoint.issued))
        self.c.expect(endpoint.n_500 >= 1, "failing refresh: no refresh was "
                      "attempted after the first key set's refresh time")
        used = {r[1] for r in run["proxy"].requests}
        self.c.expect(used == {first_key}, "failing refresh: requests were "
                      "signed with %s, expected only the first key set %s"
                      % (sorted(map(str, used)), first_key))
        late = [r for r in run["proxy"].requests
                if r[0] >= endpoint.first_refresh_at + AGE_MARGIN_S]
        self.c.expect(late, "failing refresh: no request was signed after "
                      "the first key set's refresh time; the clip needs "
                      "more work")

        # The failure is logged once per key set, not on every retry. Each
        # backend of the worker (two buckets, queue, table) and each worker
        # thread may hold its own credentials provider, so a few lines are
        # expected, and far fewer than the failed fetches.
        failures = [line for line in run["log"].splitlines()
                    if "refreshing AWS credentials failed" in line]
        self.c.expect(len(failures) >= 1, "failing refresh: the endpoint "
                      "returned HTTP 500 %d times and the worker logged no "
                      "failed refresh" % endpoint.n_500)
        self.c.expect(len(failures) <= MAX_REFRESH_FAILURE_LINES,
                      "failing refresh: %d lines about a failed refresh for "
                      "%d failed fetches, expected at most %d"
                      % (len(failures), endpoint.n_500,
                         MAX_REFRESH_FAILURE_LINES))

    def run(self):
        self.create_resources()
        for case in (self.rotation, self.failing_refresh):
            try:
                case()
            except H.CaseFailed:
                pass

    def cleanup(self):
        self.stop_worker()
        for server in self.servers:
            try:
                server.close()
            except OSError:
                pass
        subprocess.run(["rm", "-rf", self.tmp], check=False)


def main(argv):
    if len(argv) != 1:
        print("usage: test_credentials_refresh.py SINATRA_BINARY",
              file=sys.stderr)
        return 2
    media = os.environ.get("SN_MEDIA_DIR") or os.path.join(
        os.path.dirname(REPO_ROOT), "shared", "media")
    if not os.environ.get("AWS_ENDPOINT_URL") or not os.path.isfile(
            os.path.join(media, CLIP)):
        print("test_credentials_refresh.py: AWS_ENDPOINT_URL or %s is "
              "missing: skipped" % os.path.join(media, CLIP), file=sys.stderr)
        return 77
    t = Test(os.path.abspath(argv[0]), media)
    started = time.monotonic()
    try:
        t.run()
    finally:
        t.cleanup()
    elapsed = time.monotonic() - started
    if t.c.failures:
        print("test_credentials_refresh.py: %d of %d checks failed (%.0f s)"
              % (len(t.c.failures), t.c.n_checks, elapsed))
        return 1
    print("test_credentials_refresh.py: %d checks passed (%.0f s)"
          % (t.c.n_checks, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
