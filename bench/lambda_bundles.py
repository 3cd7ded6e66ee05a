#!/usr/bin/env python3
"""Measures the Lambda zips: sizes, cold start, per-invoke overhead, and the
worker's CPU time for the default ladder over 1080p clips, from which it
estimates the Lambda cost per minute of source.

    tests/aws/with_moto.sh python3 bench/lambda_bundles.py \\
        --zips x86_64=DIR [--zips arm64=DIR] [--runs 7] [--clip FILE ...]

Run through bench/lambda_bundles.sh, which builds the zips first. Each DIR
contains aws_orchestrator.zip and aws_worker.zip. The functions run under
tests/lambda/lambda_service.py against moto; arm64 zips run under
qemu-aarch64-static, so their timings are emulated and do not predict
Graviton's speed. Prints a Markdown report on stdout.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lambda"))

import lambdakit as LK  # noqa: E402
from lambdakit import K  # noqa: E402

WRAP = os.path.join(ROOT, "tests", "lambda", "test_bundle_wrap.sh")
MEDIA = os.environ.get("SN_MEDIA_DIR") or os.path.join(
    os.path.dirname(ROOT), "shared", "media")

# The 1080p clips of the media corpus whose video the pipeline decodes
# without errors: H.264 1920x1080 10 s with an edit list, H.264 1080i 1 s
# from a camcorder, VP8 1920x1080 4.2 s.
DEFAULT_CLIPS = ["axm-edit_list_positive_shift.mp4",
                 "filetype-fixture-raw.mts",
                 "filetype-fixture-null.webm"]

# Settings of the functions when nothing overrides them: the default
# ladder (short sides 236..1080) and x264 preset of `sinatra process`.
DEFAULT_LADDER_ENV = {"SINATRA_RUNGS": "236,360,432,540,720,1080",
                      "SINATRA_PRESET": "veryfast"}
SD_RUNGS = 4                # 236, 360, 432, 540: under 720 lines
HD_RUNGS = 2                # 720, 1080

# us-east-1 list prices (aws.amazon.com/lambda/pricing and
# aws.amazon.com/mediaconvert/pricing, basic tier, AVC up to 30 fps).
PRICE_GBS = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_REQUEST = 0.20 / 1e6
MEDIACONVERT_SD_MIN = 0.0075
MEDIACONVERT_HD_MIN = 0.015
# Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion
# to memory, so a CPU-bound second costs the same at any size from there.
MEMORY_MB = 1769

TRIVIAL_EVENT = {"Records": []}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def zip_sizes(path):
    with zipfile.ZipFile(path) as z:
        unzipped = sum(i.file_size for i in z.infolist())
        files = sum(1 for i in z.infolist() if not i.is_dir())
    return os.path.getsize(path), unzipped, files


def process_cpu(pid):
    """Returns (user + system CPU seconds, peak RSS in MB) of a live
    process, all its threads included."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    peak = 0
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) // 1024
    return cpu, peak


def clip_duration(clip):
    with open(os.path.join(MEDIA, "ffprobe", clip + ".json")) as fh:
        return float(json.load(fh)["format"]["duration"])


def use_zips(folder, arch):
    """Points lambdakit's functions at the zips in folder."""
    os.environ["SN_LAMBDA_CODE_ORCHESTRATOR"] = os.path.join(
        folder, "aws_orchestrator.zip")
    os.environ["SN_LAMBDA_CODE_WORKER"] = os.path.join(folder,
                                                       "aws_worker.zip")
    if arch == "arm64":
        os.environ["SN_LAMBDA_PREFIX"] = "%s emulate" % WRAP
    else:
        os.environ.pop("SN_LAMBDA_PREFIX", None)


def measure_starts(aws, res, credentials, tmp, runs):
    """Returns {handler: (cold start ms list, warm invoke ms list)}: a new
    process per run, one trivial event to end its init phase, then three
    warm trivial events."""
    out = {}
    for handler in ("orchestrator", "worker"):
        colds, warms = [], []
        for _ in range(runs):
            fn = LK.make_function(handler, tmp, res, credentials, 60)
            try:
                first = fn.invoke(TRIVIAL_EVENT)
                if first.kind != "response" or first.init_s is None:
                    raise RuntimeError("%s: trivial event gave %r; log: %s"
                                       % (handler, first,
                                          fn.log_text()[-800:]))
                colds.append(first.init_s * 1000)
                for _ in range(3):
                    warms.append(fn.invoke(TRIVIAL_EVENT).duration_s * 1000)
            finally:
                fn.stop()
        out[handler] = (colds, warms)
    return out


def measure_cpu(aws, res, credentials, tmp, clip):
    """Uploads clip, orchestrates it and drains its jobs with the default
    ladder. Returns a dict of the worker's CPU seconds, peak RSS, jobs,
    invokes and wall time of the invokes."""
    env = dict(DEFAULT_LADDER_ENV)
    orchestrator = LK.make_function("orchestrator", tmp, res, credentials,
                                    LK.ORCHESTRATOR_TIMEOUT, env=env)
    worker = LK.make_function("worker", tmp, res, credentials,
                              LK.WORKER_TIMEOUT, env=env)
    try:
        name = "bench-%s-%s" % (LK.unique_suffix(), clip)
        aws["s3"].upload_file(os.path.join(MEDIA, clip), res.videos,
                              K.UPLOAD_PREFIX + name)
        video = K.video_id(name)
        events, _ = LK.notification_events(aws, res.notify, wait_s=15)
        for event in events:
            orchestrator.invoke(event)
        batches = []
        checks = Checks()
        items = LK.drain_jobs(checks, aws, worker, res, [video], 900,
                              batches=batches)
        status = items[video].get("status")
        if status != "ready":
            raise RuntimeError("%s ended %s: %s" % (clip, status,
                                                    items[video].get("error")))
        if worker.cold_starts != 1:
            raise RuntimeError("%s: the worker started %d times; its CPU "
                               "time is incomplete" % (clip,
                                                       worker.cold_starts))
        cpu, peak = process_cpu(worker.proc.pid)
        return {
            "cpu_s": cpu, "peak_mb": peak,
            "jobs": sum(len(b.records) for b in batches),
            "invokes": len(batches),
            "wall_s": sum(b.result.duration_s for b in batches),
        }
    finally:
        orchestrator.stop()
        worker.stop()


class Checks:
    """The checks object that lambdakit.drain_jobs reports through."""

    def require(self, ok, message):
        if not ok:
            raise RuntimeError(message)


def lambda_cost(arch, cpu_s, requests):
    """Returns the USD that cpu_s CPU seconds and requests invokes cost on
    Lambda at MEMORY_MB, assuming the encoder keeps its vCPU busy."""
    return cpu_s * MEMORY_MB / 1024 * PRICE_GBS[arch] + \
        requests * PRICE_REQUEST


def ms(values):
    return "%.0f" % statistics.median(values)


def report(args, sizes, starts, cpu_rows):
    print("| zip | arch | zipped (bytes) | unzipped (bytes) | files |")
    print("|---|---|---:|---:|---:|")
    for arch, name, (zipped, unzipped, files) in sizes:
        print("| %s | %s | %d | %d | %d |" % (name, arch, zipped, unzipped,
                                              files))

    print()
    print("| arch | function | cold start, median of %d (ms) | "
          "trivial warm invoke, median of %d (ms) |" % (
              args.runs, 3 * args.runs))
    print("|---|---|---:|---:|")
    for arch, by_handler in starts:
        note = " (qemu, emulated)" if arch == "arm64" else ""
        for handler, (colds, warms) in by_handler.items():
            print("| %s%s | %s | %s (%s..%s) | %s |" % (
                arch, note, handler, ms(colds), "%.0f" % min(colds),
                "%.0f" % max(colds), ms(warms)))
    if cpu_rows:
        print()
        report_cost(cpu_rows)


def report_cost(cpu_rows):
    print("| clip | source (s) | jobs | worker CPU user+sys (s) "
          "| CPU s per source s | invoke wall (s) | peak RSS (MB) "
          "| x86_64 USD per source min | arm64 USD per source min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    total_cpu = total_src = total_requests = 0
    for clip, seconds, row in cpu_rows:
        # With a batch size of 1, every job is an invoke, plus one
        # orchestrator invoke per upload.
        requests = row["jobs"] + 1
        per_min = 60 / seconds
        print("| %s | %.2f | %d | %.1f | %.2f | %.1f | %d | %.5f | %.5f |"
              % (clip, seconds, row["jobs"], row["cpu_s"],
                 row["cpu_s"] / seconds, row["wall_s"], row["peak_mb"],
                 lambda_cost("x86_64", row["cpu_s"], requests) * per_min,
                 lambda_cost("arm64", row["cpu_s"], requests) * per_min))
        total_cpu += row["cpu_s"]
        total_src += seconds
        total_requests += requests

    cpu_per_min = total_cpu / total_src * 60
    requests_per_min = total_requests / total_src * 60
    print()
    print("Estimate per minute of 1080p source, default ladder (%d SD + %d "
          "HD outputs), from %.1f CPU s over %.1f s of source = %.1f CPU s "
          "per minute, %d MB (1 vCPU), %.1f invokes per minute (batch size "
          "1):" % (SD_RUNGS, HD_RUNGS, total_cpu, total_src, cpu_per_min,
                   MEMORY_MB, requests_per_min))
    print()

    mediaconvert = SD_RUNGS * MEDIACONVERT_SD_MIN + \
        HD_RUNGS * MEDIACONVERT_HD_MIN
    print("| service | price used | cost per source minute (USD) |")
    print("|---|---|---:|")
    for arch in ("x86_64", "arm64"):
        cost = lambda_cost(arch, cpu_per_min, requests_per_min)
        print("| Lambda %s | $%.10f per GB-s, $0.20 per million requests "
              "| %.5f |" % (arch, PRICE_GBS[arch], cost))
    print("| MediaConvert basic tier | $%.4f per SD and $%.3f per HD output "
          "minute | %.4f |" % (MEDIACONVERT_SD_MIN, MEDIACONVERT_HD_MIN,
                               mediaconvert))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zips", action="append", required=True,
                    help="ARCH=DIR, ARCH x86_64 or arm64")
    ap.add_argument("--runs", type=int, default=7,
                    help="cold starts per function (default 7)")
    ap.add_argument("--clip", action="append",
                    help="1080p clip of the media corpus for the CPU time "
                         "(default: %s)" % ", ".join(DEFAULT_CLIPS))
    args = ap.parse_args(argv)

    if not os.environ.get("AWS_ENDPOINT_URL"):
        ap.error("AWS_ENDPOINT_URL is not set; run under "
                 "tests/aws/with_moto.sh")
    aws = LK.clients()
    res = LK.Resources(aws, LK.unique_suffix()).create()
    credentials = LK.function_credentials(aws)
    tmp = os.path.join("/tmp", "sn-bench-lambda-%d" % os.getpid())
    os.makedirs(tmp)
    try:
        sizes, starts, cpu_rows = measure(ap, args, aws, res, credentials,
                                          tmp)
    finally:
        # The functions' code folders are read-only.
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, sizes, starts, cpu_rows)
    return 0


def measure(ap, args, aws, res, credentials, tmp):
    """Runs every measurement. Returns (sizes, starts, cpu_rows) for
    report()."""
    sizes, starts, cpu_rows = [], [], []
    for spec in args.zips:
        arch, _, folder = spec.partition("=")
        if arch not in PRICE_GBS or not os.path.isdir(folder):
            ap.error("--zips %s: expected x86_64=DIR or arm64=DIR with an "
                     "existing DIR" % spec)
        for name in ("aws_orchestrator.zip", "aws_worker.zip"):
            sizes.append((arch, name, zip_sizes(os.path.join(folder,
                                                             name))))
        use_zips(folder, arch)
        t0 = time.monotonic()
        starts.append((arch, measure_starts(aws, res, credentials, tmp,
                                            args.runs)))
        print("lambda_bundles.py: %s starts measured in %.0f s"
              % (arch, time.monotonic() - t0), file=sys.stderr)
        if arch == "x86_64":
            for clip in args.clip or DEFAULT_CLIPS:
                row = measure_cpu(aws, res, credentials, tmp, clip)
                cpu_rows.append((clip, clip_duration(clip), row))
                print("lambda_bundles.py: %s: %r" % (clip, row),
                      file=sys.stderr)
    return sizes, starts, cpu_rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
