#!/usr/bin/env python3
"""Benchmark: `sinatra process` against one ffmpeg command line building the
same HLS ladder (H.264 rungs with libx264 + one AAC rendition, fMP4 segments).

Both tools run on the same 63 s 1080p input in the same invocation of this
script, alternating, --runs times (the order is rotated every run so neither
tool always runs first on a warm or cold machine). For every run it measures

  * wall time;
  * CPU use: (user + sys) / wall from os.wait4()'s rusage of the child (it
    includes the child's own waited-for children, e.g. sinatra's forked
    workers), as a percentage (200 % = both cores of a 2-core machine);
  * peak memory: the sum of VmRSS over the child's process tree, sampled from
    /proc every 50 ms (shared pages of forked workers are counted once per
    process, so this over-counts a fork()ed pool); ru_maxrss is printed too
    (the largest single process, not a sum);
  * time until every rung has its first complete segment: the output folders
    are polled every 20 ms; a rung's first segment counts as complete when its
    media playlist lists it or its second segment file exists. For sinatra the
    "first_segments" JSON event is the primary figure and the poll (of the
    `.OUT.partial-PID` working folder) cross-checks it;

and once per tool (on the first run's output), for every rung:

  * PSNR (average Y, from the mean MSE, as ffmpeg's psnr filter prints it) and
    SSIM (All) against the source: the rung is decoded through its playlist,
    the source is scaled to the rung's size with the same scaler (swscale,
    bicubic, into the rung's own pixel format and range) and both are compared
    frame by frame after resetting timestamps to start at 0;
  * the actual bit rate (init + segment bytes over the playlist duration),
    because a PSNR difference only means something at equal bit rate.

Sinatra's rungs do not land on ffmpeg's bit rates (each chunk restarts
x264's VBV buffer), so after the timed runs ffmpeg runs once more with every
rung's maxrate/bufsize scaled by sinatra's/ffmpeg's measured bit rate (the
"rate-matched anchor", --no-matched skips it); ffmpeg's PSNR at sinatra's
exact bit rate is interpolated between the two ffmpeg points and the
quality target is judged against that. --x264-params adds x264 options to
the ffmpeg side (e.g. mbtree=0, which sinatra uses).

It prints raw figures, medians and sinatra/ffmpeg ratios, checks the
targets, and writes everything to WORK/results-*.json. The machine's CPU
use by other processes during each run ("others' CPU %") is printed too:
on a shared machine wall-time ratios mean little without it; CPU seconds,
bit rates and PSNR barely move with load.

--profile adds a profile of sinatra: `perf record -g` when
`perf stat -e instructions true` counts instructions, else
`valgrind --tool=callgrind` on a 10 s cut of the input with --workers 1,
summarised by library (libavcodec decode, swscale, libx264, muxers, ...).

Python 3 standard library only. Needs ffmpeg and ffprobe on PATH (and
valgrind or perf for --profile).
"""

import argparse
import collections
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

DEFAULT_SOURCE = "/work/shared/media/gopro-max-heromode.mp4"
DEFAULT_WORK = "/tmp/sinatra-bench"
DEFAULT_SINATRA = "/tmp/bench-build/sinatra"

# (short side, width, height, maxrate in kbit/s), ascending like --rungs.
RUNGS = [
    (360, 640, 360, 365),
    (540, 960, 540, 2000),
    (720, 1280, 720, 4500),
    (1080, 1920, 1080, 7800),
]
CRF = 21
PRESET = "veryfast"
KEYFRAME_S = 2
SEGMENT_S = 6
AUDIO_KBPS = 128
INPUT_SECONDS = 63
PROFILE_SECONDS = 10

POLL_S = 0.020
MEM_POLL_S = 0.050
PAGE = os.sysconf("SC_PAGE_SIZE")

MATCHED = "ffmpeg-ratematched"

# Targets.
FIRST_SEGMENT_TARGET_S = 5.0
PSNR_TOLERANCE_DB = 0.1


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def q(cmd):
    return shlex.join(str(c) for c in cmd)


# --------------------------------------------------------------------------
# Input preparation


def input_command(source, out):
    """The one ffmpeg command that builds the cached benchmark input."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error",
        "-stream_loop", "5", "-i", source,
        "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "-1",
        "-map_chapters", "-1", "-t", str(INPUT_SECONDS),
        # setsar=1: the footage is 848x480 (DAR 53:30), so a bare scale
        # would keep the display aspect with SAR 159:160 and both tools
        # would then (rightly) make 1908x1080-style rungs.
        "-vf", "scale=1920:1080,setsar=1",
        "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-g", "60",
        "-c:a", "aac", "-b:a", "192k", "-ac", "2",
        "-movflags", "+faststart", "-f", "mp4", out,
    ]


def cut_command(src, out, seconds):
    # The input has a keyframe every 60 frames (about 2 s), so a stream copy
    # cut ends on a GOP boundary and needs no re-encode.
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-i", src, "-map", "0", "-t", str(seconds), "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", out]


def cached_build(cmd, out):
    """Runs cmd to make out unless out exists and was made by the same cmd."""
    stamp = out + ".cmd"
    text = q(cmd)
    if os.path.exists(out) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == text:
                log(f"cached: {out}")
                return
    tmp = out + ".tmp.mp4"
    log(f"building {out}:\n  {q(cmd[:-1] + [tmp])}")
    t0 = time.monotonic()
    subprocess.run(cmd[:-1] + [tmp], check=True)
    os.replace(tmp, out)
    with open(stamp, "w") as f:
        f.write(text + "\n")
    log(f"  done in {time.monotonic() - t0:.1f} s")


def ffprobe_json(path, *args):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def describe_input(path):
    info = ffprobe_json(path, "-show_format", "-show_streams")
    desc = {"path": path, "duration_s": float(info["format"]["duration"]),
            "bytes": os.path.getsize(path), "streams": []}
    for s in info["streams"]:
        desc["streams"].append({k: s.get(k) for k in (
            "codec_type", "codec_name", "width", "height", "pix_fmt",
            "color_range", "r_frame_rate", "nb_frames", "sample_rate",
            "channels", "bit_rate")})
    return desc


# --------------------------------------------------------------------------
# The two commands


def ffmpeg_ladder_command(inp, out, rate_scale=None, x264_params=None):
    """The ffmpeg ladder. rate_scale, one factor per rung, multiplies the
    maxrate/bufsize (for the rate-matched anchor only)."""
    n = len(RUNGS)
    graph = [f"[0:v:0]split={n}" + "".join(f"[i{i}]" for i in range(n))]
    for i, (_, w, h, _) in enumerate(RUNGS):
        # Same scaler, range and pixel format as sinatra's video graph
        # (src/media/filters.c): bicubic, limited range, yuv420p, square
        # pixels. Without out_range=tv ffmpeg would keep the full-range
        # (yuvj420p) source range and the two ladders would differ.
        graph.append(f"[i{i}]scale={w}:{h}:flags=bicubic:out_range=tv,"
                     f"format=yuv420p,setsar=1[o{i}]")
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error",
           "-i", inp, "-filter_complex", ";".join(graph)]
    for i in range(n):
        cmd += ["-map", f"[o{i}]"]
    cmd += ["-map", "0:a:0",
            "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF),
            "-sc_threshold", "0"]
    if x264_params:
        cmd += ["-x264-params", x264_params]
    cmd += ["-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_S})"]
    for i, (_, _, _, rate) in enumerate(RUNGS):
        if rate_scale:
            rate = int(round(rate * rate_scale[i]))
        cmd += [f"-maxrate:v:{i}", f"{rate}k", f"-bufsize:v:{i}", f"{2 * rate}k"]
    cmd += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2", "-ar", "48000",
            "-f", "hls", "-hls_time", str(SEGMENT_S),
            "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", os.path.join(out, "%v", "seg_%05d.m4s"),
            "-master_pl_name", "master.m3u8",
            "-var_stream_map",
            " ".join([f"v:{i},agroup:aud,name:{s}p"
                      for i, (s, _, _, _) in enumerate(RUNGS)]
                     + ["a:0,agroup:aud,name:audio"]),
            os.path.join(out, "%v", "index.m3u8")]
    return cmd


def sinatra_command(binary, inp, out, mode, workers=None):
    cmd = [binary, "process", inp, "-o", out,
           "--rungs", ",".join(str(r[0]) for r in RUNGS), "--json"]
    if mode:
        cmd += ["--worker-mode", mode]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd


# --------------------------------------------------------------------------
# Running one command under observation


def process_tree(root):
    """PIDs of root and all its descendants, from /proc/*/stat."""
    children = collections.defaultdict(list)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the
        # last ')'.
        rest = stat[stat.rfind(b")") + 2:].split()
        children[int(rest[1])].append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_rss(root):
    total, n = 0, 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
                n += 1
        except (OSError, IndexError, ValueError):
            pass
    return total, n


def cpu_times():
    """(busy, steal) seconds of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal ...
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    steal = v[7] if len(v) > 7 else 0
    return busy / hz, steal / hz


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def playlist_segments(text):
    """Segment URIs of a media playlist, in order (without query strings)."""
    segs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            segs.append(line.split("?")[0])
    return segs


def first_segment_complete(rung_dir, playlist_only=False):
    """How the rung's first segment is known to be complete (None if not
    yet): its media playlist lists it, or (ffmpeg, which writes segments one
    after the other) the second segment file exists. Sinatra's chunk jobs
    write segments out of order under their final names, so for it only the
    playlist counts."""
    text = read_text(os.path.join(rung_dir, "index.m3u8"))
    if text and playlist_segments(text):
        return "playlist"
    if playlist_only:
        return None
    try:
        names = os.listdir(rung_dir)
    except OSError:
        return None
    segs = sorted(n for n in names if n.startswith("seg_"))
    if len(segs) >= 2 and segs[0].startswith("seg_00000"):
        return "second-file"
    return None


class Watcher:
    """Polls output folders (20 ms) and the process tree's RSS (50 ms)."""

    def __init__(self, out, rung_names, partial, playlist_only=False):
        self.playlist_only = playlist_only
        self.out = out
        self.parent = os.path.dirname(os.path.abspath(out))
        self.base = os.path.basename(os.path.abspath(out))
        self.partial = partial
        self.rung_names = rung_names
        self.first = {}          # rung -> (seconds, how)
        self.master_s = None
        self.peak_rss = 0
        self.peak_procs = 0
        self.samples = 0
        self.stop = threading.Event()

    def dirs(self):
        dirs = [self.out]
        if self.partial:
            prefix = f".{self.base}.partial-"
            try:
                dirs += [os.path.join(self.parent, n)
                         for n in os.listdir(self.parent)
                         if n.startswith(prefix)]
            except OSError:
                pass
        return dirs

    def poll_files(self, t0):
        while not self.stop.is_set():
            now = time.monotonic() - t0
            if len(self.first) < len(self.rung_names) or self.master_s is None:
                for d in self.dirs():
                    if self.master_s is None and os.path.exists(
                            os.path.join(d, "master.m3u8")):
                        self.master_s = now
                    for r in self.rung_names:
                        if r not in self.first:
                            how = first_segment_complete(
                                os.path.join(d, r), self.playlist_only)
                            if how:
                                self.first[r] = (now, how)
            else:
                return
            self.stop.wait(POLL_S)

    def poll_mem(self, pid):
        while not self.stop.is_set():
            rss, n = tree_rss(pid)
            self.samples += 1
            if rss > self.peak_rss:
                self.peak_rss = rss
            self.peak_procs = max(self.peak_procs, n)
            self.stop.wait(MEM_POLL_S)


def run_observed(label, cmd, out, log_dir, partial=False, want_json=False):
    """Runs cmd, returns a dict of measurements."""
    rung_names = [f"{r[0]}p" for r in RUNGS]
    for d in [out] + [os.path.join(os.path.dirname(out), n)
                      for n in os.listdir(os.path.dirname(out))
                      if n.startswith(f".{os.path.basename(out)}.partial-")]:
        shutil.rmtree(d, ignore_errors=True)
    if not partial:
        for r in rung_names + ["audio"]:
            os.makedirs(os.path.join(out, r), exist_ok=True)
    stderr_path = os.path.join(log_dir, f"{label}.stderr")
    stdout_path = os.path.join(log_dir, f"{label}.stdout")
    watcher = Watcher(out, rung_names, partial, playlist_only=partial)
    events = []

    log(f"[{label}] {q(cmd)}")
    with open(stderr_path, "wb") as err:
        busy0, steal0 = cpu_times()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err)
        threads = [threading.Thread(target=watcher.poll_files, args=(t0,),
                                    daemon=True),
                   threading.Thread(target=watcher.poll_mem, args=(proc.pid,),
                                    daemon=True)]

        def read_stdout():
            with open(stdout_path, "wb") as sink:
                for line in proc.stdout:
                    now = time.monotonic() - t0
                    sink.write(line)
                    if not want_json:
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(obj, dict):
                        events.append((now, obj))

        reader = threading.Thread(target=read_stdout, daemon=True)
        for t in threads + [reader]:
            t.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        busy1, steal1 = cpu_times()
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(timeout=10)
        # Give the file poller one last look (the output may have been
        # renamed into place just before exit).
        watcher.stop.set()
        for t in threads:
            t.join(timeout=5)
    if len(watcher.first) < len(rung_names):
        for r in rung_names:
            if r not in watcher.first and first_segment_complete(
                    os.path.join(out, r), partial):
                watcher.first[r] = (wall, "after-exit")

    res = {
        "label": label, "command": q(cmd), "rc": proc.returncode,
        "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "cpu_pct": 100.0 * (ru.ru_utime + ru.ru_stime) / wall,
        "peak_tree_rss_mb": watcher.peak_rss / 2**20,
        "peak_tree_procs": watcher.peak_procs,
        "mem_samples": watcher.samples,
        "ru_maxrss_mb": ru.ru_maxrss / 1024.0,
        # CPU the rest of the machine used meanwhile (other users' jobs, this
        # script's samplers), as a percentage of one core; and steal time.
        "others_cpu_pct": max(0.0, 100.0 * ((busy1 - busy0)
                                            - (ru.ru_utime + ru.ru_stime))
                              / wall),
        "steal_pct": 100.0 * (steal1 - steal0) / wall,
        "first_segment_polled_s": {r: v[0] for r, v in watcher.first.items()},
        "first_segment_polled_how": {r: v[1] for r, v in watcher.first.items()},
        "master_appeared_s": watcher.master_s,
        "stderr_file": stderr_path, "stdout_file": stdout_path,
    }
    polled = [watcher.first.get(r, (None,))[0] for r in rung_names]
    res["first_segment_all_polled_s"] = (
        max(polled) if all(p is not None for p in polled) else None)
    if want_json:
        ev = [o for _, o in events]
        res["json_events"] = collections.Counter(
            str(o.get("event")) for o in ev)
        fs = [(t, o) for t, o in events if o.get("event") == "first_segments"]
        if fs:
            t, o = fs[0]
            res["first_segments_event_s"] = o.get("elapsed_s")
            res["first_segments_event_arrival_s"] = t
            res["first_segments_event"] = o
        else:
            res["first_segments_event_s"] = None
        res["json_non_event_lines"] = sum(1 for o in ev if "event" not in o)
        last = [o for o in ev if o.get("event") in ("done", "finished",
                                                    "complete", "error")]
        if last:
            res["final_event"] = last[-1]
    if proc.returncode != 0:
        tail = (read_text(stderr_path) or "")[-2000:]
        res["stderr_tail"] = tail
        log(f"[{label}] exit {proc.returncode}; stderr tail:\n{tail}")
    res["first_segment_s"] = (res.get("first_segments_event_s")
                              if want_json and res.get("first_segments_event_s")
                              is not None else res["first_segment_all_polled_s"])
    log(f"[{label}] rc={proc.returncode} wall={wall:.1f}s cpu={res['cpu_pct']:.0f}% "
        f"peakRSS(tree)={res['peak_tree_rss_mb']:.0f}MiB "
        f"first-seg={fmt(res['first_segment_s'], '.2f')}s")
    return res


# --------------------------------------------------------------------------
# Output checks: playlists, bit rate, quality


def parse_master(path):
    """[(uri, width, height, bandwidth)] of the video variants."""
    text = read_text(path) or ""
    out, pending = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = line.split(":", 1)[1]
            res = re.search(r"RESOLUTION=(\d+)x(\d+)", attrs)
            bw = re.search(r"(?:^|,)BANDWIDTH=(\d+)", attrs)
            pending = (int(res.group(1)) if res else None,
                       int(res.group(2)) if res else None,
                       int(bw.group(1)) if bw else None)
        elif line and not line.startswith("#") and pending:
            if pending[0]:
                out.append((line, pending[0], pending[1], pending[2]))
            pending = None
    return out


def rung_bitrate(playlist):
    text = read_text(playlist) or ""
    base = os.path.dirname(playlist)
    dur, files = 0.0, []
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    if init:
        files.append(init.group(1))
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            dur += float(line[8:].split(",")[0])
    files += playlist_segments(text)
    size = sum(os.path.getsize(os.path.join(base, f)) for f in dict.fromkeys(files)
               if os.path.exists(os.path.join(base, f)))
    segs = playlist_segments(text)
    durs = [float(l[8:].split(",")[0]) for l in text.splitlines()
            if l.startswith("#EXTINF:")]
    seg_kbps = [os.path.getsize(os.path.join(base, f)) * 8 / d / 1000
                for f, d in zip(segs, durs)
                if d > 0 and os.path.exists(os.path.join(base, f))]
    return {"duration_s": dur, "bytes": size, "segments": len(segs),
            "segment_kbps": [round(x) for x in seg_kbps],
            "peak_segment_kbps": max(seg_kbps) if seg_kbps else None,
            "kbps": size * 8 / dur / 1000 if dur else None,
            "endlist": "#EXT-X-ENDLIST" in text}


def video_props(playlist):
    info = ffprobe_json(playlist, "-select_streams", "v:0", "-show_entries",
                        "stream=width,height,pix_fmt,color_range,profile,level")
    s = info["streams"][0] if info.get("streams") else {}
    return s


def keyframe_times(playlist, limit_s=20):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame",
         "nokey", "-show_entries", "frame=pts_time", "-read_intervals",
         f"%+{limit_s}", "-of", "csv=p=0", playlist],
        capture_output=True, text=True).stdout
    times = []
    for line in out.splitlines():
        m = re.match(r"\s*(-?[0-9.]+)", line)
        if m:
            times.append(float(m.group(1)))
    return times


def quality(out_dir, source, work, label, scaler):
    """PSNR/SSIM and bit rate of every video rung of one output folder."""
    master = os.path.join(out_dir, "master.m3u8")
    variants = parse_master(master)
    if not variants:
        return {"error": f"no video variants in {master}"}
    rungs = []
    inputs, graph = [], []
    n = len(variants)
    stats = []
    for i, (uri, w, h, bw) in enumerate(variants):
        pl = os.path.join(out_dir, uri)
        props = video_props(pl)
        w, h = int(props.get("width", w)), int(props.get("height", h))
        pix = props.get("pix_fmt", "yuv420p")
        rng = "pc" if (props.get("color_range") == "pc"
                       or pix.startswith("yuvj")) else "tv"
        kf = keyframe_times(pl)
        intervals = [round(b - a, 3) for a, b in zip(kf, kf[1:])]
        r = {"uri": uri, "width": w, "height": h, "pix_fmt": pix,
             "color_range": rng, "profile": props.get("profile"),
             "level": props.get("level"), "master_bandwidth": bw,
             "keyframe_intervals_first_20s": intervals}
        r.update(rung_bitrate(pl))
        rungs.append(r)
        inputs += ["-i", pl]
        psnr_f = os.path.join(work, f"{label}-{h}p.psnr.log")
        ssim_f = os.path.join(work, f"{label}-{h}p.ssim.log")
        stats.append((psnr_f, ssim_f))
        graph.append(f"[{i}:v]setpts=PTS-STARTPTS,split[d{i}a][d{i}b]")
        graph.append(f"[s{i}]scale={w}:{h}:flags={scaler}:out_range={rng},"
                     f"format={pix},setpts=PTS-STARTPTS,split[r{i}a][r{i}b]")
        graph.append(f"[d{i}a][r{i}a]psnr=stats_file={psnr_f}")
        graph.append(f"[d{i}b][r{i}b]ssim=stats_file={ssim_f}")
    graph.insert(0, f"[{n}:v]split={n}" + "".join(f"[s{i}]" for i in range(n)))
    cmd = (["ffmpeg", "-hide_banner", "-nostdin", "-v", "info"] + inputs
           + ["-i", source, "-filter_complex", ";".join(graph), "-an",
              "-f", "null", "-"])
    log(f"[quality {label}] {q(cmd)}")
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log(f"[quality {label}] {time.monotonic() - t0:.0f} s, rc={p.returncode}")
    if p.returncode != 0:
        return {"error": p.stderr[-2000:], "rungs": rungs, "command": q(cmd)}
    for r, (psnr_f, ssim_f) in zip(rungs, stats):
        mse, ssim, frames = [], [], 0
        for line in (read_text(psnr_f) or "").splitlines():
            m = re.search(r"mse_y:([0-9.]+)", line)
            if m:
                mse.append(float(m.group(1)))
        for line in (read_text(ssim_f) or "").splitlines():
            m = re.search(r"All:([0-9.]+)", line)
            if m:
                ssim.append(float(m.group(1)))
        frames = len(mse)
        if mse:
            import math
            mean = sum(mse) / len(mse)
            r["psnr_y_db"] = (10 * math.log10(255 ** 2 / mean)
                              if mean > 0 else float("inf"))
        r["ssim_all"] = sum(ssim) / len(ssim) if ssim else None
        r["frames_compared"] = frames
    # ffmpeg's own summary lines, as printed (same figures, for the record).
    r_summ = re.findall(r"(PSNR y:[0-9.inf]+ .*|SSIM Y:.*)", p.stderr)
    return {"rungs": rungs, "command": q(cmd), "ffmpeg_summary": r_summ}


def psnr_at_rate(p1, p2, kbps):
    """ffmpeg's PSNR at kbps, interpolated linearly in log(bit rate) between
    its two ladder points p1 and p2 (dicts with kbps and psnr_y_db)."""
    import math
    if not p1 or not p2 or kbps is None:
        return None
    x1, x2 = p1.get("kbps"), p2.get("kbps")
    y1, y2 = p1.get("psnr_y_db"), p2.get("psnr_y_db")
    if None in (x1, x2, y1, y2) or abs(math.log(x2 / x1)) < 1e-3:
        return None
    t = math.log(kbps / x1) / math.log(x2 / x1)
    return y1 + t * (y2 - y1)


# --------------------------------------------------------------------------
# Profile


def perf_counts_instructions():
    if not shutil.which("perf"):
        return False, "perf not installed"
    p = subprocess.run(["perf", "stat", "-e", "instructions", "true"],
                       capture_output=True, text=True)
    text = p.stdout + p.stderr
    ok = p.returncode == 0 and "not supported" not in text \
        and re.search(r"[0-9,]+\s+instructions", text) is not None
    line = next((l.strip() for l in text.splitlines() if "instructions" in l),
                text.strip()[-200:])
    return ok, line


def categorise(obj, fn):
    o = os.path.basename(obj or "?")
    f = fn or ""
    fl = f.lower()
    if o.startswith("libx264"):
        return "libx264 (H.264 encode)"
    if o.startswith("libswscale"):
        return "swscale (scale / pixel format)"
    if o.startswith("libswresample"):
        return "swresample (audio resample)"
    if o.startswith("libavcodec"):
        if re.match(r"0x[0-9a-f]+$", fl):
            # Debian's libavcodec is stripped: static functions (most of
            # the H.264 decoder's and the x86 SIMD) have no name.
            return "libavcodec, unnamed (stripped; mostly H.264 decode)"
        if re.search(r"aac|psy|quantize|search_for|codebook|mdct|fft|tns|"
                     r"lpc|sbr|ps_|iir|float_dsp|kbd", fl):
            return "libavcodec AAC (decode + encode)"
        return "libavcodec H.264 decode"
    if o.startswith("libavformat"):
        if re.search(r"write|mux|hls|mov_flush|mov_create|ff_mov_|"
                     r"avio_w|put_|ffio_fill|mov_build|mov_write", fl):
            return "libavformat muxers"
        return "libavformat demux / I/O"
    if o.startswith("libavfilter"):
        return "libavfilter (other filters)"
    if o.startswith("libavutil"):
        return "libavutil"
    if o.startswith("libc.") or o.startswith("libc-") or o == "libc.so.6":
        if re.search(r"memcpy|memmove", fl):
            return "libc memcpy/memmove"
        return "libc other"
    if o.startswith("ld-linux") or o.startswith("ld-"):
        return "dynamic loader"
    if o.startswith("libjansson"):
        return "jansson (JSON)"
    if o == "sinatra" or o.startswith("sinatra"):
        return "sinatra own code"
    if "vgpreload" in o or "valgrind" in obj:
        return "valgrind runtime"
    return f"other ({o})"


def parse_callgrind(path):
    """Self cost (first event, Ir) per (object, function)."""
    names = {"ob": {}, "fn": {}, "fl": {}}
    cost = collections.Counter()
    cur_ob = cur_fn = None
    skip_next = False
    events = None

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", rest)
        if m:
            if m.group(2) is not None:
                names[kind][m.group(1)] = m.group(2)
            return names[kind].get(m.group(1), m.group(1))
        return rest

    with open(path, errors="replace") as f:
        for line in f:
            if skip_next:
                skip_next = False
                continue
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) >= 2 and cur_fn is not None:
                    try:
                        cost[(cur_ob, cur_fn)] += int(parts[1])
                    except ValueError:
                        pass
                continue
            if line.startswith("ob="):
                cur_ob = name("ob", line[3:].strip())
            elif line.startswith("fn="):
                cur_fn = name("fn", line[3:].strip())
            elif line.startswith("cob="):
                name("ob", line[4:].strip())
            elif line.startswith("cfn="):
                name("fn", line[4:].strip())
            elif line.startswith(("fl=", "fi=", "fe=")):
                name("fl", line[3:].strip())
            elif line.startswith("cfi=") or line.startswith("cfl="):
                name("fl", line[4:].strip())
            elif line.startswith("calls="):
                skip_next = True
            elif line.startswith("events:"):
                events = line.split()[1:]
    return cost, events


def summarise_cost(res, cost, events):
    total = sum(cost.values()) or 1
    cats = collections.Counter()
    for (ob, fn), c in cost.items():
        cats[categorise(ob, fn)] += c
    res["events"] = events
    res["total"] = total
    small = sum(v for v in cats.values() if 100.0 * v / total < 0.1)
    res["categories"] = [(k, 100.0 * v / total) for k, v in cats.most_common()
                         if 100.0 * v / total >= 0.1]
    if small:
        res["categories"].append(("everything under 0.1 % each",
                                  100.0 * small / total))
    res["top_functions"] = [(os.path.basename(ob or "?"), fn, 100.0 * c / total)
                            for (ob, fn), c in cost.most_common(25)]
    return res


def profile(args, inp10, log_dir):
    ok, why = perf_counts_instructions()
    res = {"perf_check": why, "perf_counts_instructions": ok}
    if args.callgrind_file:
        # Summarise an existing callgrind output instead of running again.
        cost, events = parse_callgrind(args.callgrind_file)
        res.update({"tool": "callgrind", "callgrind_file": args.callgrind_file,
                    "command": "(existing file)"})
        return summarise_cost(res, cost, events)
    out = os.path.join(args.work, "out", "profile")
    shutil.rmtree(out, ignore_errors=True)
    if ok:
        data = os.path.join(args.work, "perf.data")
        cmd = ["perf", "record", "-g", "-o", data, "--"] + sinatra_command(
            args.sinatra, args.input, out, "thread")
        res["tool"] = "perf"
        res["command"] = q(cmd)
        p = subprocess.run(cmd, capture_output=True, text=True)
        res["rc"] = p.returncode
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                              "--no-children", "--sort", "dso,sym"],
                             capture_output=True, text=True).stdout
        cost = collections.Counter()
        for line in rep.splitlines():
            m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
            if m:
                cost[(m.group(2), m.group(3).strip())] += float(m.group(1))
        events = ["perf %"]
    else:
        cg = os.path.join(args.work, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
               "--trace-children=no"] + sinatra_command(
            args.sinatra, inp10, out, "thread", workers=1)
        res["tool"] = "callgrind"
        res["command"] = q(cmd)
        log(f"[profile] {q(cmd)}")
        t0 = time.monotonic()
        with open(os.path.join(log_dir, "profile.stderr"), "wb") as err, \
                open(os.path.join(log_dir, "profile.stdout"), "wb") as so:
            p = subprocess.run(cmd, stdout=so, stderr=err,
                               stdin=subprocess.DEVNULL)
        res["rc"] = p.returncode
        res["valgrind_wall_s"] = time.monotonic() - t0
        log(f"[profile] rc={p.returncode} in {res['valgrind_wall_s']:.0f} s")
        if not os.path.exists(cg):
            res["error"] = "no callgrind output"
            return res
        cost, events = parse_callgrind(cg)
        res["callgrind_file"] = cg
    return summarise_cost(res, cost, events)


# --------------------------------------------------------------------------
# Reporting


def fmt(v, spec=".1f"):
    if v is None:
        return "-"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


METRICS = [("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f"),
           ("cpu_pct", "CPU %", ".0f"),
           ("others_cpu_pct", "others' CPU %", ".0f"),
           ("peak_tree_rss_mb", "peak tree RSS MiB", ".0f"),
           ("ru_maxrss_mb", "ru_maxrss MiB", ".0f"),
           ("first_segment_s", "first seg, all rungs s", ".2f")]


def report(results, qual, variants, inp_desc, prof, args):
    lines = []
    p = lines.append
    p("")
    p(f"input: {inp_desc['path']} ({inp_desc['duration_s']:.2f} s, "
      f"{inp_desc['bytes'] / 2**20:.1f} MiB)")
    p("")
    p("== per run ==")
    hdr = f"{'run':>3} {'tool':<16} {'rc':>3}" + "".join(
        f" {h:>22}" for _, h, _ in METRICS)
    p(hdr)
    for r in results:
        p(f"{r['run']:>3} {r['label']:<16} {r['rc']:>3}" + "".join(
            f" {fmt(r.get(k), s):>22}" for k, _, s in METRICS))
    p("")
    p("first segment per rung (s since start; polled):")
    for r in results:
        per = r.get("first_segment_polled_s", {})
        extra = ""
        if "first_segments_event_s" in r:
            extra = (f"  event elapsed_s={fmt(r['first_segments_event_s'], '.2f')}"
                     f" (line arrived {fmt(r.get('first_segments_event_arrival_s'), '.2f')})")
        p(f"  run {r['run']} {r['label']:<16} " + " ".join(
            f"{k}={fmt(per.get(k), '.2f')}" for k in
            [f"{x[0]}p" for x in RUNGS])
          + f"  master={fmt(r.get('master_appeared_s'), '.2f')}" + extra)
    p("")
    p("== medians over runs, and sinatra/ffmpeg ratios (median of per-run ratios) ==")
    base = [r for r in results if r["label"] == "ffmpeg"]
    for v in variants:
        rs = [r for r in results if r["label"] == v]
        row = f"{v:<16}"
        for k, h, s in METRICS:
            row += f" {h}={fmt(median([r.get(k) for r in rs if r['rc'] == 0]), s)}"
        p(row)
        if v != "ffmpeg" and base:
            rr = []
            for k, h, s in METRICS:
                if k == "others_cpu_pct":
                    continue
                per = [ratio(a.get(k), b.get(k)) for a, b in zip(rs, base)
                       if a["rc"] == 0 and b["rc"] == 0]
                rr.append(f"{h}={fmt(median(per), '.2f')}")
            p(f"{'  ratio /ffmpeg':<16} " + " ".join(rr))
    p("")
    p("== quality and bit rate per rung (first run's output) ==")
    p(f"{'tool':<16} {'rung':>9} {'kbit/s':>8} {'peak seg':>8} {'PSNR-Y dB':>10} "
      f"{'SSIM':>8} {'frames':>6} {'segs':>4} {'pix_fmt':>9} {'range':>5}  "
      f"keyframe gaps")
    for v in variants + [v for v in qual if v not in variants]:
        qv = qual.get(v)
        if not qv:
            continue
        if "error" in qv:
            p(f"{v:<16} ERROR: {qv['error'][-300:]}")
        for r in qv.get("rungs", []):
            kf = r.get("keyframe_intervals_first_20s", [])
            p(f"{v:<16} {r['width']:>4}x{r['height']:<4} {fmt(r.get('kbps'), '.0f'):>8} "
              f"{fmt(r.get('peak_segment_kbps'), '.0f'):>8} "
              f"{fmt(r.get('psnr_y_db'), '.2f'):>10} {fmt(r.get('ssim_all'), '.4f'):>8} "
              f"{r.get('frames_compared', '-'):>6} {r.get('segments', '-'):>4} "
              f"{r['pix_fmt']:>9} {r['color_range']:>5}  {sorted(set(kf))}")
    p("")
    # Targets.
    p("== targets (sinatra vs ffmpeg) ==")
    fq = {r["height"]: r for r in qual.get("ffmpeg", {}).get("rungs", [])}
    mq = {r["height"]: r for r in qual.get(MATCHED, {}).get("rungs", [])}
    for v in variants:
        if v == "ffmpeg":
            continue
        rs = [r for r in results if r["label"] == v]
        ok_runs = [r for r in rs if r["rc"] == 0]
        if not ok_runs:
            p(f"{v}: no successful run (exit codes {[r['rc'] for r in rs]})")
            continue
        wall = median([ratio(a["wall_s"], b["wall_s"]) for a, b in zip(rs, base)
                       if a["rc"] == 0])
        mem = median([ratio(a["peak_tree_rss_mb"], b["peak_tree_rss_mb"])
                      for a, b in zip(rs, base) if a["rc"] == 0])
        fs = [r.get("first_segment_s") for r in ok_runs]
        p(f"{v}: wall time <= ffmpeg: {'MET' if wall and wall <= 1 else 'NOT MET'}"
          f" (median ratio {fmt(wall, '.2f')})")
        p(f"{v}: peak memory <= ffmpeg: {'MET' if mem and mem <= 1 else 'NOT MET'}"
          f" (median ratio of tree RSS {fmt(mem, '.2f')})")
        worst = max([x for x in fs if x is not None], default=None)
        met = worst is not None and all(x is not None for x in fs) \
            and worst < FIRST_SEGMENT_TARGET_S
        p(f"{v}: first segment of every rung < {FIRST_SEGMENT_TARGET_S:.0f} s: "
          f"{'MET' if met else 'NOT MET'} (worst run {fmt(worst, '.2f')} s)")
        sq = {r["height"]: r for r in qual.get(v, {}).get("rungs", [])}
        for h in sorted(fq):
            a, b = sq.get(h), fq[h]
            if not a or a.get("psnr_y_db") is None or b.get("psnr_y_db") is None:
                p(f"{v}: {h}p quality: no figure")
                continue
            d = a["psnr_y_db"] - b["psnr_y_db"]
            br = ratio(a.get("kbps"), b.get("kbps"))
            eq = br is not None and abs(br - 1) <= 0.01
            at = psnr_at_rate(b, mq.get(h), a.get("kbps"))
            if at is not None:
                dm = a["psnr_y_db"] - at
                verdict = "MET" if dm >= -PSNR_TOLERANCE_DB else "NOT MET"
                p(f"{v}: {h}p PSNR within {PSNR_TOLERANCE_DB} dB of ffmpeg at equal "
                  f"bit rate: {verdict} (sinatra {a['psnr_y_db']:.2f} dB at "
                  f"{a['kbps']:.0f} kbit/s; ffmpeg interpolated to that rate "
                  f"{at:.2f} dB -> delta {dm:+.2f} dB; at ffmpeg's own maxrate "
                  f"delta {d:+.2f} dB, bit rate ratio {fmt(br, '.3f')})")
            else:
                verdict = ("MET" if d >= -PSNR_TOLERANCE_DB and eq else
                           "NOT MET" if d < -PSNR_TOLERANCE_DB else "UNDECIDED")
                p(f"{v}: {h}p PSNR within {PSNR_TOLERANCE_DB} dB of ffmpeg: {verdict}"
                  f" (delta {d:+.2f} dB, bit rate ratio {fmt(br, '.3f')}"
                  f"{'' if eq else ', NOT equal bit rate and no rate-matched anchor'})")
    if prof:
        p("")
        p(f"== profile ({prof.get('tool')}) ==")
        p(f"perf check: {prof.get('perf_check')}")
        p(f"command: {prof.get('command')}")
        p(f"rc: {prof.get('rc')}")
        for k, v in prof.get("categories", []):
            p(f"  {v:6.2f} %  {k}")
        p("  top functions (self):")
        for ob, fn, v in prof.get("top_functions", [])[:15]:
            p(f"  {v:6.2f} %  {ob}  {fn}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# --------------------------------------------------------------------------


def binary_info(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": path, "sha256": h.hexdigest(),
            "mtime": time.strftime("%Y-%m-%d %H:%M:%S",
                                   time.localtime(os.path.getmtime(path)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1,
                    help="repetitions of every tool (default 1)")
    ap.add_argument("--work", default=DEFAULT_WORK,
                    help=f"work folder: cached input, outputs, logs (default {DEFAULT_WORK})")
    ap.add_argument("--source", default=DEFAULT_SOURCE,
                    help="footage the input is built from")
    ap.add_argument("--sinatra", default=DEFAULT_SINATRA,
                    help=f"sinatra binary (default {DEFAULT_SINATRA})")
    ap.add_argument("--modes", default="thread,process",
                    help="sinatra --worker-mode values to run (default thread,process)")
    ap.add_argument("--no-sinatra", action="store_true",
                    help="run only the ffmpeg side")
    ap.add_argument("--no-ffmpeg", action="store_true",
                    help="run only the sinatra side (no ratios)")
    ap.add_argument("--no-quality", action="store_true",
                    help="skip PSNR/SSIM")
    ap.add_argument("--scaler", default="bicubic",
                    help="swscale flags for the reference (default bicubic, "
                         "ffmpeg's scale filter default)")
    ap.add_argument("--x264-params", default=None,
                    help="extra -x264-params for the ffmpeg side, e.g. mbtree=0 "
                         "(sinatra turns MB-tree off; the default ffmpeg "
                         "command leaves x264's default, on)")
    ap.add_argument("--no-matched", action="store_true",
                    help="skip the rate-matched ffmpeg anchor run")
    ap.add_argument("--profile", action="store_true",
                    help="also profile sinatra (perf or callgrind)")
    ap.add_argument("--callgrind-file", default=None,
                    help="with --profile: summarise this callgrind output "
                         "instead of running valgrind")
    ap.add_argument("--no-bench", action="store_true",
                    help="skip the timed runs (e.g. with --profile)")
    args = ap.parse_args()

    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found on PATH")
    os.makedirs(args.work, exist_ok=True)
    args.work = os.path.abspath(args.work)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = os.path.join(args.work, "logs", stamp)
    os.makedirs(log_dir, exist_ok=True)
    os.makedirs(os.path.join(args.work, "out"), exist_ok=True)

    args.input = os.path.join(args.work, f"input-1080p-{INPUT_SECONDS}s.mp4")
    cached_build(input_command(args.source, args.input), args.input)
    inp_desc = describe_input(args.input)
    if inp_desc["duration_s"] < 60:
        sys.exit(f"input is only {inp_desc['duration_s']:.1f} s")

    variants = [] if args.no_ffmpeg else ["ffmpeg"]
    have_sinatra = (not args.no_sinatra and os.access(args.sinatra, os.X_OK))
    if not args.no_sinatra and not have_sinatra:
        log(f"sinatra binary {args.sinatra} not found: ffmpeg side only. Build:\n"
            "  cmake -S /work/main -B /tmp/bench-build -DCMAKE_BUILD_TYPE=RelWithDebInfo"
            " && cmake --build /tmp/bench-build --target sinatra -j2")
    if have_sinatra:
        variants += [f"sinatra-{m}" for m in args.modes.split(",") if m]
        log(f"sinatra: {binary_info(args.sinatra)}")

    def command_for(v, out):
        if v == "ffmpeg":
            return ffmpeg_ladder_command(args.input, out,
                                         x264_params=args.x264_params)
        return sinatra_command(args.sinatra, args.input, out,
                               v.split("-", 1)[1])

    results = []
    if not args.no_bench:
        for run in range(1, args.runs + 1):
            k = (run - 1) % len(variants)
            order = variants[k:] + variants[:k]
            for v in order:
                out = os.path.join(args.work, "out", f"{v}-run{run}")
                r = run_observed(f"{v}-run{run}", command_for(v, out), out,
                                 log_dir, partial=v != "ffmpeg",
                                 want_json=v != "ffmpeg")
                r["run"] = run
                r["label"] = v
                results.append(r)

    qual = {}
    if not args.no_bench and not args.no_quality:
        for v in variants:
            r1 = next((r for r in results if r["label"] == v and r["rc"] == 0),
                      None)
            if not r1:
                continue
            out = os.path.join(args.work, "out", f"{v}-run{r1['run']}")
            try:
                qual[v] = quality(out, args.input, log_dir, v, args.scaler)
            except (subprocess.CalledProcessError, OSError, KeyError,
                    ValueError) as e:
                qual[v] = {"error": f"{type(e).__name__}: {e}"}

    # Rate-matched anchor: sinatra's rungs do not land on ffmpeg's bit rates,
    # so ffmpeg is run once more with every rung's maxrate/bufsize scaled by
    # sinatra's/ffmpeg's measured bit rate, and its PSNR is interpolated (in
    # log bit rate) between the two ffmpeg points to sinatra's exact rate.
    matched_run = None
    sv = next((v for v in variants if v != "ffmpeg" and v in qual
               and qual[v].get("rungs")), None)
    if (not args.no_matched and sv and qual.get("ffmpeg", {}).get("rungs")):
        fk = {r["height"]: r["kbps"] for r in qual["ffmpeg"]["rungs"]}
        sk = {r["height"]: r["kbps"] for r in qual[sv]["rungs"]}
        scale = [(sk.get(h) / fk[h]) if fk.get(h) and sk.get(h) else 1.0
                 for _, _, h, _ in RUNGS]
        if any(abs(x - 1) > 0.01 for x in scale):
            out = os.path.join(args.work, "out", MATCHED)
            r = run_observed(MATCHED, ffmpeg_ladder_command(
                args.input, out, scale, args.x264_params), out, log_dir)
            r["run"] = 0
            r["label"] = MATCHED
            r["rate_scale"] = scale
            matched_run = r
            if r["rc"] == 0:
                qual[MATCHED] = quality(out, args.input, log_dir, MATCHED,
                                        args.scaler)
                qual[MATCHED]["rate_scale"] = scale

    prof = None
    if args.profile:
        if not have_sinatra:
            log("--profile needs the sinatra binary")
        else:
            inp10 = os.path.join(args.work, f"input-1080p-{PROFILE_SECONDS}s.mp4")
            cached_build(cut_command(args.input, inp10, PROFILE_SECONDS), inp10)
            prof = profile(args, inp10, log_dir)

    text = report(results, qual, variants, inp_desc, prof, args)
    out_json = os.path.join(args.work, f"results-{stamp}.json")
    with open(out_json, "w") as f:
        json.dump({"input": inp_desc,
                   "input_command": q(input_command(args.source, args.input)),
                   "sinatra": binary_info(args.sinatra) if have_sinatra else None,
                   "machine": {"nproc": os.cpu_count(),
                               "uname": " ".join(os.uname())},
                   "runs": results, "quality": qual, "profile": prof,
                   "matched_run": matched_run,
                   "report": text}, f, indent=1, default=str)
    log(f"results: {out_json}\nlogs: {log_dir}")
    failed = [r for r in results if r["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
