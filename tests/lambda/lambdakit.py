"""Helpers for the Lambda tests that run on moto: the functions, the AWS
resources, the S3 and SQS triggers played by the test, and the checks of
the output in S3.

Settings, all from the environment:

  SN_LAMBDA_BINARY              the host-built sinatra-lambda; the tests
                                make a code folder for it with dev_code.sh
  SN_LAMBDA_CODE_ORCHESTRATOR   a folder or zip to run instead, e.g. the
  SN_LAMBDA_CODE_WORKER         unpacked target/lambda/aws_*.zip
  SN_LAMBDA_PREFIX              a command put in front of bootstrap (shell
                                words), e.g. a chroot or qemu wrapper; it
                                starts in the read-only host copy of the
                                code folder and gets bootstrap's path as
                                its last argument
  SN_LAMBDA_TASK_ROOT           LAMBDA_TASK_ROOT inside the wrapped
                                function's root (e.g. /var/task in a
                                chroot)
  SINATRA_VIDEOS_BUCKET, SINATRA_HLS_BUCKET, SINATRA_JOB_QUEUE_URL,
  SINATRA_STATE_TABLE, SINATRA_NOTIFY_QUEUE_URL
                                resources made elsewhere (a CloudFormation
                                stack on moto); when given they are used
                                as they are, else the test creates its own
  AWS_ENDPOINT_URL, AWS_REGION  moto's endpoint, from tests/aws/with_moto.sh
  SN_MEDIA_DIR                  the media corpus

Needs boto3.
"""

import json
import os
import posixpath
import shlex
import subprocess
import sys
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "media"))
sys.path.insert(0, os.path.join(TESTS, "server"))
sys.path.insert(0, HERE)

import hlscheck as H  # noqa: E402
import lambda_service as L  # noqa: E402
import servekit as K  # noqa: E402

# Without boto3 the cases can still be listed; require_env() skips them.
try:
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.config import Config
except ImportError:
    boto3 = None

    class S3UploadFailedError(Exception):
        pass

# Settings of both functions in every test. A short ladder and the
# fastest preset keep the tests short. Segment settings stay at their
# defaults, because the checks of tests/server/test_serve.py expect them.
FUNCTION_ENV = {
    "SINATRA_RUNGS": "236,360",
    "SINATRA_PRESET": "ultrafast",
}
MAX_RECEIVES = 2            # deliveries of a job before the dead-letter queue
VISIBILITY_S = 3            # the job queue's visibility timeout
BATCH_SIZE = 10             # the SQS trigger's batch size
WORKER_TIMEOUT = 120.0      # seconds
ORCHESTRATOR_TIMEOUT = 60.0


def require_env():
    """Raises CaseSkipped when boto3, moto's endpoint or the binary is
    missing."""
    if boto3 is None:
        raise H.CaseSkipped("boto3 is not installed")
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise H.CaseSkipped("AWS_ENDPOINT_URL is not set; run under "
                            "tests/aws/with_moto.sh")
    for handler in ("ORCHESTRATOR", "WORKER"):
        if not os.environ.get("SN_LAMBDA_CODE_" + handler) and \
                not os.environ.get("SN_LAMBDA_BINARY"):
            raise H.CaseSkipped("neither SN_LAMBDA_BINARY nor "
                                "SN_LAMBDA_CODE_%s is set" % handler)


def clients():
    kw = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"],
          "region_name": os.environ.get("AWS_REGION", "us-east-1"),
          "config": Config(retries={"max_attempts": 2})}
    aws = {name: boto3.client(name, **kw)
           for name in ("s3", "sqs", "dynamodb", "iam", "sts")}
    aws["_arns"] = {}           # queue URL -> ARN
    return aws


# ---------------------------------------------------------------------------
# Functions


def function_credentials(aws):
    """Returns (key id, secret, session token) for the functions, as Lambda
    gives a function its execution role's temporary credentials (always
    with a session token).

    Under tests/aws/with_moto.sh they come from a role assumed through
    moto's STS, which checks the token. tests/aws/with_verified_moto.py
    accepts only its own key pair, so there the caller's pair is used with
    a made-up token, which is then signed but not checked."""
    me = aws["sts"].get_caller_identity()["Arn"]
    role = "sinatra-lambda-test"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": me},
         "Action": "sts:AssumeRole"}]}
    try:
        arn = aws["iam"].create_role(
            RoleName=role,
            AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except aws["iam"].exceptions.EntityAlreadyExistsException:
        arn = aws["iam"].get_role(RoleName=role)["Role"]["Arn"]
    aws["iam"].put_role_policy(
        RoleName=role, PolicyName="allow-all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    cred = aws["sts"].assume_role(RoleArn=arn, RoleSessionName="sn-test")
    cred = cred["Credentials"]
    assumed = (cred["AccessKeyId"], cred["SecretAccessKey"],
               cred["SessionToken"])
    probe = boto3.client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=assumed[0], aws_secret_access_key=assumed[1],
        aws_session_token=assumed[2])
    try:
        probe.list_buckets()
        return assumed
    except probe.exceptions.ClientError:
        return (os.environ["AWS_ACCESS_KEY_ID"],
                os.environ["AWS_SECRET_ACCESS_KEY"], "sn-test-session-token")


def code_folder(handler, tmp):
    """Returns the code to run for handler: SN_LAMBDA_CODE_<HANDLER>, or a
    folder made by dev_code.sh for SN_LAMBDA_BINARY."""
    given = os.environ.get("SN_LAMBDA_CODE_" + handler.upper())
    if given:
        return given
    folder = os.path.join(tmp, "dev-code-" + handler)
    subprocess.run([os.path.join(HERE, "dev_code.sh"),
                    os.environ["SN_LAMBDA_BINARY"], folder, handler],
                   check=True)
    return folder


def make_function(handler, tmp, res, credentials, timeout, env=None):
    """Returns a lambda_service.Function for handler configured with the
    resources in res."""
    config = dict(FUNCTION_ENV)
    config.update({
        "SINATRA_VIDEOS_BUCKET": res.videos,
        "SINATRA_HLS_BUCKET": res.hls,
        "SINATRA_JOB_QUEUE_URL": res.jobs,
        "SINATRA_STATE_TABLE": res.table,
        "SINATRA_MAX_RECEIVES": str(res.max_receives),
    })
    config.update(env or {})
    name = "sinatra-" + handler
    return L.Function(
        code_folder(handler, tmp), handler, env=config, timeout=timeout,
        name=name, credentials=credentials,
        prefix=shlex.split(os.environ.get("SN_LAMBDA_PREFIX", "")),
        task_root=os.environ.get("SN_LAMBDA_TASK_ROOT") or None,
        workdir=os.path.join(tmp, name))


def log_problems(fn):
    """Returns a message about the lines of a function's output that are
    not one JSON object with a level and a message (CloudWatch Logs
    Insights reads one event per line), or None when there are none."""
    lines = fn.log_text().splitlines()
    bad = []
    for n, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "level" not in event or \
                "message" not in event:
            bad.append((n, line))
    if not bad:
        return None
    n, line = bad[0]
    return ("%s: %d of %d output lines are not a JSON object with level "
            "and message; the first is line %d: %r"
            % (fn.name, len(bad), len(lines), n, line[:200]))


# ---------------------------------------------------------------------------
# Resources


class Resources:
    """The buckets, queues and table of one test, given or created."""

    def __init__(self, aws, suffix):
        self.aws = aws
        env = os.environ
        self.given = bool(env.get("SINATRA_JOB_QUEUE_URL"))
        self.videos = env.get("SINATRA_VIDEOS_BUCKET") or \
            "sn-videos-" + suffix
        self.hls = env.get("SINATRA_HLS_BUCKET") or "sn-hls-" + suffix
        self.table = env.get("SINATRA_STATE_TABLE") or "sn-state-" + suffix
        self.jobs = env.get("SINATRA_JOB_QUEUE_URL")
        self.notify = env.get("SINATRA_NOTIFY_QUEUE_URL")
        self.suffix = suffix
        self.dlq = None
        self.max_receives = MAX_RECEIVES

    def create(self):
        s3, sqs = self.aws["s3"], self.aws["sqs"]
        for bucket in (self.videos, self.hls):
            if not self.bucket_exists(bucket):
                s3.create_bucket(Bucket=bucket)
        if not self.jobs:
            self.create_job_queue()
        self.read_redrive()
        if not self.notify:
            self.notify = sqs.create_queue(
                QueueName="sn-notify-" + self.suffix)["QueueUrl"]
        self.create_table()
        self.configure_notification()
        return self

    def bucket_exists(self, bucket):
        try:
            self.aws["s3"].head_bucket(Bucket=bucket)
            return True
        except self.aws["s3"].exceptions.ClientError:
            return False

    def queue_arn(self, url):
        return self.aws["sqs"].get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"]

    def create_job_queue(self):
        sqs = self.aws["sqs"]
        dlq = sqs.create_queue(QueueName="sn-jobs-dlq-" + self.suffix)
        policy = {"deadLetterTargetArn": self.queue_arn(dlq["QueueUrl"]),
                  "maxReceiveCount": MAX_RECEIVES}
        self.jobs = sqs.create_queue(
            QueueName="sn-jobs-" + self.suffix,
            Attributes={"VisibilityTimeout": str(VISIBILITY_S),
                        "RedrivePolicy": json.dumps(policy)})["QueueUrl"]

    def read_redrive(self):
        """Finds the dead-letter queue and maxReceiveCount of the job
        queue."""
        sqs = self.aws["sqs"]
        attrs = sqs.get_queue_attributes(
            QueueUrl=self.jobs, AttributeNames=["All"])["Attributes"]
        policy = json.loads(attrs.get("RedrivePolicy") or "{}")
        if not policy:
            raise RuntimeError("job queue %s has no RedrivePolicy"
                               % self.jobs)
        self.max_receives = int(policy["maxReceiveCount"])
        self.visibility_s = int(attrs.get("VisibilityTimeout", 30))
        name = policy["deadLetterTargetArn"].rsplit(":", 1)[1]
        self.dlq = sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def create_table(self):
        ddb = self.aws["dynamodb"]
        try:
            ddb.describe_table(TableName=self.table)
            return
        except ddb.exceptions.ResourceNotFoundException:
            pass
        # The key schema of src/state/state_dynamodb.c: one item per
        # video, hash key "id".
        ddb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id",
                                   "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")

    def configure_notification(self):
        """Sends ObjectCreated events under stream/ to the notification
        queue. Also done for a given bucket, because moto's CloudFormation
        does not apply a bucket's NotificationConfiguration."""
        self.aws["s3"].put_bucket_notification_configuration(
            Bucket=self.videos, NotificationConfiguration={
                "QueueConfigurations": [{
                    "QueueArn": self.queue_arn(self.notify),
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [
                        {"Name": "prefix", "Value": "stream/"}]}}}]})


def unique_suffix():
    return uuid.uuid4().hex[:8]


# ---------------------------------------------------------------------------
# The SQS trigger, played by the test


def lambda_record(message, queue_arn, region):
    """Turns one ReceiveMessage message into a record of Lambda's SQS
    event: lowerCamelCase names, string attributes."""
    attrs = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attrs[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attrs,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class Batch:
    """One batch handed to the worker, and what became of it."""

    def __init__(self, records):
        self.records = records
        self.result = None
        self.failed_ids = []        # reported in batchItemFailures
        self.deleted_ids = []
        self.whole_batch_failed = False
        self.reason = ""

    def ids(self):
        return [r["messageId"] for r in self.records]


def receive(aws, queue_url, max_messages=BATCH_SIZE, wait_s=1):
    return aws["sqs"].receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_s, AttributeNames=["All"],
        MessageAttributeNames=["All"]).get("Messages", [])


def failed_items(result, ids):
    """Reads a partial batch response. Returns (failed ids, None), or
    (None, reason) when the whole batch counts as failed: an invoke error,
    a body that is not JSON, or an itemIdentifier that is empty, missing
    or not a message of the batch."""
    if result.kind != "response":
        return None, "invoke failed: %s" % result.body[:300]
    if not result.body.strip():
        return [], None
    if isinstance(result.payload, bytes):
        return None, "response is not JSON: %r" % result.body[:200]
    payload = result.payload
    if payload is None or not isinstance(payload, dict):
        return [], None
    items = payload.get("batchItemFailures")
    if items is None:
        return [], None
    if not isinstance(items, list):
        return None, "batchItemFailures is not a list: %r" % items
    failed = []
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) \
            else None
        if not ident or ident not in ids:
            return None, "invalid itemIdentifier in %r" % item
        failed.append(ident)
    return failed, None


def run_batch(aws, fn, queue_url, messages, timeout=None):
    """Hands messages to fn as the SQS trigger does (with
    ReportBatchItemFailures): deletes every message not reported failed,
    leaves the failed ones, and leaves all of them when the whole batch
    failed. Returns the Batch."""
    if queue_url not in aws["_arns"]:
        aws["_arns"][queue_url] = aws["sqs"].get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"]
    queue_arn = aws["_arns"][queue_url]
    region = os.environ.get("AWS_REGION", "us-east-1")
    batch = Batch([lambda_record(m, queue_arn, region) for m in messages])
    batch.result = fn.invoke({"Records": batch.records}, timeout=timeout)
    failed, reason = failed_items(batch.result, batch.ids())
    if failed is None:
        batch.whole_batch_failed = True
        batch.reason = reason
        batch.failed_ids = batch.ids()
        return batch
    batch.failed_ids = failed
    for record in batch.records:
        if record["messageId"] not in failed:
            aws["sqs"].delete_message(QueueUrl=queue_url,
                                      ReceiptHandle=record["receiptHandle"])
            batch.deleted_ids.append(record["messageId"])
    return batch


def notification_events(aws, notify_url, wait_s=5, expect=1):
    """Receives S3 events from the notification queue until expect of them
    with Records arrived (or wait_s passed), deleting each message.
    Returns (events with Records, test events)."""
    events, tests = [], []
    deadline = time.monotonic() + wait_s
    while len(events) < expect and time.monotonic() < deadline:
        for m in receive(aws, notify_url, wait_s=1):
            body = json.loads(m["Body"])
            if body.get("Event") == "s3:TestEvent":
                tests.append(body)
            elif body.get("Records"):
                events.append(body)
            aws["sqs"].delete_message(QueueUrl=notify_url,
                                      ReceiptHandle=m["ReceiptHandle"])
    return events, tests


def video_item(aws, table, video):
    item = aws["dynamodb"].get_item(TableName=table, Key={"id": {"S": video}},
                                    ConsistentRead=True).get("Item") or {}
    out = {}
    for name, value in item.items():
        kind, v = next(iter(value.items()))
        out[name] = v
    return out


def drain_jobs(c, aws, fn, res, videos, timeout, batches=None, on_batch=None):
    """Polls the job queue and hands batches to the worker until every
    video in videos is ready or failed. Returns {video: item}."""
    deadline = time.monotonic() + timeout
    items = {}
    while True:
        items = {v: video_item(aws, res.table, v) for v in videos}
        if all(i.get("status") in ("ready", "failed")
               for i in items.values()):
            return items
        if time.monotonic() > deadline:
            c.require(False, "videos not finished within %d s: %s"
                      % (timeout, {v: (i.get("status"), i.get("error"))
                                   for v, i in items.items()}))
        messages = receive(aws, res.jobs)
        if not messages:
            continue
        batch = run_batch(aws, fn, res.jobs, messages)
        if batches is not None:
            batches.append(batch)
        if on_batch is not None:
            on_batch(batch)


# ---------------------------------------------------------------------------
# Output in S3


def s3_key_of(base_key, uri):
    """Resolves a playlist URI against the key of the playlist. Returns
    None for a URI with a scheme or host (which must not appear)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme or parts.netloc:
        return None
    path = urllib.parse.unquote(parts.path)
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_key),
                                             path))


def check_uris_resolve(c, aws, bucket, master_key, label):
    """Follows the master playlist and every playlist it names (media and
    I-frame) and requires every URI to name an object in the bucket.
    Returns the number of URIs checked."""
    s3 = aws["s3"]
    pending = [master_key]
    seen = set()
    while pending:
        key = pending.pop(0)
        if key in seen:
            continue
        seen.add(key)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.ClientError as e:
            c.expect(False, "%s: s3://%s/%s is named by a playlist but "
                     "cannot be read: %s" % (label, bucket, key, e))
            continue
        if not key.endswith(".m3u8"):
            continue
        for uri in K.playlist_uris(body.decode("utf-8", "replace")):
            target = s3_key_of(key, uri)
            if not c.expect(target is not None, "%s: %s names %r, which is "
                            "not a relative URI" % (label, key, uri)):
                continue
            pending.append(target)
    return len(seen)


def download_prefix(aws, bucket, prefix, dest):
    """Copies every object under prefix into dest, keeping the relative
    paths. Returns the number of objects."""
    s3 = aws["s3"]
    n = 0
    # NOTE: the whole bucket is listed and filtered here, because moto
    # 5.2.1 with signature checks rejects a prefix= query with a '/'
    # (it checks the signature over the decoded query).
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if not obj["Key"].startswith(prefix):
                continue
            rel = obj["Key"][len(prefix):]
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(bucket, obj["Key"], path)
            n += 1
    return n


class CheckCtx:
    """What tests/server/test_serve.py's check_output() needs of a case."""

    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.n_probes = 0

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p


def check_ready_output(c, aws, res, video, item, src_path, tmp, label):
    """Checks a ready video's output in S3 with the checks of the local
    output (tests/server/test_serve.py check_output) and that every URI in
    its playlists resolves in the HLS bucket."""
    import test_serve as S

    gen = item.get("generation")
    c.require(gen is not None, "%s: item %s has no generation" % (label, item))
    prefix = "%s/%s/" % (video, gen)
    n = check_uris_resolve(c, aws, res.hls, prefix + "master.m3u8", label)
    c.note("%s: %d playlists and files named by the playlists resolve"
           % (label, n))
    out = os.path.join(tmp, "hls-" + video)
    count = download_prefix(aws, res.hls, prefix, out)
    c.require(count > 0, "%s: nothing under s3://%s/%s" % (label, res.hls,
                                                          prefix))
    S.check_output(CheckCtx(c, tmp), out, src_path, label)


# ---------------------------------------------------------------------------
# Running a case


def run_case(cases, argv, usage):
    """Runs the case named in argv (or lists them for --list) as
    fn(checks, tmp). Returns the exit status: 0 pass, 1 fail, 77 skip."""
    import tempfile
    import traceback

    if argv == ["--list"]:
        for fn in cases:
            print(fn.__name__)
        return 0
    by_name = {fn.__name__: fn for fn in cases}
    if len(argv) != 1 or argv[0] not in by_name:
        print("usage: %s --list | CASE" % usage, file=sys.stderr)
        return 2
    fn = by_name[argv[0]]
    checks = H.Checks()
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="sn-lambda-test-")
    try:
        fn(checks, tmp)
    except H.CaseSkipped as e:
        print("SKIP: %s" % e)
        return 77
    except H.CaseFailed as e:
        print("stopped: %s" % str(e).splitlines()[0][:300])
    except Exception:
        traceback.print_exc()
        checks.failures.append("test raised an exception")
    finally:
        if os.environ.get("SN_KEEP_TMP"):
            print("kept %s" % tmp)
        else:
            subprocess.run(["chmod", "-R", "u+w", tmp])
            subprocess.run(["rm", "-rf", tmp])
    dt = time.monotonic() - t0
    if checks.failures:
        print("%s: FAILED %d of %d checks (%.1f s)"
              % (fn.__name__, len(checks.failures), checks.n_checks, dt))
        return 1
    print("%s: passed %d checks (%.1f s)" % (fn.__name__, checks.n_checks,
                                             dt))
    return 0
