#!/usr/bin/env python3
"""Benchmark: time from the end of an upload to the first playable master
playlist, `sinatra serve` against an ffmpeg HLS command line on the same
60 s 1080p input, in the same invocation.

Sinatra: a fresh `sinatra serve` (its own data folder, worker threads on
every core) gets the input by `PUT /stream/NAME` over loopback. The clock
starts when the last byte of the body has been sent and stops when the
master playlist answers 200 over HTTP and every media playlist it names
(each rung and the audio) lists at least one segment that answers 200.
The time includes the server's probe and plan, which run before it answers
the upload.

ffmpeg: the same ladder as bench/ladder_vs_ffmpeg.py (one command, every
rung and the audio, fMP4 segments), but with EVENT playlists so it writes
playlists as segments finish; the input is already on disk, so its clock
starts when the command starts, and stops when the same condition holds on
its output folder. ffmpeg is stopped at that point.

The two alternate --runs times (default 3) and the script prints every
figure, the medians and their ratio. Python 3 standard library only.

    bench/upload_to_playable.py --sinatra build/sinatra --work /tmp/sn-bench
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ladder_vs_ffmpeg as ladder  # noqa: E402

INPUT_SECONDS = 60
POLL_S = 0.02
TARGET_S = 5.0
TIMEOUT_S = 300


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def media_uris(master_text):
    """URIs of the media playlists a master playlist names."""
    uris = []
    for line in master_text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            uris.append(line)
        for m in re.finditer(r'URI="([^"]+)"', line):
            if line.startswith("#EXT-X-MEDIA"):
                uris.append(m.group(1))
    return uris


def first_segment(text):
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return None


# --------------------------------------------------------------------------
# Sinatra


class Server:
    def __init__(self, binary, data, log_path):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", data, "--port", "0"],
            stdout=subprocess.DEVNULL, stderr=self.log_file)
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.port is None:
            with open(log_path) as f:
                m = re.search(r"serving http://[^:]+:(\d+)/", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                raise RuntimeError(f"sinatra serve exited; see {log_path}")
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError(f"sinatra serve did not start; see {log_path}")

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


def playable_over_http(server, master_path):
    status, body = server.get(master_path)
    if status != 200:
        return False
    base = master_path.rsplit("/", 1)[0]
    for uri in media_uris(body.decode()):
        path = f"{base}/{uri}"
        status, text = server.get(path)
        if status != 200:
            return False
        seg = first_segment(text.decode())
        if seg is None:
            return False
        seg_path = f"{path.rsplit('/', 1)[0]}/{seg}"
        if server.get(seg_path)[0] != 200:
            return False
    return True


def run_sinatra(binary, inp, work, run):
    data = os.path.join(work, f"serve-data-{run}")
    shutil.rmtree(data, ignore_errors=True)
    server = Server(binary, data, os.path.join(work, f"serve-{run}.log"))
    try:
        size = os.path.getsize(inp)
        name = urllib.parse.quote(f"bench clip {run}.mp4")
        conn = http.client.HTTPConnection("127.0.0.1", server.port,
                                          timeout=120)
        conn.putrequest("PUT", f"/stream/{name}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        with open(inp, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                conn.send(block)
        t0 = time.monotonic()
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        if resp.status not in (200, 201):
            raise RuntimeError(f"upload rejected: {resp.status} {body}")
        answered = time.monotonic() - t0
        master = f"/hls/{body['id']}/1/master.m3u8"
        while not playable_over_http(server, master):
            if time.monotonic() - t0 > TIMEOUT_S:
                raise RuntimeError("no playable master playlist in time")
            time.sleep(POLL_S)
        playable = time.monotonic() - t0
        return {"playable_s": playable, "upload_answered_s": answered}
    finally:
        server.stop()


# --------------------------------------------------------------------------
# ffmpeg


def playable_on_disk(out):
    try:
        with open(os.path.join(out, "master.m3u8")) as f:
            master = f.read()
    except OSError:
        return False
    for uri in media_uris(master):
        try:
            with open(os.path.join(out, uri)) as f:
                seg = first_segment(f.read())
        except OSError:
            return False
        if seg is None or not os.path.exists(
                os.path.join(out, os.path.dirname(uri), seg)):
            return False
    return True


def run_ffmpeg(inp, work, run):
    out = os.path.join(work, f"ffmpeg-{run}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cmd = ladder.ffmpeg_ladder_command(inp, out, x264_params="mbtree=0")
    cmd[cmd.index("-hls_playlist_type") + 1] = "event"
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        while not playable_on_disk(out):
            if proc.poll() is not None and not playable_on_disk(out):
                raise RuntimeError(f"ffmpeg exited with {proc.returncode}")
            if time.monotonic() - t0 > TIMEOUT_S:
                raise RuntimeError("ffmpeg: no playable master in time")
            time.sleep(POLL_S)
        return {"playable_s": time.monotonic() - t0}
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sinatra", required=True, help="the sinatra binary")
    ap.add_argument("--source", default=ladder.DEFAULT_SOURCE)
    ap.add_argument("--work", default="/tmp/sinatra-bench")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    ladder.INPUT_SECONDS = INPUT_SECONDS
    inp = os.path.join(args.work, f"input-{INPUT_SECONDS}s-1080p.mp4")
    ladder.cached_build(ladder.input_command(args.source, inp), inp)

    results = {"sinatra": [], "ffmpeg": []}
    for run in range(args.runs):
        order = ["sinatra", "ffmpeg"] if run % 2 == 0 else ["ffmpeg", "sinatra"]
        for tool in order:
            if tool == "sinatra":
                r = run_sinatra(os.path.abspath(args.sinatra), inp,
                                args.work, run)
            else:
                r = run_ffmpeg(inp, args.work, run)
            results[tool].append(r)
            log(f"run {run + 1} {tool}: " +
                ", ".join(f"{k} {v:.2f}" for k, v in r.items()))

    s = statistics.median(r["playable_s"] for r in results["sinatra"])
    f = statistics.median(r["playable_s"] for r in results["ffmpeg"])
    a = statistics.median(r["upload_answered_s"] for r in results["sinatra"])
    print(f"input: {INPUT_SECONDS} s 1080p, {os.path.getsize(inp)} bytes")
    print(f"sinatra serve: upload answered after {a:.2f} s, first playable "
          f"master after {s:.2f} s (median of {args.runs})")
    print(f"ffmpeg (EVENT playlists): first playable master after {f:.2f} s")
    print(f"ratio sinatra/ffmpeg: {s / f:.2f}")
    print(f"target: under {TARGET_S:.0f} s: "
          f"{'met' if s < TARGET_S else 'MISSED'}")
    with open(os.path.join(args.work, "upload-to-playable.json"), "w") as fp:
        json.dump(results, fp, indent=1)


if __name__ == "__main__":
    main()
