#!/usr/bin/env python3
"""Integration tests of `sinatra serve` and `sinatra worker`.

    python3 tests/server/test_serve.py --list
    python3 tests/server/test_serve.py --binary PATH CASE

Exit status: 0 pass, 1 fail, 77 skip. Each case starts the real binary on
a fresh data folder with --port 0 on 127.0.0.1, reads the port from the
"serving http://HOST:PORT/" log line, and talks to it with http.client.
Inputs come from the shared media corpus (SN_MEDIA_DIR, or ../shared/media
next to the repository) or are made from it with ffmpeg. Output folders
are checked with tests/media/hlscheck.py and the checks of
tests/media/test_process.py. Everything goes to a temporary folder that is
removed at the end (set SN_KEEP_TMP=1 to keep it), and every process a
case starts is killed by its pid when the case ends.
"""

import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "media"))
sys.path.insert(0, HERE)

import hlscheck as H  # noqa: E402
import servekit as K  # noqa: E402
import test_process as P  # noqa: E402

BEAR = "packager-bear-640x360-trailing-moov.mp4"

# The server's pipeline defaults: 6 s segments, a 2 s first segment, and a
# keyframe every 2 s.
SEGMENT_S = 6
KEYFRAME_S = 2

READY_TIMEOUT = 180         # seconds from upload to a finished video
LEVELS = ("debug", "info", "warn", "error")

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


# ---------------------------------------------------------------------------
# Case context

class Ctx:
    def __init__(self, binary, checks):
        self.binary = binary
        self.c = checks
        self.tmp = tempfile.mkdtemp(prefix="sn-serve-test-")
        self.media = P.media_dir()
        self.procs = []
        self.n_logs = 0
        self.n_probes = 0
        self.inputs = {}

    def cleanup(self):
        for p in self.procs:
            p.kill()
        if os.environ.get("SN_KEEP_TMP"):
            print("kept %s" % self.tmp)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def corpus(self, name):
        p = os.path.join(self.media, name)
        if not os.path.isfile(p):
            raise H.CaseSkipped("corpus file %s is absent" % p)
        return p

    def data_dir(self, name):
        d = self.path("data", name)
        os.makedirs(d)
        return d

    def log_path(self, label):
        self.n_logs += 1
        return self.path("logs", "%02d-%s.log" % (self.n_logs, label))

    def serve(self, data, workers, *extra):
        s = K.Server(self.binary, data, self.log_path("serve"), workers,
                     extra)
        self.procs.append(s)
        try:
            return s.start()
        except K.SetupFailed as e:
            self.c.require(False, str(e))

    def worker(self, data, workers, *extra):
        w = K.Worker(self.binary, data, self.log_path("worker"), workers,
                     extra)
        self.procs.append(w)
        w.start()
        time.sleep(0.2)
        self.c.require(w.alive(), "`%s` exited at once with status %s; log: "
                       "%s" % (w.cmdline(), w.p.returncode, w.log_tail()))
        return w

    def stop(self, proc):
        """Stops a process with SIGTERM and checks it exits with 0."""
        rc = proc.terminate()
        if rc is None:
            outcome = "did not exit within %d s" % K.STOP_TIMEOUT
        else:
            outcome = "exited with status %s" % rc
        self.c.expect(rc == 0, "`%s` %s after SIGTERM, expected exit status "
                      "0; log: %s" % (proc.cmdline(), outcome,
                                      proc.log_tail()))

    def looped_clip(self, seconds, height=None):
        """Makes bear footage (640x360, 29.97 fps, AAC) looped to `seconds`,
        scaled to `height` lines when given, as H.264 + AAC in MP4."""
        key = (seconds, height)
        if key in self.inputs:
            return self.inputs[key]
        bear = self.corpus(BEAR)
        out = self.path("inputs", "bear-%ds-%sp.mp4" % (seconds, height or
                                                         360))
        vf = "format=yuv420p"
        if height:
            vf = "scale=-2:%d,%s" % (height, vf)
        H.ffmpeg(["-stream_loop", int(seconds / 2.7) + 1, "-i", bear,
                  "-t", seconds, "-vf", vf, "-c:v", "libx264", "-preset",
                  "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "128k",
                  out])
        self.inputs[key] = out
        return out

    def crash_clip(self):
        """Returns the input of the crash tests: long and large enough that a
        job runs for a while, so a kill lands in the middle of one."""
        return self.looped_clip(30, 540)


# ---------------------------------------------------------------------------
# Shared steps and checks

def upload(ctx, server, name, path):
    """PUTs the file at path as name and checks the 201 response. Returns
    the video id."""
    c = ctx.c
    vid = K.video_id(name)
    r = K.put_file(server.port, name, path)
    c.require(r.status == 201, "PUT /stream/%s returned %s, expected 201"
              % (K.quote_name(name), r.describe()))
    body = r.json()
    c.require(isinstance(body, dict), "PUT /stream/%s: the 201 body is not a "
              "JSON object: %r" % (name, r.body[:200]))
    c.expect(body.get("id") == vid, "PUT /stream/%s: id %r, expected %s (the "
             "first 16 hex digits of SHA-256 of 'stream/NAME')"
             % (name, body.get("id"), vid))
    c.expect(body.get("name") == name, "PUT /stream/%s: name %r, expected %r"
             % (K.quote_name(name), body.get("name"), name))
    status_url = body.get("status_url")
    c.expect(isinstance(status_url, str) and
             status_url.endswith("/api/videos/" + vid),
             "PUT /stream/%s: status_url %r, expected a URL ending in "
             "/api/videos/%s" % (name, status_url, vid))
    stored = os.path.join(server.data, "videos", "stream", name)
    if c.expect(os.path.isfile(stored), "after PUT of %r: %s does not exist"
                % (name, stored)):
        c.expect(same_bytes(stored, path), "after PUT of %r: %s differs from "
                 "the bytes sent (%s)" % (name, stored, path))
    return vid


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def live_port(server):
    """Returns a port_of() for K.wait_for_video() that stops the wait with
    the log when the server has exited."""
    def port_of():
        if not server.alive():
            raise AssertionError("`%s` exited with status %s; log: %s"
                                 % (server.cmdline(), server.p.returncode,
                                    server.log_tail()))
        return server.port
    return port_of


def wait_ready(ctx, port_of, vid, label, timeout=READY_TIMEOUT):
    """Waits for the video to finish and requires it to be ready."""
    try:
        v = K.wait_for_video(port_of, vid, K.finished, timeout, label)
    except AssertionError as e:
        ctx.c.require(False, str(e))
    ctx.c.require(v.get("status") == "ready", "%s: video %s ended %s with "
                  "error %r, expected ready" % (label, vid, v.get("status"),
                                                v.get("error")))
    return v


PLAYLIST_RE = re.compile(r"^/hls/([0-9a-f]{16})/(\d+)/master\.m3u8$")


def output_dir(ctx, data, video):
    """Returns DATA/hls/ID/GEN from the video's playlist URL."""
    url = video.get("playlist")
    m = PLAYLIST_RE.match(url or "")
    ctx.c.require(m is not None and m.group(1) == video.get("id"),
                  "video %s: playlist %r, expected /hls/%s/GEN/master.m3u8"
                  % (video.get("id"), url, video.get("id")))
    return os.path.join(data, "hls", m.group(1), m.group(2))


def source_duration(path):
    _, fmt, _ = H.probe_streams(path)
    return float(fmt.get("duration", 0))


def check_ready_fields(ctx, video, vid, name, src_path, outdir):
    """Checks the status API's record of a ready video."""
    c = ctx.c
    label = "GET /api/videos/%s" % vid

    c.expect(video.get("id") == vid, "%s: id %r" % (label, video.get("id")))
    c.expect(video.get("name") == name, "%s: name %r, expected %r"
             % (label, video.get("name"), name))
    c.expect(video.get("status") == "ready", "%s: status %r, expected ready"
             % (label, video.get("status")))
    progress = video.get("progress")
    c.expect(isinstance(progress, (int, float)) and
             abs(progress - 1) < 1e-9,
             "%s: progress %r of a ready video, expected 1"
             % (label, progress))
    duration = video.get("duration")
    want = source_duration(src_path)
    c.expect(isinstance(duration, (int, float)) and
             abs(duration - want) <= 0.1,
             "%s: duration %r, the source lasts %.3f s (ffprobe)"
             % (label, duration, want))
    c.expect(video.get("error") in (None, ""), "%s: error %r on a ready "
             "video" % (label, video.get("error")))
    base = os.path.dirname(video.get("playlist") or "")
    c.expect(video.get("poster") == base + "/poster.jpg",
             "%s: poster %r, expected %s/poster.jpg"
             % (label, video.get("poster"), base))

    ladder = video.get("ladder")
    names = []
    if c.expect(isinstance(ladder, list) and ladder,
                "%s: ladder %r, expected a list of rungs" % (label, ladder)):
        for rung in ladder:
            if isinstance(rung, dict):
                names.append(rung.get("name"))
            else:
                names.append(rung)
    folders = H.rung_dirs(outdir)
    c.expect(sorted(str(n) for n in names) == sorted(folders),
             "%s: ladder names %s, the rung folders under %s are %s"
             % (label, names, outdir, folders))


def check_output(ctx, outdir, src_path, label):
    """Checks an output folder as the `sinatra process` tests do: master
    playlist, IDR frames on the segment grid, every source frame once,
    EXTINF durations, clean decoding, final playlists and a poster."""
    c = ctx.c
    ctx.n_probes += 1
    work = ctx.path("probes", "%d" % ctx.n_probes, "x")
    rungs = H.load_rungs(outdir, work)
    c.require(rungs, "%s: %s has no rung folder" % (label, outdir))
    audio = None
    if os.path.isdir(os.path.join(outdir, "audio")):
        audio = H.Rendition(outdir, "audio", work, kind="audio").probe()
    P.check_master(c, outdir, rungs, audio)
    P.check_segment_starts(c, rungs, SEGMENT_S, KEYFRAME_S)
    src = H.SourceVideo(src_path)
    P.check_frames_match_source(c, rungs, src, exact=src.is_cfr())
    P.check_extinf(c, rungs, src.last_dur, src.nominal)
    P.check_decode_and_dts(c, rungs + ([audio] if audio else []))
    for r in rungs + ([audio] if audio else []):
        pl = r.playlist
        c.expect(pl.playlist_type == "VOD" and pl.endlist,
                 "%s: %s has PLAYLIST-TYPE %s and ENDLIST %s, expected VOD "
                 "with ENDLIST" % (label, r.label(), pl.playlist_type,
                                   pl.endlist))
    c.expect(os.path.isfile(os.path.join(outdir, "poster.jpg")),
             "%s: %s/poster.jpg is missing" % (label, outdir))


def api_ids(ctx, port):
    videos, r = K.api_videos(port)
    ctx.c.require(videos is not None, "GET /api/videos returned %s, expected "
                  "200 with {\"videos\": [...]}" % r.describe())
    return sorted(v.get("id") for v in videos)


def clean_run(ctx, name, src_path, workers=1):
    """Processes src_path uploaded as name on a fresh server; returns the
    output folder, the reference for the crash tests."""
    data = ctx.data_dir("reference")
    server = ctx.serve(data, workers)
    vid = upload(ctx, server, name, src_path)
    t0 = time.monotonic()
    v = wait_ready(ctx, live_port(server), vid, "clean run")
    ctx.c.note("clean run of %s: ready in %.1f s with --workers %d"
               % (name, time.monotonic() - t0, workers))
    ctx.stop(server)
    return output_dir(ctx, data, v)


class PlaylistWatch:
    """Fetches the playlists of one video again and again from a thread,
    following the server across restarts. Records every playlist that was
    partial, lost its ENDLIST, went missing after it had been served, or
    listed a segment that was not there.

    The master playlist may be 404 while processing until every rung has
    its first segment (docs/SERVER.md), so a 404 counts only for a
    playlist that was served before or that a served master lists."""

    POLL_PAUSE = 0.02        # seconds between rounds, to leave CPU to jobs

    def __init__(self, ctx, vid, port_of):
        self.ctx = ctx
        self.vid = vid
        self.port_of = port_of
        self.problems = {}
        self.fetches = 0
        self.served = set()
        self.final = set()
        self.seen_segments = set()
        self.event_while_processing = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=60)

    def problem(self, key, msg):
        """Records a problem once per key, counting repeats."""
        count, first = self.problems.get(key, (0, msg))
        self.problems[key] = (count + 1, first)

    def report(self):
        """Returns one line per kind of problem, with its count."""
        return ["%s (seen %d times)" % (first, count)
                for count, first in self.problems.values()]

    def run(self):
        while not self.stop_flag.is_set():
            try:
                port = self.port_of()
            except AssertionError as e:
                self.problem(("server",), str(e))
                return
            if port is not None:
                try:
                    self.poll_once(port)
                except (OSError, http.client.HTTPException):
                    pass     # the server is down or restarting
            time.sleep(self.POLL_PAUSE)

    def poll_once(self, port):
        r = K.api_video(port, self.vid)
        video = r.json() if r.status == 200 else None
        if not isinstance(video, dict) or not video.get("playlist"):
            return
        processing = video.get("status") == "processing"
        master_url = video["playlist"]
        master = self.fetch_playlist(port, master_url, must_exist=False)
        if master is None:
            return
        for uri in K.playlist_uris(master):
            url = K.resolve(master_url, uri)
            if not url.endswith(".m3u8"):
                continue
            text = self.fetch_playlist(port, url, must_exist=True)
            if text is None:
                continue
            if processing and not K.is_final(text) and \
                    K.playlist_type(text) == "EVENT":
                self.event_while_processing += 1
            self.check_segments(port, url, text)

    def check_segments(self, port, url, text):
        for seg in K.playlist_uris(text):
            seg_url = K.resolve(url, seg)
            if seg_url in self.seen_segments:
                continue
            h = K.request(port, "HEAD", seg_url)
            if h.status == 200:
                self.seen_segments.add(seg_url)
            else:
                self.problem(("segment", url), "%s lists %s, which returned "
                             "%d to HEAD" % (url, seg, h.status))

    def fetch_playlist(self, port, url, must_exist):
        r = K.request(port, "GET", url)
        self.fetches += 1
        if r.status != 200:
            if must_exist or url in self.served:
                self.problem(("status", url), "GET %s returned %s after it "
                             "had been served or listed" % (url,
                                                            r.describe()))
            return None
        self.served.add(url)
        text = r.body.decode("utf-8", "replace")
        for p in K.playlist_problems(text):
            self.problem(("partial", url, p), "GET %s: %s: %r"
                         % (url, p, text[-120:]))
        if K.is_final(text):
            self.final.add(url)
        elif url in self.final:
            self.problem(("regressed", url), "GET %s: the playlist had "
                         "#EXT-X-ENDLIST before and now has none (type %s)"
                         % (url, K.playlist_type(text)))
        return text


def scratch_folders(data):
    """Lists the scratch folders of jobs under DATA/hls/.tmp."""
    tmp = os.path.join(data, "hls", ".tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def note_leftovers(ctx, data):
    """Reports scratch folders that killed processes left behind (the
    contract does not cover them, but they use disk)."""
    for folder in ("hls", "videos"):
        left = K.list_files(os.path.join(data, folder, ".tmp"), folders=True)
        if left:
            ctx.c.note("%s/.tmp still holds %d entries after the run: %s"
                       % (folder, len(left), left[:6]))


def queue_counts(data):
    """Counts the messages waiting or in flight and the dead-lettered ones
    in the SQLite queue of a data folder. Returns the two counts."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "sinatra.db"),
                         uri=True, timeout=10)
    try:
        waiting = db.execute("SELECT COUNT(*) FROM queue_messages")
        dead = db.execute("SELECT COUNT(*) FROM queue_dead")
        return waiting.fetchone()[0], dead.fetchone()[0]
    finally:
        db.close()


def hidden_messages(data, seconds):
    """Counts the queue's messages that stay invisible for more than
    `seconds` from now."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "sinatra.db"),
                         uri=True, timeout=10)
    try:
        limit = int((time.time() + seconds) * 1000)
        rows = db.execute("SELECT COUNT(*) FROM queue_messages "
                          "WHERE visible_ms > ?", (limit,))
        return rows.fetchone()[0]
    finally:
        db.close()


def check_queue_empty(ctx, data, label, timeout=15):
    """Checks that the queue is empty. It drains shortly after the last
    video is ready, because a message is deleted after its job's work is
    recorded."""
    deadline = time.monotonic() + timeout
    while True:
        waiting, dead = queue_counts(data)
        if (waiting == 0 and dead == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ctx.c.expect(waiting == 0, "%s: %d messages remain in queue_messages %d s "
                 "after every video was ready" % (label, waiting, timeout))
    ctx.c.expect(dead == 0, "%s: %d messages in queue_dead" % (label, dead))


# ---------------------------------------------------------------------------
# 1. PUT uploads end ready with checked output

@case
def put_upload_passes_hls_checks(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 2)
    names = [BEAR, "my clip (1) n\u00e9e.mp4"]
    ids = {name: upload(ctx, server, name, bear) for name in names}
    for name, vid in ids.items():
        label = "upload %r" % name
        v = wait_ready(ctx, live_port(server), vid, label)
        outdir = output_dir(ctx, data, v)
        check_ready_fields(ctx, v, vid, name, bear, outdir)
        fetched = K.fetch_tree(c, server.port, data, v["playlist"], label)
        c.expect(any(u.endswith(".m4s") for u in fetched),
                 "%s: no segment reached through the playlists: %s"
                 % (label, sorted(fetched)))
        check_output(ctx, outdir, bear, label)
    listed = api_ids(ctx, server.port)
    c.expect(listed == sorted(ids.values()), "GET /api/videos lists %s, "
             "expected the two uploads %s" % (listed, sorted(ids.values())))
    ctx.stop(server)


@case
def reupload_starts_new_generation(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    clip = ctx.looped_clip(10)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 2)
    name = "replaced.mp4"
    vid = upload(ctx, server, name, bear)
    first = wait_ready(ctx, live_port(server), vid, "first upload")
    old_dir = output_dir(ctx, data, first)

    # The same name again, with other bytes: 200, the same id, and a new
    # generation whose output is written under a new prefix.
    r = K.put_file(server.port, name, clip)
    c.require(r.status == 200, "second PUT of %s: %s, expected 200 for a "
              "replaced upload" % (name, r.describe()))
    c.expect((r.json() or {}).get("id") == vid, "second PUT of %s: id %r, "
             "expected %s" % (name, (r.json() or {}).get("id"), vid))
    second = wait_ready(ctx, live_port(server), vid, "second upload")
    c.expect(second.get("generation") == first.get("generation", 0) + 1,
             "generation %r after generation %r, expected one more"
             % (second.get("generation"), first.get("generation")))
    new_dir = output_dir(ctx, data, second)
    c.expect(new_dir != old_dir, "the second upload's playlist %s names the "
             "first upload's folder" % second.get("playlist"))
    check_ready_fields(ctx, second, vid, name, clip, new_dir)
    K.fetch_tree(c, server.port, data, second["playlist"], "second upload")
    # Once the new generation is ready, the worker that finished it removes
    # the older generation's output and job records.
    left = K.list_files(old_dir)
    c.expect(not left, "%d files of the first generation remain under %s "
             "after the second is ready: %s" % (len(left), old_dir, left[:6]))
    old_jobs = os.path.join(data, "videos", "jobs", vid,
                            os.path.basename(old_dir))
    c.expect(not K.list_files(old_jobs), "job records of the first "
             "generation remain under %s: %s"
             % (old_jobs, K.list_files(old_jobs)[:6]))
    c.expect(api_ids(ctx, server.port) == [vid], "GET /api/videos lists %s, "
             "expected the one video %s" % (api_ids(ctx, server.port), vid))
    ctx.stop(server)


# 2. Determinism across servers

@case
def two_servers_give_identical_bytes(ctx):
    clip = ctx.looped_clip(10)
    trees = []
    for i, workers in enumerate((2, 1)):
        data = ctx.data_dir("server-%d" % i)
        server = ctx.serve(data, workers)
        vid = upload(ctx, server, "bear 10 s.mp4", clip)
        v = wait_ready(ctx, live_port(server), vid,
                       "server %d (--workers %d)" % (i + 1, workers))
        trees.append(output_dir(ctx, data, v))
        ctx.stop(server)
    P.compare_trees(ctx.c, trees[0], trees[1],
                    "hls/ID/GEN of serve --workers 2 vs --workers 1")


# 3. Playback while processing

@case
def playlists_play_while_processing(ctx):
    c = ctx.c
    clip = ctx.looped_clip(30)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 1)
    vid = upload(ctx, server, "bear 30 s.mp4", clip)
    watch = PlaylistWatch(ctx, vid, live_port(server)).start()
    seen = {"named": None, "master": None, "event": None, "statuses": []}

    def observe(video):
        status = video.get("status")
        if not seen["statuses"] or seen["statuses"][-1] != status:
            seen["statuses"].append(status)
        if status != "processing" or not video.get("playlist") or \
                seen["event"] is not None:
            return
        # The master is named while processing: it must become fetchable,
        # and its media playlists must be EVENT playlists without ENDLIST.
        master_url = video["playlist"]
        r = K.request(server.port, "GET", master_url)
        seen["named"] = (video.get("progress"), r.status)
        if r.status != 200:
            return
        seen["master"] = (video.get("progress"), r.header("Cache-Control"))
        text = r.body.decode("utf-8", "replace")
        for uri in K.playlist_uris(text):
            url = K.resolve(master_url, uri)
            if not url.endswith("index.m3u8"):
                continue
            m = K.request(server.port, "GET", url)
            body = m.body.decode("utf-8", "replace")
            if m.status == 200 and not K.is_final(body):
                seen["event"] = (url, K.playlist_type(body),
                                 m.header("Cache-Control"),
                                 video.get("progress"))
                return

    try:
        v = K.wait_for_video(live_port(server), vid, K.finished,
                             READY_TIMEOUT, "30 s upload", on_poll=observe,
                             interval=0.05)
    finally:
        watch.stop()
    c.note("statuses seen: %s; %d playlist fetches during the run"
           % (" -> ".join(seen["statuses"]), watch.fetches))
    c.require(v.get("status") == "ready", "30 s upload ended %s with error "
              "%r" % (v.get("status"), v.get("error")))
    c.expect(seen["named"] is not None,
             "the API never named a master playlist while the video was "
             "processing (statuses seen: %s)" % seen["statuses"])
    if seen["named"] is not None:
        c.expect(seen["master"] is not None, "the master playlist named "
                 "while processing never returned 200 before the video was "
                 "ready (last: %d at progress %r)"
                 % (seen["named"][1], seen["named"][0]))
    if seen["master"] is not None:
        progress, cache = seen["master"]
        c.expect(cache is not None and "no-cache" in cache,
                 "master playlist at progress %r: Cache-Control %r, expected "
                 "no-cache" % (progress, cache))
    if c.expect(seen["event"] is not None,
                "no media playlist without ENDLIST was fetched while the "
                "video was processing"):
        url, kind, cache, progress = seen["event"]
        c.expect(kind == "EVENT", "%s at progress %r: PLAYLIST-TYPE %r, "
                 "expected EVENT while processing" % (url, progress, kind))
        c.expect(cache is not None and ("no-cache" in cache or
                                        "no-store" in cache or
                                        short_max_age(cache)),
                 "%s while processing: Cache-Control %r, expected no-cache "
                 "or a max-age of a few seconds" % (url, cache))
    for p in watch.report():
        c.expect(False, "playlist fetched during processing: %s" % p)
    c.expect(watch.event_while_processing > 0 or seen["event"] is not None,
             "the watcher saw no EVENT playlist while processing")
    outdir = output_dir(ctx, data, v)
    K.fetch_tree(c, server.port, data, v["playlist"], "after ready")
    check_output(ctx, outdir, clip, "30 s upload")
    ctx.stop(server)


def max_age(cache):
    m = re.search(r"max-age=(\d+)", cache or "")
    return int(m.group(1)) if m else None


def short_max_age(cache):
    age = max_age(cache)
    return age is not None and age <= 10


# 4. HTTP delivery

@case
def hls_delivery_headers_and_ranges(ctx):
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 2)
    port = server.port
    vid = upload(ctx, server, "bear.mp4", bear)
    v = wait_ready(ctx, live_port(server), vid, "upload")
    outdir = output_dir(ctx, data, v)
    base = v["playlist"].rsplit("/", 1)[0]
    rung = H.rung_dirs(outdir)[-1]
    urls = {
        "master": v["playlist"],
        "media": "%s/%s/index.m3u8" % (base, rung),
        "segment": "%s/%s/seg_00000.m4s" % (base, rung),
        "init": "%s/%s/init.mp4" % (base, rung),
        "poster": "%s/poster.jpg" % base,
    }
    files = {k: read(K.disk_path(data, u)) for k, u in urls.items()}

    check_content_types(ctx, port, urls)
    check_cache_control(ctx, port, urls)
    check_etags(ctx, port, urls)
    check_ranges(ctx, port, urls["segment"], files["segment"])
    check_cors(ctx, port, urls)
    check_gzip(ctx, port, urls, files)
    check_head(ctx, port, urls["segment"], files["segment"])
    check_traversal(ctx, port, data, vid, outdir)
    check_error_bodies(ctx, port)
    check_host_and_framing(ctx, port)
    check_web_page(ctx, port)
    ctx.stop(server)


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def check_content_types(ctx, port, urls):
    want = {"master": ("application/vnd.apple.mpegurl",),
            "media": ("application/vnd.apple.mpegurl",),
            "segment": ("video/iso.segment", "video/mp4"),
            "init": ("video/mp4",),
            "poster": ("image/jpeg",)}
    for k, url in urls.items():
        r = K.request(port, "GET", url)
        ctype = (r.header("Content-Type") or "").split(";")[0].strip()
        ctx.c.expect(r.status == 200 and ctype in want[k],
                     "GET %s: %d with Content-Type %r, expected 200 with %s"
                     % (url, r.status, r.header("Content-Type"),
                        " or ".join(want[k])))


def check_cache_control(ctx, port, urls):
    for k in ("segment", "init", "poster"):
        cache = K.request(port, "GET", urls[k]).header("Cache-Control")
        age = max_age(cache)
        ctx.c.expect(cache is not None and "immutable" in cache and
                     age is not None and age >= 86400,
                     "GET %s: Cache-Control %r, expected immutable with a "
                     "max-age of a day or more" % (urls[k], cache))
    for k in ("master", "media"):
        cache = K.request(port, "GET", urls[k]).header("Cache-Control")
        ctx.c.expect(cache is not None, "GET %s: no Cache-Control" % urls[k])


def check_etags(ctx, port, urls):
    c = ctx.c
    for k in ("segment", "media"):
        url = urls[k]
        r = K.request(port, "GET", url)
        tag = r.header("ETag")
        if not c.expect(tag, "GET %s: no ETag" % url):
            continue
        again = K.request(port, "GET", url, headers={"If-None-Match": tag})
        c.expect(again.status == 304 and again.body == b"",
                 "GET %s with If-None-Match %s: %s, expected 304 with no "
                 "body" % (url, tag, again.describe()))
        c.expect(again.header("ETag") == tag, "GET %s: 304 carries ETag %r, "
                 "the 200 carried %r" % (url, again.header("ETag"), tag))
        other = K.request(port, "GET", url,
                          headers={"If-None-Match": '"not-this-one"'})
        c.expect(other.status == 200, "GET %s with a different If-None-Match:"
                 " %d, expected 200" % (url, other.status))
    # The gzip body of a playlist is another representation with its own
    # tag, which must still revalidate.
    url = urls["media"]
    z = K.request(port, "GET", url, headers={"Accept-Encoding": "gzip"})
    ztag = z.header("ETag")
    if c.expect(ztag, "GET %s with Accept-Encoding gzip: no ETag" % url):
        again = K.request(port, "GET", url, headers={
            "Accept-Encoding": "gzip", "If-None-Match": ztag})
        c.expect(again.status == 304, "GET %s (gzip) with If-None-Match %s: "
                 "%d, expected 304" % (url, ztag, again.status))


def check_ranges(ctx, port, url, data):
    c = ctx.c
    size = len(data)
    c.require(size > 200, "%s has only %d bytes" % (url, size))
    cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=100-", 100, size - 1),
        ("bytes=%d-%d" % (size - 10, size + 1000), size - 10, size - 1),
    ]
    for spec, first, last in cases:
        r = K.request(port, "GET", url, headers={"Range": spec})
        want_range = "bytes %d-%d/%d" % (first, last, size)
        c.expect(r.status == 206, "GET %s Range %s: %d, expected 206"
                 % (url, spec, r.status))
        c.expect(r.header("Content-Range") == want_range,
                 "GET %s Range %s: Content-Range %r, expected %r"
                 % (url, spec, r.header("Content-Range"), want_range))
        c.expect(r.body == data[first:last + 1],
                 "GET %s Range %s: %d bytes that are not bytes %d-%d of the "
                 "file" % (url, spec, len(r.body), first, last))
    for spec in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 9)):
        r = K.request(port, "GET", url, headers={"Range": spec})
        c.expect(r.status == 416, "GET %s Range %s (file of %d bytes): %d, "
                 "expected 416" % (url, spec, size, r.status))
        c.expect(r.header("Content-Range") == "bytes */%d" % size,
                 "GET %s Range %s: 416 with Content-Range %r, expected "
                 "'bytes */%d'" % (url, spec, r.header("Content-Range"),
                                   size))
    whole = K.request(port, "GET", url)
    c.expect(whole.header("Accept-Ranges") == "bytes",
             "GET %s: Accept-Ranges %r, expected bytes"
             % (url, whole.header("Accept-Ranges")))


def check_cors(ctx, port, urls):
    c = ctx.c
    origin = "http://player.invalid"
    for k in ("master", "segment"):
        r = K.request(port, "GET", urls[k], headers={"Origin": origin})
        allow = r.header("Access-Control-Allow-Origin")
        c.expect(allow in ("*", origin), "GET %s with Origin %s: "
                 "Access-Control-Allow-Origin %r" % (urls[k], origin, allow))
    r = K.request(port, "OPTIONS", urls["segment"], headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    c.expect(r.status in (200, 204), "OPTIONS %s (preflight): %d, expected "
             "200 or 204" % (urls["segment"], r.status))
    c.expect(r.header("Access-Control-Allow-Origin") in ("*", origin),
             "OPTIONS %s: Access-Control-Allow-Origin %r"
             % (urls["segment"], r.header("Access-Control-Allow-Origin")))
    methods = r.header("Access-Control-Allow-Methods") or ""
    c.expect("GET" in methods, "OPTIONS %s: Access-Control-Allow-Methods %r "
             "lacks GET" % (urls["segment"], methods))
    headers = (r.header("Access-Control-Allow-Headers") or "").lower()
    c.expect("range" in headers or headers.strip() == "*",
             "OPTIONS %s: Access-Control-Allow-Headers %r does not allow "
             "Range" % (urls["segment"], headers))


def check_gzip(ctx, port, urls, files):
    c = ctx.c
    for k in ("master", "media"):
        url = urls[k]
        r = K.request(port, "GET", url, headers={"Accept-Encoding": "gzip"})
        c.expect(r.status == 200 and r.header("Content-Encoding") == "gzip",
                 "GET %s with Accept-Encoding gzip: %d with Content-Encoding "
                 "%r, expected gzip" % (url, r.status,
                                        r.header("Content-Encoding")))
        if r.header("Content-Encoding") == "gzip":
            c.expect(K.gunzip(r.body) == files[k],
                     "GET %s: the gzip body does not decompress to the "
                     "playlist's bytes" % url)
        vary = (r.header("Vary") or "").lower()
        c.expect("accept-encoding" in vary, "GET %s: Vary %r lacks "
                 "Accept-Encoding" % (url, r.header("Vary")))
        plain = K.request(port, "GET", url)
        c.expect(plain.header("Content-Encoding") is None and
                 plain.body == files[k],
                 "GET %s without Accept-Encoding: Content-Encoding %r, body "
                 "equal to the file: %s" % (url,
                                            plain.header("Content-Encoding"),
                                            plain.body == files[k]))
    r = K.request(port, "GET", urls["segment"],
                  headers={"Accept-Encoding": "gzip"})
    body = K.gunzip(r.body) if r.header("Content-Encoding") == "gzip" \
        else r.body
    c.expect(body == files["segment"], "GET %s with Accept-Encoding gzip: "
             "the body is not the segment's bytes" % urls["segment"])


def check_head(ctx, port, url, data):
    r = K.request(port, "HEAD", url)
    ctx.c.expect(r.status == 200 and r.body == b"" and
                 r.header("Content-Length") == str(len(data)),
                 "HEAD %s: %d, Content-Length %r, %d body bytes; expected "
                 "200, %d and none" % (url, r.status,
                                       r.header("Content-Length"),
                                       len(r.body), len(data)))


def check_traversal(ctx, port, data, vid, outdir):
    """Checks that paths that try to leave the HLS folder or reach hidden
    files get a 4xx and never a file's bytes."""
    c = ctx.c
    gen = os.path.basename(outdir)
    db = read(os.path.join(data, "sinatra.db"))[:100]
    os.makedirs(os.path.join(data, "hls", ".tmp"), exist_ok=True)
    with open(os.path.join(data, "hls", ".tmp", "hidden.m3u8"), "w") as fh:
        fh.write("#EXTM3U\n# hidden\n")
    os.symlink(os.path.join(data, "sinatra.db"),
               os.path.join(outdir, "link.m3u8"))
    paths = [
        "/hls/../sinatra.db",
        "/hls/%2e%2e/sinatra.db",
        "/hls/%2E%2E%2Fsinatra.db",
        "/hls/..%2fsinatra.db",
        "/hls/%s/../../sinatra.db" % vid,
        "/hls/%s/%%2e%%2e/%%2e%%2e/sinatra.db" % vid,
        "/hls/%s/%s/..%%2f..%%2f..%%2fsinatra.db" % (vid, gen),
        "/hls/%s/%s/..%%5c..%%5c..%%5csinatra.db" % (vid, gen),
        "/hls/%2Fetc%2Fpasswd",
        "/hls//etc/passwd",
        "/hls/.tmp/hidden.m3u8",
        "/hls/%2etmp/hidden.m3u8",
        "/hls/%s/%s/.tmp" % (vid, gen),
        "/hls/%s/%s/master.m3u8%%00.jpg" % (vid, gen),
        "/hls/%s/%s/link.m3u8" % (vid, gen),
        "/hls/../videos/stream/bear.mp4",
        "/hls/%2e%2e/videos/stream/bear.mp4",
    ]
    for path in paths:
        r = K.request(port, "GET", path)
        c.expect(400 <= r.status < 500, "GET %s: %s, expected a 4xx"
                 % (path, r.describe()))
        c.expect(b"SQLite format 3" not in r.body and db not in r.body and
                 b"# hidden" not in r.body and b"root:" not in r.body and
                 b"ftyp" not in r.body,
                 "GET %s: the body holds a file's bytes: %r"
                 % (path, r.body[:80]))


def check_error_bodies(ctx, port):
    c = ctx.c
    cases = [("GET", "/api/videos/ffffffffffffffff", 404),
             ("GET", "/no/such/route", 404),
             ("GET", "/hls/ffffffffffffffff/1/master.m3u8", 404),
             ("DELETE", "/api/videos", 405)]
    for method, path, status in cases:
        r = K.request(port, method, path)
        c.expect(r.status == status, "%s %s: %s, expected %d"
                 % (method, path, r.describe(), status))
        c.expect(r.error_text(), "%s %s: body %r, expected JSON "
                 "{\"error\": \"...\"}" % (method, path, r.body[:200]))
        ctype = r.header("Content-Type") or ""
        c.expect(ctype.startswith("application/json"), "%s %s: Content-Type "
                 "%r for a JSON error" % (method, path, ctype))


def raw_exchange(port, data):
    """Sends data as it is on a new connection and parses the first
    response. Returns a Response, or None when the server sent none."""
    s = K.raw_connection(port)
    received = b""
    try:
        s.sendall(data)
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            received += piece
    except OSError:
        pass
    finally:
        s.close()
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        return None
    status, _, reason = lines[0].split(" ", 1)[1].partition(" ")
    headers = [tuple(x.strip() for x in line.split(":", 1))
               for line in lines[1:] if ":" in line]
    length = int(dict((k.lower(), v) for k, v in headers)
                 .get("content-length", len(body)))
    return K.Response(int(status), reason, headers, body[:length])


def check_host_and_framing(ctx, port):
    c = ctx.c
    foreign = "attacker.example:%d" % port
    for method, path, body in [("GET", "/api/videos", None),
                               ("PUT", "/stream/rebind.mp4", b"x" * 64)]:
        r = K.request(port, method, path, body=body,
                      headers={"Host": foreign,
                               "Origin": "http://" + foreign})
        c.expect(r.status in (403, 421), "%s %s with Host %s: %s, expected "
                 "421 or 403" % (method, path, foreign, r.describe()))
        c.expect(r.error_text(), "%s %s with Host %s: body %r, expected a "
                 "JSON error" % (method, path, foreign, r.body[:200]))
    for host in ["localhost:%d" % port, "[::1]:%d" % port, "127.0.0.2"]:
        r = K.request(port, "GET", "/api/videos", headers={"Host": host})
        c.expect(r.status == 200, "GET /api/videos with Host %s: %s, "
                 "expected 200" % (host, r.describe()))

    raw_cases = [
        ("two different Content-Length values",
         b"PUT /stream/dup.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"),
        ("Content-Length with Transfer-Encoding",
         b"PUT /stream/te.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nabc\r\n0\r\n\r\n"),
        ("HTTP/1.1 without Host",
         b"GET /api/videos HTTP/1.1\r\n\r\n"),
    ]
    for label, data in raw_cases:
        r = raw_exchange(port, data)
        c.expect(r is not None and r.status == 400, "%s: %s, expected 400"
                 % (label, r.describe() if r else "no response"))
        c.expect(r is not None and r.error_text(), "%s: body %r, expected "
                 "a JSON error" % (label, r.body[:200] if r else None))

    r = K.request(port, "OPTIONS", "/no-such-file")
    c.expect(r.status == 404, "OPTIONS /no-such-file: %s, expected 404"
             % r.describe())
    r = K.request(port, "OPTIONS", "/")
    c.expect(r.status == 204, "OPTIONS /: %s, expected 204" % r.describe())

    long_path = "/hls/" + "a" * 20000 + ".m3u8"
    r = K.request(port, "GET", long_path)
    error = r.error_text() or ""
    c.expect(r.status == 404 and "not found" in error and
             "..." in error and len(error) < 1000,
             "GET of a 20 kB path: %s, expected 404 with the path cut "
             "short and the cause kept" % r.describe())

    r = K.request(port, "PUT", "/stream/a%00.mp4", body=b"x" * 64)
    error = r.error_text() or ""
    c.expect(r.status == 400 and "NUL" in error,
             "PUT /stream/a%%00.mp4: %s, expected 400 with an error that "
             "names the NUL byte" % r.describe())


def check_web_page(ctx, port):
    c = ctx.c
    r = K.request(port, "GET", "/")
    c.expect(r.status == 200 and
             (r.header("Content-Type") or "").startswith("text/html") and
             b"<html" in r.body.lower(),
             "GET /: %s with Content-Type %r, expected the HTML page"
             % (r.describe(), r.header("Content-Type")))
    hls_js = os.path.join(REPO_ROOT, "node_modules", "hls.js", "dist",
                          "hls.min.js")
    if not os.path.isfile(hls_js):
        c.note("%s is absent (npm ci not run): /vendor/hls.min.js not "
               "checked" % hls_js)
        return
    r = K.request(port, "GET", "/vendor/hls.min.js")
    c.expect(r.status == 200 and r.body == read(hls_js),
             "GET /vendor/hls.min.js: %d, %d bytes; expected 200 and the %d "
             "bytes of %s" % (r.status, len(r.body),
                              os.path.getsize(hls_js), hls_js))


# 5. Bad uploads

MAX_UPLOAD = 64 * 1024


def upload_leftovers(data):
    """Lists the files under videos/stream, and the files and folders
    under videos/.tmp. Returns the two lists."""
    return (K.list_files(os.path.join(data, "videos", "stream")),
            K.list_files(os.path.join(data, "videos", ".tmp"), folders=True))


def expect_nothing_left(ctx, data, port, before, label):
    """Checks what a rejected upload leaves: no new file under
    videos/stream, no temporary file under videos/.tmp (given a moment,
    because the server may remove it after responding), and no new video
    in the API."""
    deadline = time.monotonic() + 3
    while True:
        now = upload_leftovers(data)
        if now == before[:2] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    ctx.c.expect(now[0] == before[0], "%s: videos/stream holds %s, before "
                 "the request %s" % (label, now[0], before[0]))
    ctx.c.expect(now[1] == before[1], "%s: videos/.tmp holds %s after the "
                 "request, before it %s" % (label, now[1], before[1]))
    ids = api_ids(ctx, port)
    ctx.c.expect(ids == before[2], "%s: the API lists %s, before the request "
                 "%s" % (label, ids, before[2]))


def snapshot(ctx, data, port):
    return upload_leftovers(data) + (api_ids(ctx, port),)


def expect_rejected(ctx, r, status, label):
    """Checks that a response has the status (any 4xx when status is None)
    and a JSON error body."""
    if isinstance(status, int):
        ok = r is not None and r.status == status
        want = str(status)
    else:
        ok = r is not None and 400 <= r.status < 500
        want = "a 4xx"
    ctx.c.expect(ok, "%s: %s, expected %s" % (
        label, r.describe() if r is not None else "no response", want))
    if r is not None and 400 <= r.status < 500:
        ctx.c.expect(r.error_text(), "%s: %d with body %r, expected JSON "
                     "{\"error\": \"...\"}" % (label, r.status, r.body[:200]))


@case
def bad_uploads_leave_nothing_behind(ctx):
    c = ctx.c
    data = ctx.data_dir("run")
    server = ctx.serve(data, 0, "--max-upload-size", str(MAX_UPLOAD))
    port = server.port
    small = b"a small body that only a valid name would store\n"
    over = os.urandom(MAX_UPLOAD + 40 * 1024)
    form_type = "multipart/form-data; boundary=sinatra-test-boundary"
    form_over = K.multipart_body("file", "over-form.mp4", over,
                                 "sinatra-test-boundary")

    def pieces(data_, n=8192):
        return [data_[i:i + n] for i in range(0, len(data_), n)]

    attempts = [
        ("PUT of an empty body", 400, lambda: K.request(
            port, "PUT", "/stream/empty.mp4", body=b"")),
        ("chunked PUT of an empty body", 400, lambda: K.request_streamed(
            port, "PUT", "/stream/empty-chunked.mp4", [], [],
            chunked=True)[0]),
        ("PUT over --max-upload-size with Content-Length", 413,
         lambda: K.request_streamed(
             port, "PUT", "/stream/over.mp4",
             [("Content-Length", str(len(over)))], pieces(over))[0]),
        ("chunked PUT over --max-upload-size", 413,
         lambda: K.request_streamed(port, "PUT", "/stream/over-chunked.mp4",
                                    [], pieces(over), chunked=True)[0]),
        ("multipart POST with a file over --max-upload-size", 413,
         lambda: K.request(port, "POST", "/api/uploads", body=form_over,
                           headers={"Content-Type": form_type})),
        ("PUT with an Origin header of another site", 403,
         lambda: K.request(port, "PUT", "/stream/cross-site.mp4", body=small,
                           headers={"Origin": "http://other.invalid"})),
        ("PUT declaring 10 GiB, body not sent", 413,
         lambda: K.request_streamed(
             port, "PUT", "/stream/huge.mp4",
             [("Content-Length", str(10 << 30))], [], timeout=10)[0]),
    ]
    names = [
        ("/stream/..%2Fescape.mp4", 400, "'../' percent-encoded"),
        ("/stream/../escape.mp4", 400, "'../' in the path"),
        ("/stream/sub%2F..%2F..%2Fescape.mp4", 400, "'..' inside the name"),
        ("/stream//etc/sinatra-test", 400, "an absolute path"),
        ("/stream/%2Fetc%2Fsinatra-test", 400,
         "an absolute path, percent-encoded"),
        ("/stream/nul%00.mp4", 400, "a NUL byte"),
        ("/stream/line%0Abreak.mp4", 400, "a newline"),
        ("/stream/carriage%0Dreturn.mp4", 400, "a carriage return"),
        ("/stream/.hidden.mp4", 400, "a leading dot"),
        ("/stream/..", 400, "'..'"),
        ("/stream/%2E%2E", 400, "'..' percent-encoded"),
        ("/stream/", 400, "an empty name"),
        ("/stream/back%5Cslash.mp4", None, "a backslash"),
        ("/stream/bad%FFutf8.mp4", None, "invalid UTF-8"),
        ("/stream/" + "n" * 252 + ".mp4", None, "a 256-byte name"),
    ]
    for path, status, label in names:
        attempts.append(("PUT %s (%s)" % (path[:60], label), status,
                         lambda path=path: K.request(port, "PUT", path,
                                                     body=small)))

    for label, status, send in attempts:
        before = snapshot(ctx, data, port)
        try:
            r = send()
        except (OSError, http.client.HTTPException) as e:
            c.expect(False, "%s: the request failed: %s" % (label, e))
            continue
        expect_rejected(ctx, r, status, label)
        expect_nothing_left(ctx, data, port, before, label)
    c.expect(not os.path.exists("/etc/sinatra-test"),
             "/etc/sinatra-test exists after the absolute-path uploads")
    c.expect(not os.path.exists(os.path.join(data, "videos", "escape.mp4"))
             and not os.path.exists(os.path.join(data, "escape.mp4")),
             "a '../' upload wrote escape.mp4 outside videos/stream")

    # Bytes that are no media are either accepted (201) and failed later,
    # or rejected at once with 422 as docs/SERVER.md describes. The video
    # is failed in both cases, with a reason that names the upload.
    name = "notes.mp4"
    vid = K.video_id(name)
    r = K.request(port, "PUT", "/stream/" + name,
                  body=b"these are notes, not a video\n" * 40)
    c.expect(r.status in (201, 422), "PUT /stream/%s of text: %s, expected "
             "201 or 422" % (name, r.describe()))
    if r.status == 422:
        c.expect(name in (r.error_text() or ""), "PUT /stream/%s of text: "
                 "422 error %r does not name the file"
                 % (name, r.error_text()))
    try:
        v = K.wait_for_video(live_port(server), vid, K.finished, 60, "text upload")
    except AssertionError as e:
        c.require(False, str(e))
    c.expect(v.get("status") == "failed", "text upload: status %r, expected "
             "failed" % v.get("status"))
    error = v.get("error") or ""
    c.expect(name in error, "text upload: error %r does not name %s"
             % (error, name))
    c.expect(len(re.findall(r"[A-Za-z]{3,}", error.replace(name, ""))) >= 2,
             "text upload: error %r gives no cause" % error)
    c.expect(not v.get("playlist"), "text upload: failed video has playlist "
             "%r" % v.get("playlist"))
    c.expect(not K.list_files(os.path.join(data, "hls", vid)),
             "text upload: files under hls/%s: %s"
             % (vid, K.list_files(os.path.join(data, "hls", vid))))
    c.expect(not os.path.exists(os.path.join(data, "videos", "stream", name)),
             "text upload: videos/stream/%s is still there after the "
             "video failed" % name)
    ctx.stop(server)


# 6. Multipart upload

@case
def multipart_upload_works_like_put(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 2)
    port = server.port
    name = "bear form (2) \u00e9t\u00e9.mp4"
    boundary = "sinatra-test-%08x" % random.getrandbits(32)
    body = K.multipart_body("file", name, read(bear), boundary)
    ctype = "multipart/form-data; boundary=%s" % boundary
    r = K.request(port, "POST", "/api/uploads", body=body,
                  headers={"Content-Type": ctype})
    c.require(r.status == 201, "POST /api/uploads: %s, expected 201"
              % r.describe())
    body_json = r.json() or {}
    vid = K.video_id(name)
    c.expect(body_json.get("id") == vid and body_json.get("name") == name,
             "POST /api/uploads: id %r name %r, expected %s and %r"
             % (body_json.get("id"), body_json.get("name"), vid, name))
    status_url = str(body_json.get("status_url", ""))
    c.expect(status_url.endswith("/api/videos/" + vid),
             "POST /api/uploads: status_url %r, expected a URL ending in "
             "/api/videos/%s" % (status_url, vid))
    stored = os.path.join(data, "videos", "stream", name)
    c.expect(os.path.isfile(stored) and same_bytes(stored, bear),
             "POST /api/uploads: %s is missing or differs from the file "
             "sent" % stored)
    put_vid = upload(ctx, server, "bear put.mp4", bear)
    form = wait_ready(ctx, live_port(server), vid, "multipart upload")
    put = wait_ready(ctx, live_port(server), put_vid, "PUT upload")
    check_ready_fields(ctx, form, vid, name, bear, output_dir(ctx, data,
                                                              form))
    K.fetch_tree(c, port, data, form["playlist"], "multipart upload")
    P.compare_trees(c, output_dir(ctx, data, form), output_dir(ctx, data, put),
                    "multipart upload vs PUT of the same bytes")

    # A form without a file field, and a file name with a path.
    before = snapshot(ctx, data, port)
    bad = K.multipart_body("other", "x.mp4", b"data", boundary)
    r = K.request(port, "POST", "/api/uploads", body=bad,
                  headers={"Content-Type": ctype})
    expect_rejected(ctx, r, 400, "POST /api/uploads without a 'file' field")
    expect_nothing_left(ctx, data, port, before, "form without a file field")
    r = K.request(port, "POST", "/api/uploads", body=b"not a form",
                  headers={"Content-Type": "text/plain"})
    expect_rejected(ctx, r, 415, "POST /api/uploads with a text/plain body")
    evil = K.multipart_body("file", "../evil.mp4", b"data", boundary)
    r = K.request(port, "POST", "/api/uploads", body=evil,
                  headers={"Content-Type": ctype})
    c.expect(r.status in (201, 400), "POST /api/uploads with file name "
             "'../evil.mp4': %s, expected 400 or 201 under the base name"
             % r.describe())
    if r.status == 201:
        c.expect((r.json() or {}).get("name") == "evil.mp4",
                 "file name '../evil.mp4' stored as %r" % r.json())
    for p in (os.path.join(data, "videos", "evil.mp4"),
              os.path.join(data, "evil.mp4")):
        c.expect(not os.path.exists(p), "file name '../evil.mp4' wrote %s"
                 % p)
    ctx.stop(server)


# 7. Files put into videos/stream/ by other means

@case
def dropped_file_is_processed(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 2, "--scan-interval", "1")
    stream = os.path.join(data, "videos", "stream")
    os.makedirs(stream, exist_ok=True)
    name = "dropped clip.mp4"
    partial = os.path.join(data, "videos", "dropped.part")
    shutil.copyfile(bear, partial)
    os.rename(partial, os.path.join(stream, name))
    # A hidden file is never an upload.
    shutil.copyfile(bear, os.path.join(stream, ".hidden.mp4"))
    vid = K.video_id(name)
    v = wait_ready(ctx, live_port(server), vid, "dropped file", timeout=90)
    outdir = output_dir(ctx, data, v)
    check_ready_fields(ctx, v, vid, name, bear, outdir)
    K.fetch_tree(c, server.port, data, v["playlist"], "dropped file")
    check_output(ctx, outdir, bear, "dropped file")
    c.expect(api_ids(ctx, server.port) == [vid], "GET /api/videos lists %s, "
             "expected only %s (not the hidden file)"
             % (api_ids(ctx, server.port), vid))
    ctx.stop(server)


# 8. A worker killed in the middle of a chunk

@case
def killed_worker_gives_identical_output(ctx):
    c = ctx.c
    clip = ctx.crash_clip()
    name = "crash worker.mp4"
    reference = clean_run(ctx, name, clip)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 0, "--visibility-timeout", "6")
    first = ctx.worker(data, 1, "--visibility-timeout", "6")
    vid = upload(ctx, server, name, clip)
    try:
        v = K.wait_for_video(
            live_port(server), vid,
            lambda v: K.finished(v) or 0 < (v.get("progress") or 0) < 1,
            READY_TIMEOUT, "waiting for progress between 0 and 1",
            interval=0.05)
    except AssertionError as e:
        c.require(False, str(e))
    c.require(v.get("status") == "processing", "the video was %s before any "
              "kill could land (progress %r); the input is too short"
              % (v.get("status"), v.get("progress")))

    # A job builds its files in a scratch folder under hls/.tmp, so one
    # being there means the worker is inside a job.
    deadline = time.monotonic() + 10
    while not scratch_folders(data) and time.monotonic() < deadline:
        time.sleep(0.02)
    running = scratch_folders(data)
    c.expect(running, "no job's scratch folder appeared under hls/.tmp "
             "within 10 s of progress %r" % v.get("progress"))
    time.sleep(0.5)
    first.kill()
    c.note("killed the worker (pid %d) with SIGKILL at progress %.3f, "
           "inside the job of %s" % (first.pid, v.get("progress"), running))

    second = ctx.worker(data, 1, "--visibility-timeout", "6")
    v = wait_ready(ctx, live_port(server), vid, "after the worker was "
                   "killed")
    c.expect("done in" in second.log_text(), "the second worker finished no "
             "job; its log: %s" % second.log_tail())
    P.compare_trees(c, reference, output_dir(ctx, data, v),
                    "clean run vs run with a worker killed")
    check_queue_empty(ctx, data, "after the worker crash")
    note_leftovers(ctx, data)
    ctx.stop(second)
    ctx.stop(server)


@case
def sigterm_hands_running_job_back(ctx):
    c = ctx.c
    clip = ctx.looped_clip(30)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 0, "--visibility-timeout", "6")
    first = ctx.worker(data, 1, "--visibility-timeout", "6")
    vid = upload(ctx, server, "stopped worker.mp4", clip)
    deadline = time.monotonic() + 60
    while not scratch_folders(data) and time.monotonic() < deadline:
        time.sleep(0.02)
    c.require(scratch_folders(data), "no job's scratch folder appeared under "
              "hls/.tmp within 60 s of the upload")

    # A stopped worker gives its job back, so the next worker can take it
    # without waiting for the 6 s visibility timeout.
    t0 = time.monotonic()
    ctx.stop(first)
    c.note("the worker stopped %.2f s after SIGTERM, inside a job"
           % (time.monotonic() - t0))
    hidden = hidden_messages(data, 2)
    c.expect(hidden == 0, "after the worker stopped, %d messages stay hidden "
             "for more than 2 s: the running job was not given back" % hidden)
    c.expect(not scratch_folders(data), "after the worker stopped, hls/.tmp "
             "still holds %s" % scratch_folders(data))
    second = ctx.worker(data, 1, "--visibility-timeout", "6")
    v = wait_ready(ctx, live_port(server), vid, "after the worker stopped")
    K.fetch_tree(c, server.port, data, v["playlist"], "after the worker "
                 "stopped")
    check_queue_empty(ctx, data, "after the worker stopped")
    ctx.stop(second)
    ctx.stop(server)


# 9. The server killed in the middle of an upload

@case
def killed_upload_leaves_nothing(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 1, "--scan-interval", "1")
    name = "cut upload.mp4"
    vid = K.video_id(name)
    total = 64 << 20
    sock = K.raw_connection(server.port)
    sent = 0
    try:
        head = ("PUT /stream/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Length: %d\r\n\r\n"
                % (K.quote_name(name), K.HOST, server.port, total))
        sock.sendall(head.encode("ascii"))
        block = os.urandom(64 * 1024)
        for _ in range(32):
            sock.sendall(block)
            sent += len(block)
            time.sleep(0.02)
        tmp = os.path.join(data, "videos", ".tmp")
        deadline = time.monotonic() + 5
        while not K.list_files(tmp) and time.monotonic() < deadline:
            time.sleep(0.05)
        c.note("%d of %d bytes sent; videos/.tmp holds %s when the server is "
               "killed" % (sent, total, K.list_files(tmp)))
        server.kill()
    finally:
        sock.close()

    server = ctx.serve(data, 1, "--scan-interval", "1")
    time.sleep(2.5)         # two scans of videos/stream/
    stream = K.list_files(os.path.join(data, "videos", "stream"))
    c.expect(name not in stream, "after the restart: videos/stream holds %s"
             % stream)
    r = K.api_video(server.port, vid)
    c.expect(r.status == 404, "after the restart: GET /api/videos/%s: %s, "
             "expected 404" % (vid, r.describe()))
    c.expect(vid not in api_ids(ctx, server.port), "after the restart: "
             "GET /api/videos lists the cut upload")
    note_leftovers(ctx, data)
    upload(ctx, server, name, bear)
    v = wait_ready(ctx, live_port(server), vid, "upload after the restart")
    K.fetch_tree(c, server.port, data, v["playlist"], "upload after the "
                 "restart")
    ctx.stop(server)


# 10. The server and its worker threads killed during processing

@case
def killed_server_gives_identical_output(ctx):
    c = ctx.c
    clip = ctx.crash_clip()
    name = "crash server.mp4"
    reference = clean_run(ctx, name, clip)
    data = ctx.data_dir("run")
    opts = ("--visibility-timeout", "5")
    current = {"server": ctx.serve(data, 1, *opts)}

    def port_of():
        s = current["server"]
        return s.port if s is not None and s.alive() else None

    vid = upload(ctx, current["server"], name, clip)
    watch = PlaylistWatch(ctx, vid, port_of).start()
    kills = []
    try:
        # Each kill waits for a job to finish after the previous kill, and
        # then for a pause. The short pause lands near the playlist rewrite
        # that follows a finished job, and the longer ones inside the next
        # job.
        for pause in (1.0, 0.1, 1.5):
            last = kills[-1] if kills else 0
            try:
                video = K.wait_for_video(
                    port_of, vid,
                    lambda v: K.finished(v) or
                    (v.get("progress") or 0) > last,
                    READY_TIMEOUT, "waiting for progress above %s" % last,
                    interval=0.05)
            except AssertionError as e:
                c.require(False, str(e))
            time.sleep(pause)
            video = K.api_video(port_of(), vid).json() or {}
            if video.get("status") != "processing":
                c.note("the video was %s before kill %d"
                       % (video.get("status"), len(kills) + 1))
                break
            kills.append(video.get("progress"))
            current["server"].kill()
            current["server"] = None
            current["server"] = ctx.serve(data, 1, *opts)
        v = wait_ready(ctx, port_of, vid, "after %d server kills" % len(kills),
                       timeout=READY_TIMEOUT + 60)
    finally:
        watch.stop()
    c.note("killed the server %d times, at progress %s; %d playlist fetches"
           % (len(kills), kills, watch.fetches))
    c.expect(len(kills) >= 2, "only %d kills landed while processing (at "
             "progress %s); the input is too short" % (len(kills), kills))
    for p in watch.report():
        c.expect(False, "playlist fetched during the run: %s" % p)
    P.compare_trees(c, reference, output_dir(ctx, data, v),
                    "clean run vs run with the server killed %d times"
                    % len(kills))
    K.fetch_tree(c, port_of(), data, v["playlist"], "after the kills")
    check_queue_empty(ctx, data, "after the server kills")
    note_leftovers(ctx, data)
    ctx.stop(current["server"])


# 11. Concurrent uploads with worker processes

@case
def concurrent_uploads_finish_once(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    clip = ctx.looped_clip(10)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 1)
    workers = [ctx.worker(data, 1), ctx.worker(data, 1)]
    uploads = [("together a.mp4", bear), ("together b.mp4", bear),
               ("together c (3).mp4", bear), ("together long.mp4", clip)]
    responses = {}
    barrier = threading.Barrier(len(uploads))

    def send(name, path):
        barrier.wait(timeout=30)
        try:
            responses[name] = K.put_file(server.port, name, path)
        except Exception as e:        # reported below, per upload
            responses[name] = e

    threads = [threading.Thread(target=send, args=u) for u in uploads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    ids = {}
    for name, path in uploads:
        r = responses.get(name)
        ok = isinstance(r, K.Response) and r.status == 201
        c.expect(ok, "concurrent PUT of %r: %s, expected 201" % (
            name, r.describe() if isinstance(r, K.Response) else r))
        if ok:
            ids[name] = K.video_id(name)
            c.expect((r.json() or {}).get("id") == ids[name],
                     "concurrent PUT of %r: id %r, expected %s"
                     % (name, (r.json() or {}).get("id"), ids[name]))
    c.require(ids, "no upload was accepted")
    ready = {}
    for name, vid in ids.items():
        ready[name] = wait_ready(ctx, live_port(server), vid,
                                 "concurrent upload %r" % name)
    c.expect(api_ids(ctx, server.port) == sorted(ids.values()),
             "GET /api/videos lists %s, expected %s"
             % (api_ids(ctx, server.port), sorted(ids.values())))
    check_queue_empty(ctx, data, "after the concurrent uploads")
    for w in workers:
        ctx.stop(w)
    ctx.stop(server)

    logs = [p.log_text() for p in [server] + workers]
    done_by = [len(re.findall(r"done in", text)) for text in logs]
    c.note("jobs finished by the server's thread and the two workers: %s"
           % done_by)
    for name, vid in ids.items():
        n = sum(len(re.findall(r"\[%s [^\]]*\] video ready" % vid, text))
                for text in logs)
        c.expect(n == 1, "%r (%s): %d 'video ready' log lines over the "
                 "server and both workers, expected 1" % (name, vid, n))
    for name, path in uploads:
        if name in ready:
            check_output(ctx, output_dir(ctx, data, ready[name]), path,
                         "concurrent upload %r" % name)
    db = sqlite3.connect(os.path.join(data, "sinatra.db"))
    try:
        rows = db.execute("SELECT id, status FROM videos").fetchall()
    finally:
        db.close()
    c.expect(sorted(rows) == sorted((vid, "ready") for vid in ids.values()),
             "videos table holds %s, expected each upload once, ready"
             % sorted(rows))


# 12. JSON logs

@case
def json_logs_carry_video_ids(ctx):
    c = ctx.c
    bear = ctx.corpus(BEAR)
    data = ctx.data_dir("run")
    server = ctx.serve(data, 1, "--log-format", "json")
    worker = ctx.worker(data, 1, "--log-format", "json")
    vid = upload(ctx, server, "json log.mp4", bear)
    bad_vid = K.video_id("json notes.mp4")
    K.request(server.port, "PUT", "/stream/json%20notes.mp4",
              body=b"not a video\n" * 50)
    K.request(server.port, "PUT", "/stream/.rejected.mp4", body=b"x")
    wait_ready(ctx, live_port(server), vid, "upload")
    try:
        K.wait_for_video(live_port(server), bad_vid, K.finished, 60,
                         "text upload")
    except AssertionError as e:
        c.expect(False, str(e))
    ctx.stop(worker)
    ctx.stop(server)

    lines = []
    for proc in (server, worker):
        for n, line in enumerate(proc.log_text().splitlines(), 1):
            if line.strip():
                lines.append((proc.label, n, line))
    bad = []
    events = []
    for label, n, line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or obj.get("level") not in LEVELS or \
                not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                             str(obj.get("time"))) or \
                not isinstance(obj.get("message"), str) or \
                not obj["message"]:
            bad.append("%s line %d: %r" % (label, n, line[:200]))
            continue
        events.append(obj)
    c.expect(not bad, "%d log lines are not JSON objects with a level (%s) "
             "and a message; first: %s" % (len(bad), "/".join(LEVELS),
                                           "; ".join(bad[:3])))
    c.expect(any(K.SERVING_RE.search(e["message"]) for e in events),
             "no JSON line carries the 'serving http://HOST:PORT/' message")
    job_lines = [e for e in events if e["message"].startswith("done in")]
    c.expect(job_lines, "no 'done in' job line in the JSON logs")
    for e in job_lines:
        c.expect(e.get("video") == vid and e.get("job"),
                 "job line %s lacks the video id %s or a job id" % (
                     json.dumps(e), vid))
    ready = [e for e in events if e["message"] == "video ready"]
    c.expect(len(ready) == 1 and ready[0].get("video") == vid,
             "'video ready' lines: %s, expected one with video %s"
             % ([json.dumps(e) for e in ready], vid))
    failed = [e for e in events if e.get("video") == bad_vid]
    c.expect(any(e["level"] in ("warn", "error") for e in failed),
             "no warn or error line carries the failed upload's id %s"
             % bad_vid)


# ---------------------------------------------------------------------------

def main(argv):
    if "--list" in argv:
        for fn in CASES:
            print(fn.__name__)
        return 0

    binary = None
    names = []
    i = 0
    while i < len(argv):
        if argv[i] == "--binary" and i + 1 < len(argv):
            binary = argv[i + 1]
            i += 2
        else:
            names.append(argv[i])
            i += 1

    if binary is None or len(names) != 1:
        print("usage: test_serve.py --list | --binary PATH CASE",
              file=sys.stderr)
        return 2
    table = {fn.__name__: fn for fn in CASES}
    fn = table.get(names[0])
    if fn is None:
        print("unknown case %s" % names[0], file=sys.stderr)
        return 2

    for tool in ("ffmpeg", "ffprobe"):
        if not H.tool_ok(tool):
            print("SKIP: %s not found on PATH" % tool)
            return 77
    if not os.path.isdir(P.media_dir()):
        print("SKIP: media corpus folder %s is absent (set SN_MEDIA_DIR)"
              % P.media_dir())
        return 77
    binary = os.path.abspath(binary)
    if not os.access(binary, os.X_OK):
        print("FAIL: binary %s is not an executable file" % binary)
        return 1

    checks = H.Checks()
    ctx = Ctx(binary, checks)
    t0 = time.monotonic()
    try:
        fn(ctx)
    except H.CaseSkipped as e:
        print("SKIP: %s" % e)
        return 77
    except H.CaseFailed as e:
        print("stopped: %s" % str(e).splitlines()[0][:300])
    except AssertionError as e:
        checks.expect(False, str(e))
    except Exception:
        traceback.print_exc()
        checks.failures.append("test raised an exception")
    finally:
        ctx.cleanup()

    dt = time.monotonic() - t0
    if checks.failures:
        print("%s: FAILED %d of %d checks (%.1f s)"
              % (fn.__name__, len(checks.failures), checks.n_checks, dt))
        return 1
    print("%s: passed %d checks (%.1f s)" % (fn.__name__, checks.n_checks, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
