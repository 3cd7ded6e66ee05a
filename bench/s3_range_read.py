#!/usr/bin/env python3
"""Measures what one chunk job reads from S3, against downloading the
whole source with `aws s3 cp`, on moto on loopback.

    bench/s3_range_read.py BINARY [--source FILE] [--runs N]

Without --source, a 60 s 1080p30 testsrc2 + 440 Hz sine clip is made
with ffmpeg in /tmp/sn-bench-s3/src.mp4 (x264 ultrafast at a constant 13
Mbit/s with a keyframe every 10 s, about 100 MB), once.

The measurement runs under tests/aws/with_verified_moto.py, whose request
log gives each request's arrival time, its time to a ready response and
its response size. Steps:

1. The clip is uploaded as "stream/bench source.mp4" and `sinatra
   process s3://…` plans it; its jobs are taken off the queue.
2. For each run, one video job of the lowest rung (a different chunk
   each run, from the middle of the video) is sent alone, and one
   `sinatra worker --backend aws` process runs it. From the log: the
   worker's GETs of the source (count, bytes, summed server time) and
   every request it made from its start to the DeleteMessage of the job.
3. `aws s3 cp` downloads the whole object to /tmp, N times: wall time,
   and the summed server time of its GETs.

Prints a table per run and the medians. Server times include the check
of each signature by botocore in the harness, which is the same for
both sides.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
HARNESS = os.path.join(REPO_ROOT, "tests", "aws", "with_verified_moto.py")
DEFAULT_SOURCE = "/tmp/sn-bench-s3/src.mp4"
KEY = "stream/bench source.mp4"
VIDEOS, HLS, TABLE, QUEUE = ("sinatra-videos", "sinatra-hls",
                             "sinatra-video-state", "sinatra-jobs")


def make_source(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cmd = ["ffmpeg", "-v", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", "60", "-c:v", "libx264", "-preset", "ultrafast",
           "-g", "300", "-keyint_min", "300", "-sc_threshold", "0",
           "-b:v", "13M", "-maxrate", "13M", "-bufsize", "26M",
           "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "128k",
           "-movflags", "+faststart", path]
    print("making %s: %s" % (path, " ".join(cmd)), flush=True)
    subprocess.run(cmd, check=True)


def outer(args):
    """Makes the source if needed and runs the inner part under the
    harness with a request log."""
    source = args.source or DEFAULT_SOURCE
    if not os.path.isfile(source):
        make_source(source)
    log = tempfile.NamedTemporaryFile(prefix="sn-bench-s3-", suffix=".log",
                                      delete=False).name
    env = dict(os.environ, SN_VERIFIED_MOTO_LOG=log)
    cmd = [sys.executable, HARNESS, sys.executable, os.path.abspath(__file__),
           "--inner", "--log", log, "--source", source, "--runs",
           str(args.runs), os.path.abspath(args.binary)]
    rc = subprocess.run(cmd, env=env).returncode
    os.unlink(log)
    return rc


class Log:
    """The harness's request log: (start, seconds, method, target,
    x-amz-target, status, bytes) per line."""

    def __init__(self, path):
        self.path = path

    def since(self, t0, t1=None):
        out = []
        with open(self.path) as fh:
            for line in fh:
                f = line.split()
                start = float(f[0])
                if start >= t0 and (t1 is None or start <= t1):
                    out.append((start, float(f[1]), f[2], f[3], f[4],
                                int(f[5]), int(f[6])))
        return out


def source_gets(entries, source_path):
    gets = [e for e in entries if e[2] == "GET" and
            e[3].split("?")[0] == source_path]
    return len(gets), sum(e[6] for e in gets), sum(e[1] for e in gets)


def inner(args):
    import boto3

    kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"],
              region_name=os.environ["AWS_REGION"])
    s3, sqs, ddb = (boto3.client(n, **kw) for n in ("s3", "sqs",
                                                     "dynamodb"))
    log = Log(args.log)
    for b in (VIDEOS, HLS):
        s3.create_bucket(Bucket=b)
    queue = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    ddb.create_table(TableName=TABLE,
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id",
                                            "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    s3.upload_file(args.source, VIDEOS, KEY)
    size = os.path.getsize(args.source)
    source_path = "/%s/%s" % (VIDEOS, urllib.parse.quote(KEY, safe="/"))
    env = dict(os.environ, SINATRA_JOB_QUEUE_URL=queue)

    t0 = time.time()
    r = subprocess.run([args.binary, "process", "s3://%s/%s" % (VIDEOS, KEY)],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("sinatra process failed: %s" % r.stderr)
    n, nbytes, secs = source_gets(log.since(t0), source_path)
    print("orchestrator probe: %d GETs, %d bytes of %d, %.3f s server time"
          % (n, nbytes, size, secs))

    vid = r.stdout.split("video ")[1].split()[0]
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": vid}},
                        ConsistentRead=True)["Item"]
    generation = int(item["generation"]["N"])
    plan = json.loads(s3.get_object(
        Bucket=VIDEOS, Key="jobs/%s/%d/plan.json" % (vid, generation))[
            "Body"].read())
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    lowest = min(range(len(plan["rungs"])),
                 key=lambda i: plan["rungs"][i]["height"])
    chunk_jobs = [j for j, (kind, chunk, first, n_rungs)
                  in enumerate(plan["jobs"])
                  if kind == 0 and first == lowest]
    middle = len(chunk_jobs) // 2 - args.runs // 2
    picked = chunk_jobs[max(0, middle):max(0, middle) + args.runs]

    print("\nrung %s, %d chunk jobs per rung; object %d bytes"
          % (plan["rungs"][lowest]["name"], len(chunk_jobs), size))
    print("%-5s %-6s %-5s %-10s %-8s %-9s %s" % (
        "job", "chunk", "GETs", "bytes", "read s", "requests", "by kind"))
    reads, requests, read_bytes = [], [], []
    for job in picked:
        body = json.dumps({"video": vid, "generation": generation,
                           "job": job}, separators=(",", ":"))
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        t0 = time.time()
        w = subprocess.Popen([args.binary, "worker", "--backend", "aws"],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # Waits for the worker's DeleteMessage in the log, so that no
        # request of this script falls among the worker's.
        deadline = time.time() + 600
        while time.time() < deadline and not any(
                e[4] == "AmazonSQS.DeleteMessage" for e in log.since(t0)):
            time.sleep(0.2)
        w.send_signal(signal.SIGTERM)
        w.wait()
        entries = worker_requests(log.since(t0))
        done = ddb.get_item(TableName=TABLE, Key={"id": {"S": vid}},
                            ConsistentRead=True)["Item"].get(
                                "done", {}).get("NS", [])
        if str(job) not in done:
            sys.exit("job %d did not finish" % job)
        n, nbytes, secs = source_gets(entries, source_path)
        kinds = {}
        for e in entries:
            kind = e[4].split(".")[-1] if e[4] != "-" else "S3 " + e[2]
            kinds[kind] = kinds.get(kind, 0) + 1
        chunk = plan["jobs"][job][1]
        print("%-5d %-6d %-5d %-10d %-8.3f %-9d %s" % (
            job, chunk, n, nbytes, secs, len(entries),
            ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
        reads.append(secs)
        requests.append(len(entries))
        read_bytes.append(nbytes)

    print("\naws s3 cp of the whole object:")
    walls, servers = [], []
    dest = tempfile.mkdtemp(prefix="sn-bench-s3-cp-")
    for i in range(args.runs):
        t0 = time.time()
        subprocess.run(["aws", "s3", "cp", "--only-show-errors",
                        "--endpoint-url", os.environ["AWS_ENDPOINT_URL"],
                        "s3://%s/%s" % (VIDEOS, KEY),
                        os.path.join(dest, "full.mp4")], check=True)
        wall = time.time() - t0
        n, nbytes, secs = source_gets(log.since(t0), source_path)
        print("run %d: %.3f s wall, %d GETs, %d bytes, %.3f s server time"
              % (i + 1, wall, n, nbytes, secs))
        walls.append(wall)
        servers.append(secs)
        os.unlink(os.path.join(dest, "full.mp4"))
    os.rmdir(dest)

    # moto's own cost of one ranged GET on this object, for reading the
    # times above: it loads the whole value for every GET.
    one = []
    for _ in range(5):
        t0 = time.time()
        s3.get_object(Bucket=VIDEOS, Key=KEY, Range="bytes=0-0")["Body"].read()
        one.append(time.time() - t0)
    med = statistics.median
    print("\none 1-byte ranged GET of the object with boto3: %.3f s "
          "(median of 5)" % med(one))
    print("\nmedians over %d runs:" % args.runs)
    print("  chunk job: %.3f s server time for %d bytes (%.1f%% of the "
          "object), %d requests" % (med(reads), med(read_bytes),
                                    100.0 * med(read_bytes) / size,
                                    med(requests)))
    print("  aws s3 cp: %.3f s wall, %.3f s server time"
          % (med(walls), med(servers)))
    print("  ratio, server time (whole / chunk): %.1f"
          % (med(servers) / med(reads)))
    print("  ratio, aws s3 cp wall / chunk read server time: %.1f"
          % (med(walls) / med(reads)))
    return 0


def worker_requests(entries):
    """Returns the requests of the worker: from its first ReceiveMessage
    to the DeleteMessage of its job, both included."""
    start = next((i for i, e in enumerate(entries)
                  if e[4] == "AmazonSQS.ReceiveMessage"), None)
    end = next((i for i, e in enumerate(entries)
                if e[4] == "AmazonSQS.DeleteMessage"), None)
    if start is None or end is None:
        return []
    return entries[start:end + 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary")
    p.add_argument("--source")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--inner", action="store_true")
    p.add_argument("--log")
    args = p.parse_args()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
