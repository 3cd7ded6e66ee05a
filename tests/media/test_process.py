#!/usr/bin/env python3
"""Integration tests of `sinatra process`.

    python3 tests/media/test_process.py --list
    python3 tests/media/test_process.py --binary PATH CASE

Exit status: 0 pass, 1 fail, 77 skip. Each case runs the real binary on
files from the shared media corpus (SN_MEDIA_DIR, or ../shared/media next to
the repository) or on inputs it builds from them with ffmpeg, then reads the
output back with ffprobe/ffmpeg. Everything a case writes goes to a fresh
temporary folder that is removed at the end (set SN_KEEP_TMP=1 to keep it).
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hlscheck as H  # noqa: E402
from hlscheck import MS, TIMELINE_OFFSET, fmt_t  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN_TIMEOUT = 300           # seconds for one run of the binary

CASES = []


def case(needs_corpus=True):
    def wrap(fn):
        fn.needs_corpus = needs_corpus
        CASES.append(fn)
        return fn
    return wrap


def media_dir():
    d = os.environ.get("SN_MEDIA_DIR")
    if not d:
        d = os.path.join(os.path.dirname(REPO_ROOT), "shared", "media")
    return d


# ---------------------------------------------------------------------------
# Case context

class Ctx:
    def __init__(self, binary, checks):
        self.binary = binary
        self.c = checks
        self.tmp = tempfile.mkdtemp(prefix="sn-media-test-")
        self.media = media_dir()
        self._cache = {}

    def cleanup(self):
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

    def outdir(self, name):
        """A fresh, empty parent folder holding OUTDIR (so leftovers next to
        OUTDIR can be seen); returns the OUTDIR path (not created)."""
        parent = os.path.join(self.tmp, "runs", name)
        os.makedirs(parent)
        return os.path.join(parent, "out")

    def cmd(self, inp, outdir, opts):
        return [self.binary, "process", inp, "-o", outdir] + \
            [str(o) for o in opts]

    def sinatra(self, inp, outdir, *opts, timeout=BIN_TIMEOUT):
        r = H.run(self.cmd(inp, outdir, opts), timeout=timeout)
        if r.timed_out:
            self.c.expect(False, "`%s` did not finish within %d s (killed)"
                          % (r.cmdline(), timeout))
        return r

    def process_ok(self, inp, name, *opts, timeout=BIN_TIMEOUT):
        """Runs the binary and requires success and an OUTDIR with a master
        playlist; returns (outdir, Result)."""
        out = self.outdir(name)
        r = self.sinatra(inp, out, *opts, timeout=timeout)
        self.c.require(r.rc == 0, "`%s` exited %s, expected 0; stderr: %s"
                       % (r.cmdline(), r.rc, r.err_tail()))
        self.c.require(os.path.isfile(os.path.join(out, "master.m3u8")),
                       "`%s` exited 0 but %s/master.m3u8 is missing"
                       % (r.cmdline(), out))
        print("ran in %.1f s: %s" % (r.elapsed, r.cmdline()), flush=True)
        return out, r

    def rungs(self, outdir):
        rs = H.load_rungs(outdir, self.path("probes", os.path.basename(
            os.path.dirname(outdir)), "x"))
        self.c.require(rs, "%s has no rung folder (NNNp/)" % outdir)
        return rs

    def audio(self, outdir):
        return H.Rendition(outdir, "audio", self.path(
            "probes", os.path.basename(os.path.dirname(outdir)), "x"),
            kind="audio").probe()

    # -- inputs built from corpus footage --------------------------------

    def bear_2997(self, seconds=10):
        """Bear footage looped to `seconds` at 29.97 fps, H.264 with
        B-frames, and 44.1 kHz stereo AAC: the bear soundtrack with a
        440 Hz sine and low pink noise mixed in, so the sound never stops."""
        key = ("bear2997", seconds)
        if key in self._cache:
            return self._cache[key]
        bear = self.corpus("packager-bear-640x360-trailing-moov.mp4")
        out = self.path("inputs", "bear-2997-%ds.mp4" % seconds)
        loops = int(math.ceil(seconds / 2.7))
        H.ffmpeg([
            "-stream_loop", loops, "-i", bear,
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-f", "lavfi", "-i",
            "anoisesrc=color=pink:amplitude=0.05:seed=7:sample_rate=44100",
            "-filter_complex",
            "[0:v]fps=30000/1001,format=yuv420p[v];"
            "[0:a]aresample=44100,aformat=channel_layouts=stereo[a0];"
            "[1:a]volume=0.1,aformat=channel_layouts=stereo[s];"
            "[2:a]aformat=channel_layouts=stereo[n];"
            "[a0][s][n]amix=inputs=3:duration=first:normalize=0[a]",
            "-map", "[v]", "-map", "[a]", "-t", seconds,
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
            "-bf", "2", "-c:a", "aac", "-b:a", "160k", out])
        self._cache[key] = out
        return out

    def sintel_23976(self, seconds=10, audio=True):
        """Sintel footage (1024x436, 5.1 AAC) looped to `seconds` and
        re-timed to 23.976 fps."""
        key = ("sintel23976", seconds, audio)
        if key in self._cache:
            return self._cache[key]
        sintel = self.corpus("packager-sintel-1024x436.mp4")
        out = self.path("inputs", "sintel-23976-%ds%s.mp4"
                        % (seconds, "" if audio else "-noaudio"))
        loops = int(math.ceil(seconds / 6.0))
        args = ["-stream_loop", loops, "-i", sintel,
                "-vf", "fps=24000/1001,format=yuv420p", "-t", seconds,
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                "-bf", "2"]
        args += ["-c:a", "aac", "-b:a", "192k"] if audio else ["-an"]
        H.ffmpeg(args + [out])
        self._cache[key] = out
        return out


# ---------------------------------------------------------------------------
# Shared checks

SHORT_SEGMENTS = ["--segment-duration", "1", "--keyframe-interval", "1",
                  "--chunk-segments", "1", "--first-chunk-segments", "1"]


def check_frames_match_source(c, rungs, src, exact=True, require_all=True):
    """Check 1: every source frame appears once in every rung, with the
    source's timestamps (plus the 10 s offset). exact: constant-rate source,
    compare frame by frame; otherwise each output timestamp must be a source
    timestamp. require_all=False (a truncated source): the output may keep
    only part of the source's frames."""
    tol = Fraction(1, 2000) if exact else MS
    for r in rungs:
        frames = r.sorted_frames()
        c.expect(len(frames) == src.count or not require_all,
                 "%s: %d frames in the rung, the source has %d "
                 "(ffprobe -count_frames on %s)"
                 % (r.label(), len(frames), src.count,
                    os.path.basename(src.path)))
        if not frames:
            continue
        out = [f.pts - TIMELINE_OFFSET for f in frames]
        dups = [i for i in range(1, len(out))
                if out[i] - out[i - 1] <= Fraction(1, 10000)]
        c.expect(not dups,
                 "%s: %d frames repeat the previous timestamp; first: frame "
                 "%s at %s s in segment %s"
                 % (r.label(), len(dups), dups[0] if dups else "",
                    fmt_t(frames[dups[0]].pts) if dups else "",
                    frames[dups[0]].segment if dups else ""))
        if exact:
            n = min(len(out), len(src.pts))
            bad = [i for i in range(n) if abs(out[i] - src.pts[i]) > tol]
            if bad:
                i = bad[0]
                shifts = {}
                for j in bad:
                    d = out[j] - src.pts[j]
                    shifts[d] = shifts.get(d, 0) + 1
                common = sorted(shifts.items(), key=lambda kv: -kv[1])[:4]
                msg = ("%s: %d of %d frames are not at the source's time + "
                       "10 s; first: frame %d in segment %d at PTS %s s, "
                       "source frame %d at %s s (expected %s s); PTS minus "
                       "expected: %s"
                       % (r.label(), len(bad), n, i, frames[i].segment,
                          fmt_t(frames[i].pts), i, fmt_t(src.pts[i]),
                          fmt_t(src.pts[i] + TIMELINE_OFFSET),
                          ", ".join("%+.6f s x%d" % (float(d), k)
                                    for d, k in common)))
            else:
                msg = ""
            c.expect(not bad, msg)
            end = r.end_time(src.last_dur)
            dur = end - frames[0].pts
            sdur = src.end - src.start
            c.expect(abs(dur - sdur) <= MS,
                     "%s: lasts %s s (first frame %s s to end of last frame "
                     "%s s), the source lasts %s s"
                     % (r.label(), fmt_t(dur), fmt_t(frames[0].pts),
                        fmt_t(end), fmt_t(sdur)))
        else:
            import bisect
            src_pts = src.pts
            foreign = []
            for i, t in enumerate(out):
                j = bisect.bisect_left(src_pts, t)
                near = [src_pts[k] for k in (j - 1, j) if 0 <= k < len(src_pts)]
                if not near or min(abs(t - s) for s in near) > tol:
                    foreign.append(i)
            c.expect(not foreign,
                     "%s: %d frames have timestamps the source does not have; "
                     "first: frame %s at %s s (source time %s s)"
                     % (r.label(), len(foreign),
                        foreign[0] if foreign else "",
                        fmt_t(frames[foreign[0]].pts) if foreign else "",
                        fmt_t(out[foreign[0]]) if foreign else ""))
            missing = []
            for s in src_pts:
                j = bisect.bisect_left(out, s)
                near = [out[k] for k in (j - 1, j) if 0 <= k < len(out)]
                if not near or min(abs(t - s) for t in near) > tol:
                    missing.append(s)
            c.expect(not missing or not require_all,
                     "%s: %d source frames are missing; first at source time "
                     "%s s" % (r.label(), len(missing),
                               fmt_t(missing[0]) if missing else ""))
            limit = src.nominal * Fraction(3, 2)
            for i in range(1, len(out)):
                gap = out[i] - out[i - 1]
                if gap <= limit:
                    continue
                j = bisect.bisect_left(src_pts, out[i - 1] - tol)
                src_gap = None
                if j + 1 < len(src_pts):
                    src_gap = src_pts[j + 1] - src_pts[j]
                c.expect(src_gap is not None and src_gap >= gap - tol,
                         "%s: %s s between frames at %s s and %s s (segment "
                         "%s), over 1.5x the nominal %s s, and the source has "
                         "%s s there" % (r.label(), fmt_t(gap),
                                         fmt_t(frames[i - 1].pts),
                                         fmt_t(frames[i].pts),
                                         frames[i].segment,
                                         fmt_t(src.nominal), fmt_t(src_gap)))


def grid_interval(t, S, F):
    """Return (k, start, end) of the grid interval holding time t: the
    first segment lasts F (by default the keyframe interval), the others
    S."""
    if t < F:
        return 0, Fraction(0), F
    k = 1 + math.floor((t - F) / S)
    return k, F + (k - 1) * S, F + k * S


def check_segment_starts(c, rungs, seg_dur, key_int=None):
    """Check 2: IDR at the start of every segment, segments on the grid and
    aligned across rungs, EXTINF within the target duration."""
    S = Fraction(seg_dur)
    F = Fraction(key_int) if key_int is not None else S
    for r in rungs:
        pl = r.playlist
        c.expect(pl.target_duration is not None,
                 "%s: index.m3u8 has no EXT-X-TARGETDURATION" % r.label())
        c.expect(len(pl.segments) > 0, "%s: no segments" % r.label())
        prev_grid = None
        for k, sp in enumerate(r.segments):
            where = r.label(k)
            c.expect(not sp.errors,
                     "%s: init + segment does not decode cleanly on its own: "
                     "%s" % (where, sp.errors[:300]))
            if not sp.frames or not sp.packets:
                c.expect(False, "%s: no decodable frame" % where)
                continue
            first_pkt = min(sp.packets, key=lambda p: p.dts)
            c.expect(first_pkt.key,
                     "%s: first packet in decode order (DTS %s s) is not "
                     "flagged as a keyframe" % (where, fmt_t(first_pkt.dts)))
            ff = min(sp.frames, key=lambda f: f.pts)
            c.expect(ff.key == 1 and ff.pict == "I",
                     "%s: first frame (PTS %s s) has key_frame=%s pict_type=%s"
                     ", expected 1 and I" % (where, fmt_t(ff.pts), ff.key,
                                             ff.pict))
            c.expect(ff.pos == first_pkt.pos,
                     "%s: the first frame shown (PTS %s s) is not the first "
                     "packet decoded (PTS %s s): frames before the IDR in "
                     "display order" % (where, fmt_t(ff.pts),
                                        fmt_t(first_pkt.pts)))
            if r.format in ("fmp4", "ts"):
                c.expect(sp.first_nal_types is not None and
                         5 in sp.first_nal_types,
                         "%s: first packet holds NAL types %s, no IDR slice "
                         "(type 5)" % (where, sp.first_nal_types))
            ext = sp.seg.extinf
            if pl.target_duration is not None:
                c.expect(H.round_half_up(ext) <= pl.target_duration,
                         "%s: EXTINF %s rounds to %d, over "
                         "EXT-X-TARGETDURATION %d"
                         % (where, sp.seg.extinf_text, H.round_half_up(ext),
                            pl.target_duration))
            c.expect(H.round_half_up(ext) <= math.ceil(S),
                     "%s: EXTINF %s rounds to %d, over the configured segment "
                     "duration %s" % (where, sp.seg.extinf_text,
                                      H.round_half_up(ext), fmt_t(S)))
            rel = [f.pts - TIMELINE_OFFSET for f in sp.frames]
            grid, lo, hi = grid_interval(min(rel), S, F)
            outside = [t for t in rel if not (lo <= t < hi)]
            c.expect(not outside,
                     "%s: frames at PTS - 10 s = %s s fall outside the grid "
                     "interval [%s, %s) that holds its first frame"
                     % (where, ", ".join(fmt_t(t) for t in outside[:5]),
                        fmt_t(lo), fmt_t(hi)))
            c.expect(prev_grid is None or grid > prev_grid,
                     "%s: grid interval %d does not follow the previous "
                     "segment's %s" % (where, grid, prev_grid))
            prev_grid = grid
        if key_int is not None:
            K = Fraction(key_int)
            frames = r.sorted_frames()
            rel = [f.pts - TIMELINE_OFFSET for f in frames]
            if rel:
                j = math.ceil(rel[0] / K)
                while j * K <= rel[-1]:
                    g = j * K
                    i = next(i for i, t in enumerate(rel) if t >= g)
                    if rel[i] < g + K:
                        c.expect(frames[i].key == 1,
                                 "%s: first frame at or after the keyframe "
                                 "time %s s (PTS - 10 s; PTS %s s, segment "
                                 "%d) is not a keyframe (pict_type %s)"
                                 % (r.label(), fmt_t(g),
                                    fmt_t(frames[i].pts), frames[i].segment,
                                    frames[i].pict))
                    j += 1
    # Alignment across rungs.
    counts = {r.name: len(r.segments) for r in rungs}
    c.expect(len(set(counts.values())) == 1,
             "segment counts differ across rungs: %s" % counts)
    n = min(counts.values()) if counts else 0
    for k in range(n):
        starts = {r.name: r.segments[k].first_pts() for r in rungs}
        vals = [v for v in starts.values() if v is not None]
        c.expect(vals and max(vals) - min(vals) <= Fraction(1, 10000),
                 "segment %d starts at different times across rungs: %s"
                 % (k, ", ".join("%s %s s" % (n_, fmt_t(v))
                                 for n_, v in starts.items())))


def check_extinf(c, rungs, src_last_dur, frame_dur):
    """Check 3: EXTINF equals each segment's real duration within 1 ms; the
    sum equals the rung's duration within one frame."""
    for r in rungs:
        starts = [sp.first_pts() for sp in r.segments]
        if any(s is None for s in starts) or not starts:
            c.expect(False, "%s: a segment has no frame, cannot time it"
                     % r.label())
            continue
        end = r.end_time(src_last_dur)
        for k, sp in enumerate(r.segments):
            nxt = starts[k + 1] if k + 1 < len(starts) else end
            real = nxt - starts[k]
            what = "next segment's first frame" if k + 1 < len(starts) \
                else "end of its last frame"
            c.expect(abs(sp.seg.extinf - real) <= MS,
                     "%s: EXTINF %s but the segment lasts %s s (first frame "
                     "%s s to %s %s s)" % (r.label(k), sp.seg.extinf_text,
                                          fmt_t(real), fmt_t(starts[k]),
                                          what, fmt_t(nxt)))
        total = r.playlist.total()
        dur = end - starts[0]
        c.expect(abs(total - dur) <= frame_dur,
                 "%s: EXTINF values add up to %s s, the rung lasts %s s "
                 "(%s s to %s s); allowed difference one frame, %s s"
                 % (r.label(), fmt_t(total), fmt_t(dur), fmt_t(starts[0]),
                    fmt_t(end), fmt_t(frame_dur)))


def check_decode_and_dts(c, renditions):
    """Check 4: ffmpeg reads each playlist without a warning; DTS rise
    strictly within segments and across every joint; for fMP4 each
    fragment's decode time continues the previous one's."""
    for r in renditions:
        res = H.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "warning",
                     "-i", r.playlist_path, "-map", "0", "-f", "null", "-"],
                    timeout=300)
        c.expect(res.rc == 0 and not res.err.strip(),
                 "%s: `%s` exited %s and printed: %s"
                 % (r.label(), res.cmdline(), res.rc, res.err_tail(800)))
        prev = None          # (segment, last dts, its duration)
        for k, sp in enumerate(r.segments):
            pk = sp.packets
            if not pk:
                continue
            inside = [i for i in range(1, len(pk)) if pk[i].dts <= pk[i - 1].dts]
            c.expect(not inside,
                     "%s: DTS does not rise inside the segment: %s"
                     % (r.label(k), ", ".join(
                         "%s -> %s s" % (fmt_t(pk[i - 1].dts),
                                         fmt_t(pk[i].dts))
                         for i in inside[:3])))
            if prev is not None:
                pk_, pdts, pdur = prev
                c.expect(pk[0].dts > pdts,
                         "%s: DTS goes from %s s (last packet of segment %d) "
                         "to %s s (first packet of segment %d): not strictly "
                         "rising across the joint"
                         % (r.label(), fmt_t(pdts), pk_, fmt_t(pk[0].dts), k))
                if r.format == "fmp4" and pdur:
                    c.expect(abs(pk[0].dts - (pdts + pdur)) <=
                             Fraction(1, 90000),
                             "%s: segment %d decode time (tfdt) is %s s but "
                             "segment %d ends its decode timeline at %s s "
                             "(last DTS %s + duration %s): a gap or overlap "
                             "at the joint"
                             % (r.label(), k, fmt_t(pk[0].dts), pk_,
                                fmt_t(pdts + pdur), fmt_t(pdts), fmt_t(pdur)))
            prev = (k, pk[-1].dts, pk[-1].dur)


def check_error_run(c, res, inp, outdir, expect_rcs, what):
    """A rejected input: expected exit code, one stderr line naming the input
    and a cause, no OUTDIR and nothing left next to it."""
    expect_rcs = tuple(expect_rcs)
    c.expect(res.rc in expect_rcs,
             "%s: `%s` exited %s, expected %s; stderr: %s"
             % (what, res.cmdline(), res.rc,
                " or ".join(str(x) for x in expect_rcs), res.err_tail()))
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    c.expect(len(lines) == 1,
             "%s: stderr has %d lines, expected one error line: %r"
             % (what, len(lines), res.err[:600]))
    if lines:
        line = lines[-1]
        c.expect(inp in line or os.path.basename(inp) in line,
                 "%s: error line does not name the input %s: %r"
                 % (what, os.path.basename(inp), line))
        rest = line.replace(inp, "").replace(os.path.basename(inp), "")
        c.expect(len(re.findall(r"[A-Za-z]{3,}", rest)) >= 2,
                 "%s: error line gives no cause: %r" % (what, line))
    c.expect(not os.path.exists(outdir),
             "%s: OUTDIR %s exists after a failed run" % (what, outdir))
    parent = os.path.dirname(outdir)
    left = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    c.expect(not left,
             "%s: left behind next to OUTDIR: %s" % (what, left))


def source_audio(path):
    """(sample count at the source rate, sample rate, start time) of the
    first audio stream, from decoding it."""
    st, pk, fr, r = H.probe_media(path, "a:0")
    if not fr:
        raise H.CaseFailed("test setup: cannot decode audio of %s: %s"
                           % (path, r.err_tail()))
    rate = int(st.get("sample_rate"))
    n = sum(f.nb_samples for f in fr)
    return n, rate, min(f.pts for f in fr)


def check_audio_samples(c, audio, src_path, origin):
    """Check 5 (count and timing part): decoded sample count is the source's
    at 48 kHz plus 1024 priming samples within one AAC frame, timestamps
    continuous, first packet 1024 samples before the source's first."""
    n_src, rate, a_start = source_audio(src_path)
    expected = Fraction(n_src * H.AUDIO_RATE, rate)
    st = audio.stream_info()
    c.expect(int(st.get("sample_rate", 0)) == H.AUDIO_RATE,
             "audio rendition: sample rate %s, expected %d"
             % (st.get("sample_rate"), H.AUDIO_RATE))
    c.expect(st.get("codec_name") == "aac",
             "audio rendition: codec %s, expected aac" % st.get("codec_name"))
    # Count through the playlist, as a player would.
    data, r = H.ffprobe_json(["-select_streams", "a:0", "-show_frames",
                              "-show_entries", "frame=pts,nb_samples:"
                              "stream=time_base"], audio.playlist_path)
    frames = data.get("frames", [])
    n_out = sum(int(f.get("nb_samples", 0)) for f in frames)
    print("note: audio rendition: %d samples decoded; source %d at %d Hz"
          % (n_out, n_src, rate), flush=True)
    c.expect(abs(n_out - (expected + H.AAC_PRIMING)) <= H.AAC_FRAME,
             "audio rendition: %d samples decoded from audio/index.m3u8, "
             "expected the source's %d at %d Hz = %s at 48 kHz, plus %d "
             "priming = %s, within %d"
             % (n_out, n_src, rate, fmt_t(expected), H.AAC_PRIMING,
                fmt_t(expected + H.AAC_PRIMING), H.AAC_FRAME))
    # Timestamps: the first packet starts 1024 samples before the source's
    # first sample, and every packet follows the previous one exactly.
    pk = audio.all_packets()
    if pk:
        first = pk[0].pts
        want = TIMELINE_OFFSET + (a_start - origin) - \
            Fraction(H.AAC_PRIMING, H.AUDIO_RATE)
        c.expect(abs(first - want) <= MS,
                 "audio rendition: first packet at %s s, expected %s s "
                 "(10 s + source audio start %s s - 1024 samples)"
                 % (fmt_t(first), fmt_t(want), fmt_t(a_start - origin)))
        for i in range(1, len(pk)):
            if pk[i - 1].dur and abs(pk[i].pts - (pk[i - 1].pts +
                                                  pk[i - 1].dur)) > \
                    Fraction(1, H.AUDIO_RATE):
                c.expect(False,
                         "audio rendition: packet at %s s (segment %d) does "
                         "not follow the previous one (%s s + %s s): gap or "
                         "overlap" % (fmt_t(pk[i].pts), pk[i].segment,
                                      fmt_t(pk[i - 1].pts),
                                      fmt_t(pk[i - 1].dur)))
                break
    return n_src, rate, a_start


def audio_segment_boundaries(audio, video_rungs=()):
    """Output times of the audio segment starts and video segment starts."""
    times = set()
    for sp in audio.segments:
        if sp.packets:
            times.add(sp.packets[0].pts)
    for r in video_rungs[:1]:
        for sp in r.segments:
            t = sp.first_pts()
            if t is not None:
                times.add(t)
    return sorted(times)


def check_audio_continuity(c, audio, src_path, origin, boundaries):
    """Check 5 (content part): no silence over 5 ms near a segment boundary
    that the source does not have at the same time; no drift over 1 ms
    between the start and the end; the audio ends where the source does."""
    rate = H.AUDIO_RATE
    out_pcm, r = H.decode_pcm(audio.playlist_path)
    c.require(out_pcm is not None,
              "audio rendition: cannot decode audio/index.m3u8: %s"
              % r.err_tail())
    src_pcm, r = H.decode_pcm(src_path)
    c.require(src_pcm is not None, "test setup: cannot decode the source "
              "audio: %s" % r.err_tail())
    n_src, src_rate, a_start = source_audio(src_path)
    # Output sample i is at out0 + i / rate; source sample j at
    # a_start - origin + 10 + j / rate on the output timeline.
    pk = audio.all_packets()
    c.require(pk, "audio rendition: no packets")
    out0 = pk[0].pts
    src0 = TIMELINE_OFFSET + a_start - origin
    shift = int(round((src0 - out0) * rate))   # out index of source sample 0

    thr = 66        # about -54 dBFS
    min_len = int(rate * 0.005)
    out_runs = H.silent_runs(out_pcm, thr, min_len)
    src_runs = H.silent_runs(src_pcm, thr, min_len)
    win = Fraction(50, 1000)
    lo_idx = max(shift, 0)
    hi_idx = shift + len(src_pcm)
    for s, e in out_runs:
        s_c, e_c = max(s, lo_idx), min(e, hi_idx)
        if e_c - s_c < min_len:
            continue        # priming before the source starts, or padding
        t0 = out0 + Fraction(s_c, rate)
        t1 = out0 + Fraction(e_c, rate)
        near = [b for b in boundaries if t0 - win <= b <= t1 + win]
        if not near:
            continue
        js, je = s_c - shift, e_c - shift
        src_has = any(ss <= js + min_len and se >= je - min_len
                      for ss, se in src_runs)
        c.expect(src_has,
                 "audio rendition: %.1f ms of silence from %s s to %s s, "
                 "within 50 ms of the segment boundary at %s s; the source "
                 "has sound there" % (float(t1 - t0) * 1000, fmt_t(t0),
                                      fmt_t(t1), fmt_t(near[0])))
    # Drift: where the source's sound is found in the output near the start
    # and near the end.
    length = 2048
    max_lag = 480
    dur = len(src_pcm)
    lags = []
    for where in (int(0.5 * rate), dur - int(0.5 * rate) - length):
        lag, corr = H.best_lag(src_pcm, where, out_pcm, where + shift, length,
                               max_lag)
        lags.append((where, lag, corr))
    (w0, l0, c0), (w1, l1, c1) = lags
    c.note("audio rendition: source sound found at lag %s samples "
           "(correlation %.3f) near the start and %s samples (%.3f) near "
           "the end; %d silent runs over 5 ms in the output"
           % (l0, c0, l1, c1, len(out_runs)))
    c.expect(l0 is not None and c0 > 0.8,
             "audio rendition: cannot find the source's sound from %s s in "
             "the output (best correlation %.2f)"
             % (fmt_t(Fraction(w0, rate)), c0))
    c.expect(l1 is not None and c1 > 0.8,
             "audio rendition: cannot find the source's sound from %s s in "
             "the output (best correlation %.2f)"
             % (fmt_t(Fraction(w1, rate)), c1))
    if l0 is not None and l1 is not None:
        c.expect(abs(l0) <= rate // 1000,
                 "audio rendition: at source time %s s the sound is %d "
                 "samples (%.2f ms) away from where its timestamps put it"
                 % (fmt_t(Fraction(w0, rate)), l0, l0 * 1000.0 / rate))
        c.expect(abs(l1 - l0) <= rate // 1000,
                 "audio rendition: drift of %d samples (%.2f ms) between "
                 "source time %s s and %s s"
                 % (l1 - l0, (l1 - l0) * 1000.0 / rate,
                    fmt_t(Fraction(w0, rate)), fmt_t(Fraction(w1, rate))))
    # End time.
    last = pk[-1]
    out_end = last.pts + (last.dur or Fraction(H.AAC_FRAME, rate))
    src_end = src0 + Fraction(n_src, src_rate)
    c.expect(-MS <= out_end - src_end <=
             Fraction(H.AAC_FRAME, rate) + MS,
             "audio rendition: ends at %s s, the source's audio ends at %s s "
             "(+10 s): differs by %.2f ms, allowed 0 to one AAC frame of "
             "padding" % (fmt_t(out_end), fmt_t(src_end),
                          float(out_end - src_end) * 1000))


def check_master(c, outdir, rungs, audio=None):
    """Master playlist: one variant per rung that points at its playlist,
    RESOLUTION equal to the real size, AUDIO group when there is audio."""
    mp = H.MasterPlaylist(os.path.join(outdir, "master.m3u8"))
    c.expect(not mp.errors, "master.m3u8: %s" % "; ".join(mp.errors))
    names = sorted(v.uri.split("/")[0] for v in mp.variants)
    c.expect(names == sorted(r.name for r in rungs),
             "master.m3u8 variants point at %s, the rung folders are %s"
             % (names, [r.name for r in rungs]))
    for r in rungs:
        v = mp.variant_for(r.name)
        if v is None:
            continue
        st = r.stream_info()
        res = "%sx%s" % (st.get("width"), st.get("height"))
        c.expect(v.get("RESOLUTION") == res,
                 "master.m3u8: %s RESOLUTION=%s, the rung's frames are %s"
                 % (r.name, v.get("RESOLUTION"), res))
        if audio is not None:
            c.expect(v.get("AUDIO") is not None,
                     "master.m3u8: %s has no AUDIO group though there is an "
                     "audio rendition" % r.name)
        else:
            c.expect(v.get("AUDIO") is None,
                     "master.m3u8: %s has AUDIO=%s but there is no audio"
                     % (r.name, v.get("AUDIO")))
    return mp


def rung_fps(rung):
    fr = rung.sorted_frames()
    if len(fr) < 2:
        return 30.0
    span = fr[-1].pts - fr[0].pts
    return float((len(fr) - 1) / span) if span else 30.0


def check_codecs(c, mp, rungs, audio=None):
    """Check 7, CODECS and level: CODECS of every variant equals the rung's
    SPS (profile_idc, constraint byte, level_idc), and the level admits the
    rung's frame size and rate."""
    levels = {}
    for r in rungs:
        v = mp.variant_for(r.name)
        if v is None:
            c.expect(False, "master.m3u8 has no variant for %s" % r.name)
            continue
        codecs = [x.strip() for x in v.get("CODECS", "").split(",") if x]
        avc = [x for x in codecs if x.startswith(("avc1.", "avc3."))]
        c.expect(len(avc) == 1,
                 "master.m3u8: %s CODECS=%r has no single avc1 entry"
                 % (r.name, v.get("CODECS")))
        if r.format == "fmp4":
            sps = r.init.sps if r.init else None
            where = "init.mp4 avcC"
            if r.init is not None:
                c.expect(r.init.avcc is not None,
                         "%s: init.mp4 has no avcC box" % r.label())
                if r.init.avcc is not None and sps is not None:
                    c.expect(tuple(r.init.avcc[1:4]) ==
                             H.sps_codec_triplet(sps),
                             "%s: avcC header says %s, its SPS says %s"
                             % (r.label(), r.init.avcc[1:4].hex(),
                                bytes(H.sps_codec_triplet(sps)).hex()))
        else:
            data = H.packet_data(r.playlist.seg_path(
                r.playlist.segments[0]), "v:0") if r.playlist.segments \
                else None
            nals = H.split_annexb(data) if data else []
            sps = next((n for n in nals if n[0] & 0x1F == 7), None)
            where = "first SPS of %s" % (r.playlist.segments[0].uri
                                         if r.playlist.segments else "?")
        trip = H.sps_codec_triplet(sps)
        c.expect(trip is not None, "%s: no SPS found in %s"
                 % (r.label(), where))
        if trip is None or len(avc) != 1:
            continue
        want = "%02x%02x%02x" % trip
        got = avc[0].split(".", 1)[1].lower()
        c.expect(got == want,
                 "master.m3u8: %s CODECS %s, but the %s has profile_idc %d, "
                 "constraint byte 0x%02x, level_idc %d (%s)"
                 % (r.name, avc[0], where, trip[0], trip[1], trip[2], want))
        if r.format == "fmp4" and r.init is not None:
            c.expect(avc[0].split(".")[0] == r.init.sample_entry,
                     "master.m3u8: %s CODECS %s but init.mp4 sample entry "
                     "is %s" % (r.name, avc[0], r.init.sample_entry))
        st = r.stream_info()
        w, h = int(st.get("width", 0)), int(st.get("height", 0))
        fps = rung_fps(r)
        need = H.required_level(w, h, fps)
        levels[r.name] = (trip[2], w, h, fps)
        mbps = ((w + 15) // 16) * ((h + 15) // 16) * fps
        c.expect(need is not None and trip[2] >= need,
                 "%s: %dx%d at %.3f fps (measured from its timestamps) is "
                 "%.0f macroblocks/s, which needs H.264 level_idc >= %s "
                 "(Table A-1 MaxMBPS/MaxFS); the SPS says %d"
                 % (r.label(), w, h, fps, mbps, need, trip[2]))
    if audio is not None:
        st = audio.stream_info()
        prof = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29}.get(st.get("profile"))
        for v in mp.variants:
            codecs = [x.strip() for x in v.get("CODECS", "").split(",") if x]
            mp4a = [x for x in codecs if x.startswith("mp4a.")]
            c.expect(len(mp4a) == 1 and prof is not None and
                     mp4a[0] == "mp4a.40.%d" % prof,
                     "master.m3u8: variant %s CODECS=%r, the audio rendition "
                     "is AAC %s (mp4a.40.%s)" % (v.uri, v.get("CODECS"),
                                                 st.get("profile"), prof))
    return levels


def pair_audio(audio, vstart):
    """The audio segment whose first packet is nearest vstart."""
    best, bd = None, None
    for sp in audio.segments:
        if not sp.packets:
            continue
        d = abs(sp.packets[0].pts - vstart)
        if bd is None or d < bd:
            best, bd = sp, d
    return best


def check_bandwidth(c, mp, rungs, audio):
    """Check 7, BANDWIDTH: between the measured peak segment rate (video
    bits/EXTINF + same-time audio bits/EXTINF) and 10% above it;
    AVERAGE-BANDWIDTH within 10% of total bits / total duration."""
    a_avg = 0.0
    if audio is not None:
        a_bits = sum(sp.size for sp in audio.segments) * 8
        a_dur = float(audio.playlist.total())
        a_avg = a_bits / a_dur if a_dur else 0.0
    for r in rungs:
        v = mp.variant_for(r.name)
        if v is None:
            continue
        peak, at = 0.0, None
        for k, sp in enumerate(r.segments):
            if not sp.seg.extinf:
                continue
            rate = sp.size * 8 / float(sp.seg.extinf)
            if audio is not None and sp.first_pts() is not None:
                asp = pair_audio(audio, sp.first_pts())
                if asp is not None and asp.seg.extinf:
                    rate += asp.size * 8 / float(asp.seg.extinf)
            if rate > peak:
                peak, at = rate, k
        bw = int(v.get("BANDWIDTH", "0") or 0)
        c.expect(peak <= bw <= peak * 1.10,
                 "master.m3u8: %s BANDWIDTH=%d, measured peak %.0f bit/s "
                 "(segment %s); expected between the peak and 10%% above "
                 "(%.0f)" % (r.name, bw, peak, at, peak * 1.10))
        v_bits = sum(sp.size for sp in r.segments) * 8
        v_dur = float(r.playlist.total())
        avg = (v_bits / v_dur if v_dur else 0.0) + a_avg
        abw = v.get("AVERAGE-BANDWIDTH")
        c.expect(abw is not None and abs(int(abw) - avg) <= 0.10 * avg,
                 "master.m3u8: %s AVERAGE-BANDWIDTH=%s, measured %.0f bit/s "
                 "(total bits / total duration, audio included); expected "
                 "within 10%%" % (r.name, abw, avg))


def check_upright(c, ctx, outdir, src_path, ref_filter, wrong_filter,
                  what):
    """Check 6: the top rung matches the source turned upright with explicit
    filters (PSNR > 30 dB) and carries no rotation metadata."""
    rungs = ctx.rungs(outdir)
    top = rungs[-1]
    st = top.stream_info()
    w, h = int(st["width"]), int(st["height"])
    concat = ctx.path("psnr", what, top.name + (
        ".mp4" if top.format == "fmp4" else ".ts"))
    with open(concat, "wb") as fh:
        if top.init is not None:
            fh.write(top.init.data)
        for s in top.playlist.segments:
            with open(top.playlist.seg_path(s), "rb") as sf:
                fh.write(sf.read())

    def graph(f):
        return ("[0:v]setpts=PTS-STARTPTS,format=yuv420p[o];"
                "[1:v]%s,scale=%d:%d:flags=bicubic:out_range=tv,"
                "format=yuv420p,setsar=1,setpts=PTS-STARTPTS[r];"
                "[o][r]psnr" % (f, w, h))
    inputs = [["-i", concat], ["-noautorotate", "-i", src_path]]
    good, r = H.psnr(graph(ref_filter), inputs)
    bad, _ = H.psnr(graph(wrong_filter), inputs) if wrong_filter else \
        (None, None)
    c.note("%s: %s PSNR %s dB against `%s`, %s dB against `%s`"
           % (what, top.name, good, ref_filter, bad, wrong_filter))
    c.expect(good is not None,
             "%s: PSNR of %s against the reference failed: %s"
             % (what, top.name, r.err_tail()))
    if good is not None:
        c.expect(good > 30.0,
                 "%s: %s (%dx%d) against the source through `%s` has PSNR "
                 "%.2f dB, expected > 30 dB (against `%s`: %s dB)"
                 % (what, top.name, w, h, ref_filter, good, wrong_filter,
                    "%.2f" % bad if bad is not None else "n/a"))
    for r_ in rungs:
        st = r_.stream_info()
        c.expect(not H.has_display_matrix(st),
                 "%s: %s still carries a display matrix: %s"
                 % (what, r_.label(), st.get("side_data_list")))
        c.expect("rotate" not in (st.get("tags") or {}),
                 "%s: %s still has a rotate tag: %s"
                 % (what, r_.label(), st.get("tags")))
        if r_.init is not None and r_.init.matrix is not None:
            c.expect(r_.init.matrix == H.IDENTITY_MATRIX,
                     "%s: %s init.mp4 tkhd matrix is %s, expected identity"
                     % (what, r_.label(), r_.init.matrix))
    return rungs


def check_square_multiple_of_4(c, rungs, aspect, what):
    """Check 6: sides that are multiples of 4, square pixels, display aspect
    within 1%."""
    for r in rungs:
        st = r.stream_info()
        w, h = int(st.get("width", 0)), int(st.get("height", 0))
        c.expect(w > 0 and h > 0, "%s: %s is %dx%d, expected a positive size"
                 % (what, r.label(), w, h))
        c.expect(w % 4 == 0, "%s: %s is %dx%d, expected a width that is a "
                 "multiple of 4" % (what, r.label(), w, h))
        c.expect(h % 4 == 0, "%s: %s is %dx%d, expected a height that is a "
                 "multiple of 4" % (what, r.label(), w, h))
        sar = st.get("sample_aspect_ratio")
        c.expect(sar in (None, "N/A", "0:1", "1:1"),
                 "%s: %s has sample_aspect_ratio %s, expected 1:1 or unset"
                 % (what, r.label(), sar))
        if r.init is not None and r.init.pasp is not None:
            hs, vs = r.init.pasp
            c.expect(hs == vs,
                     "%s: %s init.mp4 pasp box says %d:%d" % (what, r.label(),
                                                              hs, vs))
        if h:
            a = Fraction(w, h)
            c.expect(abs(a - aspect) / aspect <= Fraction(1, 100),
                     "%s: %s is %dx%d (aspect %.4f), the source displays at "
                     "%.4f: off by %.2f%%"
                     % (what, r.label(), w, h, float(a), float(aspect),
                        float(abs(a - aspect) / aspect) * 100))
        c.expect(r.name == "%dp" % min(w, h),
                 "%s: folder %s holds %dx%d frames; rung folders are named by "
                 "the short side" % (what, r.name, w, h))


# ---------------------------------------------------------------------------
# 1. Every source frame appears once per rung

@case()
def every_frame_of_a_29_97_fps_source_appears_once_per_rung(ctx):
    src_path = ctx.bear_2997(10)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    check_frames_match_source(ctx.c, ctx.rungs(out), src, exact=True)


@case()
def every_frame_of_a_23_976_fps_source_appears_once_per_rung(ctx):
    src_path = ctx.sintel_23976(10)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "2",
                            "--keyframe-interval", "1", "--chunk-segments",
                            "1")
    check_frames_match_source(ctx.c, ctx.rungs(out), src, exact=True)


@case()
def variable_frame_rate_sources_keep_their_timestamps(ctx):
    # A phone slow-motion capture (frame durations 33..325 ms).
    slow = ctx.corpus("axm-sample_android_slow_motion.mp4")
    src = H.SourceVideo(slow)
    out, _ = ctx.process_ok(slow, "slowmo", "--segment-duration", "0.5",
                            "--keyframe-interval", "0.25",
                            "--chunk-segments", "1")
    check_frames_match_source(ctx.c, ctx.rungs(out), src, exact=False)
    # Bear footage re-timed to a 33/33/50 ms cadence with a 0.5 s hold.
    bear = ctx.corpus("packager-bear-640x360-trailing-moov.mp4")
    vfr = ctx.path("inputs", "bear-vfr.mp4")
    H.ffmpeg(["-stream_loop", "2", "-i", bear, "-an", "-vf",
              "setpts='(N*0.033+floor(N/3)*0.017+gte(N,150)*0.5)/TB',"
              "format=yuv420p", "-fps_mode", "passthrough",
              "-frames:v", "220", "-video_track_timescale", "1000",
              "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", vfr])
    src = H.SourceVideo(vfr)
    out, _ = ctx.process_ok(vfr, "cadence", *SHORT_SEGMENTS)
    check_frames_match_source(ctx.c, ctx.rungs(out), src, exact=False)


# 2. Segments start with IDR frames, aligned across rungs

@case()
def every_segment_starts_with_an_idr_frame_aligned_across_rungs(ctx):
    src_path = ctx.bear_2997(10)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    check_segment_starts(ctx.c, ctx.rungs(out), 1, 1)


@case()
def two_second_segments_carry_a_keyframe_every_second(ctx):
    src_path = ctx.sintel_23976(12)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "2",
                            "--keyframe-interval", "1", "--chunk-segments",
                            "2", "--first-chunk-segments", "1")
    check_segment_starts(ctx.c, ctx.rungs(out), 2, 1)


@case()
def half_second_segments_start_with_idr_frames(ctx):
    src_path = ctx.sintel_23976(6)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "0.5",
                            "--keyframe-interval", "0.5", "--chunk-segments",
                            "1", "--rungs", "236,360")
    rungs = ctx.rungs(out)
    check_segment_starts(ctx.c, rungs, Fraction(1, 2), Fraction(1, 2))
    src = H.SourceVideo(src_path)
    check_extinf(ctx.c, rungs, src.last_dur, src.nominal)


# 3. EXTINF equals the real segment durations

@case()
def extinf_matches_segment_durations_at_29_97_fps(ctx):
    src_path = ctx.bear_2997(10)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    check_extinf(ctx.c, ctx.rungs(out), src.last_dur, src.nominal)


@case()
def extinf_matches_segment_durations_at_23_976_fps(ctx):
    src_path = ctx.sintel_23976(10)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    rungs = ctx.rungs(out)
    check_extinf(ctx.c, rungs, src.last_dur, src.nominal)
    audio = ctx.audio(out)
    check_extinf(ctx.c, [audio], None, Fraction(H.AAC_FRAME, H.AUDIO_RATE))


# 4. Playlists decode cleanly, DTS rise across chunk joints

@case()
def playlists_decode_cleanly_and_dts_rise_across_chunk_joints(ctx):
    src_path = ctx.sintel_23976(12)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "1",
                            "--keyframe-interval", "1", "--chunk-segments",
                            "2", "--first-chunk-segments", "1")
    rungs = ctx.rungs(out)
    check_decode_and_dts(ctx.c, rungs + [ctx.audio(out)])


# 5. Audio

@case()
def audio_keeps_every_sample_without_gaps_or_drift(ctx):
    src_path = ctx.bear_2997(12)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    audio = ctx.audio(out)
    rungs = ctx.rungs(out)
    origin = H.SourceVideo(src_path).origin
    check_audio_samples(ctx.c, audio, src_path, origin)
    check_audio_continuity(ctx.c, audio, src_path, origin,
                           audio_segment_boundaries(audio, rungs))
    check_decode_and_dts(ctx.c, [audio])


# 6. Orientation and pixel shape

@case()
def rotated_mirrored_source_comes_out_upright(ctx):
    src_path = ctx.corpus("axm-sample_rotate_and_reflect.mp4")
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "0.5",
                            "--keyframe-interval", "0.5")
    rungs = check_upright(ctx.c, ctx, out, src_path, "transpose=0",
                          "transpose=1", "rotate_and_reflect")
    src = H.SourceVideo(src_path)
    check_square_multiple_of_4(ctx.c, rungs, Fraction(720, 1080),
                               "rotate_and_reflect")
    check_frames_match_source(ctx.c, rungs, src, exact=True)


@case()
def portrait_4k60_source_comes_out_upright(ctx):
    src_path = ctx.corpus("axm-portrait_4k60.mp4")
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "1",
                            "--keyframe-interval", "1")
    rungs = check_upright(ctx.c, ctx, out, src_path, "transpose=1",
                          "transpose=2", "portrait_4k60")
    check_square_multiple_of_4(ctx.c, rungs, Fraction(2160, 3840),
                               "portrait_4k60")
    top = rungs[-1]
    st = top.stream_info()
    ctx.c.expect((int(st["width"]), int(st["height"])) == (1080, 1920),
                 "portrait_4k60: top rung without --enable-2160p is %sx%s, "
                 "expected 1080x1920" % (st["width"], st["height"]))


@case()
def upside_down_source_comes_out_upright(ctx):
    bear = ctx.corpus("packager-bear-640x360-trailing-moov.mp4")
    src_path = ctx.path("inputs", "bear-rot180.mp4")
    H.ffmpeg(["-i", bear, "-c", "copy", "-metadata:s:v", "rotate=180",
              src_path])
    streams, _, _ = H.probe_streams(src_path)
    ctx.c.require(H.stream_rotation(H.first_stream(streams, "video")) in
                  (180, -180), "test setup: %s has no 180 rotation" % src_path)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    rungs = check_upright(ctx.c, ctx, out, src_path, "hflip,vflip", "null",
                          "rotate=180")
    check_square_multiple_of_4(ctx.c, rungs, Fraction(640, 360), "rotate=180")


@case()
def odd_sized_source_gives_multiple_of_4_square_pixel_rungs(ctx):
    src_path = ctx.corpus("axm-bear-vp9-odd-dimensions.webm")
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "0.5",
                            "--keyframe-interval", "0.5")
    rungs = ctx.rungs(out)
    check_square_multiple_of_4(ctx.c, rungs, src.display_aspect(),
                               "161x121 VP9")
    ctx.c.expect(len(rungs) == 1,
                 "161x121 VP9: %d rungs %s, expected one rung at the "
                 "source's own size" % (len(rungs), [r.name for r in rungs]))
    check_frames_match_source(ctx.c, rungs, src, exact=True)


@case()
def non_square_pixel_sources_give_square_pixel_rungs(ctx):
    for name, aspect in (
            ("packager-bear-640x360-non_square_pixel-with_pasp.mp4",
             Fraction(640, 360)),
            ("axm-bbb_800x640_768kbps_30fps_avc_2b_firstpts_10_sec.mp4",
             None)):
        src_path = ctx.corpus(name)
        src = H.SourceVideo(src_path)
        want = aspect if aspect is not None else src.display_aspect()
        ctx.c.expect(aspect is None or src.display_aspect() == aspect,
                     "test setup: %s displays at %.4f, expected %.4f"
                     % (name, float(src.display_aspect()), float(want)))
        out, _ = ctx.process_ok(src_path, name, "--segment-duration", "2",
                                "--keyframe-interval", "1",
                                "--rungs", "236,360,432,540")
        rungs = ctx.rungs(out)
        check_square_multiple_of_4(ctx.c, rungs, want, name)


# 7. CODECS, levels, BANDWIDTH

@case()
def master_codecs_match_each_rung_sps(ctx):
    src_path = ctx.sintel_23976(8)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    rungs = ctx.rungs(out)
    audio = ctx.audio(out)
    mp = check_master(ctx.c, out, rungs, audio)
    check_codecs(ctx.c, mp, rungs, audio)


@case()
def bandwidth_attributes_match_measured_segment_rates(ctx):
    src_path = ctx.bear_2997(10)
    out, _ = ctx.process_ok(src_path, "run", "--segment-duration", "2",
                            "--keyframe-interval", "2")
    rungs = ctx.rungs(out)
    audio = ctx.audio(out)
    mp = check_master(ctx.c, out, rungs, audio)
    check_bandwidth(ctx.c, mp, rungs, audio)


@case()
def rung_1080p30_declares_level_4_0_or_higher(ctx):
    src_path = ctx.corpus("axm-edit_list_positive_shift.mp4")
    out, _ = ctx.process_ok(src_path, "run", "--rungs", "360,1080",
                            "--segment-duration", "2",
                            "--keyframe-interval", "2")
    rungs = ctx.rungs(out)
    audio = ctx.audio(out) if os.path.isdir(os.path.join(out, "audio")) \
        else None
    mp = check_master(ctx.c, out, rungs, audio)
    levels = check_codecs(ctx.c, mp, rungs, audio)
    ctx.c.expect("1080p" in levels,
                 "1920x1080 source with --rungs 360,1080 has no 1080p rung: "
                 "%s" % [r.name for r in rungs])
    if "1080p" in levels:
        lvl, w, h, fps = levels["1080p"]
        ctx.c.expect(lvl >= 40,
                     "1080p rung (%dx%d at %.2f fps) declares level_idc %d, "
                     "expected >= 40" % (w, h, fps, lvl))


@case()
def sixty_fps_rung_declares_a_level_above_4_1(ctx):
    src_path = ctx.corpus("axm-portrait_4k60.mp4")
    out, _ = ctx.process_ok(src_path, "run", "--rungs", "1080",
                            "--segment-duration", "1",
                            "--keyframe-interval", "1")
    rungs = ctx.rungs(out)
    audio = ctx.audio(out) if os.path.isdir(os.path.join(out, "audio")) \
        else None
    mp = check_master(ctx.c, out, rungs, audio)
    levels = check_codecs(ctx.c, mp, rungs, audio)
    ctx.c.expect("1080p" in levels, "no 1080p rung: %s"
                 % [r.name for r in rungs])
    if "1080p" in levels:
        lvl, w, h, fps = levels["1080p"]
        ctx.c.expect(fps > 55,
                     "1080p rung of a 60 fps source runs at %.2f fps" % fps)
        ctx.c.expect(lvl > 41,
                     "1080p rung (%dx%d at %.2f fps) declares level_idc %d; "
                     "60 fps at this size needs 42" % (w, h, fps, lvl))
    v = mp.variant_for("1080p")
    if v is not None and v.get("FRAME-RATE"):
        ctx.c.expect(abs(float(v.get("FRAME-RATE")) - 60.0) < 0.5,
                     "master.m3u8: 1080p FRAME-RATE=%s for a 60 fps source"
                     % v.get("FRAME-RATE"))


# 8. Broken inputs

@case()
def truncated_mp4_is_processed_correctly_or_rejected(ctx):
    src_path = ctx.corpus("axm-sample_mdat_too_long.mp4")
    out = ctx.outdir("run")
    opts = ["--segment-duration", "0.5", "--keyframe-interval", "0.5",
            "--chunk-segments", "1"]
    r = ctx.sinatra(src_path, out, *opts)
    if r.rc in (3, 4):
        check_error_run(ctx.c, r, src_path, out, (3, 4), "truncated mp4")
        return
    ctx.c.require(r.rc == 0,
                  "truncated mp4: `%s` exited %s, expected 0 (output for the "
                  "decodable part) or 3/4 (rejected); stderr: %s"
                  % (r.cmdline(), r.rc, r.err_tail()))
    rungs = ctx.rungs(out)
    src = H.SourceVideo(src_path)
    kept = len(rungs[0].all_frames())
    ctx.c.note("truncated mp4 processed; %d of %d decodable frames kept"
               % (kept, src.count))
    ctx.c.expect(kept > 0, "truncated mp4: output has no frames")
    # Check 1 on what was kept: the frames kept are source frames, every
    # rung keeps the same ones, none repeated.
    if kept == src.count:
        check_frames_match_source(ctx.c, rungs, src, exact=src.is_cfr())
    else:
        check_frames_match_source(ctx.c, rungs, src, exact=False,
                                  require_all=False)
    counts = {x.name: len(x.all_frames()) for x in rungs}
    ctx.c.expect(len(set(counts.values())) == 1,
                 "truncated mp4: rungs keep different frame counts %s"
                 % counts)
    check_segment_starts(ctx.c, rungs, Fraction(1, 2), Fraction(1, 2))
    check_extinf(ctx.c, rungs, src.last_dur, src.nominal)
    check_decode_and_dts(ctx.c, rungs)


def make_corrupt_mp4(ctx):
    """Bear with 4 KiB of garbage in the middle of its mdat."""
    bear = ctx.corpus("packager-bear-640x360-trailing-moov.mp4")
    with open(bear, "rb") as fh:
        data = bytearray(fh.read())
    mdat = H.find_box(bytes(data), "mdat")
    ctx.c.require(mdat is not None, "test setup: no mdat in %s" % bear)
    ps, be = mdat
    mid = (ps + be) // 2
    import random
    rnd = random.Random(1234)
    for i in range(mid, mid + 4096):
        data[i] = rnd.randrange(256)
    path = ctx.path("inputs", "bear-corrupt-mdat.mp4")
    with open(path, "wb") as fh:
        fh.write(data)
    return path


@case()
def corrupt_mp4_is_rejected_without_output(ctx):
    src_path = make_corrupt_mp4(ctx)
    out = ctx.outdir("run")
    r = ctx.sinatra(src_path, out, *SHORT_SEGMENTS)
    check_error_run(ctx.c, r, src_path, out, (3,), "mp4 with garbage in mdat")


@case()
def invalid_vp9_bitstream_is_rejected_without_output(ctx):
    src_path = ctx.corpus("axm-invalid-bitstream.webm")
    out = ctx.outdir("run")
    r = ctx.sinatra(src_path, out, *SHORT_SEGMENTS)
    check_error_run(ctx.c, r, src_path, out, (3,), "invalid VP9 bitstream")


@case()
def lying_duration_header_gives_about_one_second(ctx):
    src_path = ctx.corpus("axm-sample_fragmented.mp4")
    out = ctx.outdir("run")
    r = ctx.sinatra(src_path, out, "--segment-duration", "0.5",
                    "--keyframe-interval", "0.5", timeout=120)
    ctx.c.require(r.rc == 0,
                  "fragmented mp4 claiming 143165 s: `%s` exited %s, "
                  "expected 0 with about 1 s of output; stderr: %s"
                  % (r.cmdline(), r.rc, r.err_tail()))
    rungs = ctx.rungs(out)
    src_count = H.count_frames(src_path)
    for x in rungs:
        total = x.playlist.total()
        ctx.c.expect(Fraction(1, 2) <= total <= 2,
                     "fragmented mp4: %s lasts %s s by its EXTINFs, expected "
                     "about 1 s" % (x.label(), fmt_t(total)))
        ctx.c.expect(len(x.all_frames()) == src_count,
                     "fragmented mp4: %s has %d frames, the file has %d"
                     % (x.label(), len(x.all_frames()), src_count))
    if os.path.isdir(os.path.join(out, "audio")):
        a = H.MediaPlaylist(os.path.join(out, "audio", "index.m3u8"))
        ctx.c.expect(a.total() <= 2,
                     "fragmented mp4: audio lasts %s s, expected about 1 s"
                     % fmt_t(a.total()))


@case(needs_corpus=False)
def non_media_files_are_rejected_without_output(ctx):
    text = ctx.path("inputs", "notes.mp4")
    with open(text, "w") as fh:
        fh.write("This is a shopping list, not a video.\n" * 50)
    png = ctx.path("inputs", "picture.png")
    H.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=1",
              "-frames:v", "1", png])
    empty = ctx.path("inputs", "empty.mp4")
    open(empty, "wb").close()
    missing = ctx.path("inputs", "does-not-exist.mp4")
    for inp, what in ((text, "text file"), (png, "PNG image"),
                      (empty, "empty file"), (missing, "missing file")):
        out = ctx.outdir(os.path.basename(inp))
        r = ctx.sinatra(inp, out, *SHORT_SEGMENTS)
        check_error_run(ctx.c, r, inp, out, (3,), what)
    # With --json the failure is also reported as an "error" event.
    out = ctx.outdir("json")
    r = ctx.sinatra(text, out, "--json")
    events = parse_events(ctx.c, r.out, "text file with --json")
    ctx.c.expect(any(e.get("event") == "error" for e in events),
                 "text file with --json: no \"error\" event on stdout; "
                 "events: %s" % [e.get("event") for e in events])
    ctx.c.expect(r.rc == 3, "text file with --json: exited %s, expected 3"
                 % r.rc)


# 9. Playlists and concat scripts that reference local files

class FifoWatch:
    """Watches a FIFO: if anything opens it for reading, records it and
    opens the write end so that the reader is not stuck."""

    def __init__(self, path):
        self.path = path
        self.opened = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
                continue
            self.opened = True
            os.close(fd)
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        self._t.join()


def check_reference_refused(ctx, text, script_name, fifo_name, what):
    d = os.path.dirname(ctx.path("refs", what, "x"))
    fifo = os.path.join(d, fifo_name)
    os.mkfifo(fifo)
    script = os.path.join(d, script_name)
    with open(script, "w") as fh:
        fh.write(text.replace("FIFO", fifo_name).replace("ABSFIFO", fifo))
    out = ctx.outdir(what)
    watch = FifoWatch(fifo)
    try:
        r = ctx.sinatra(script, out, *SHORT_SEGMENTS, timeout=60)
    finally:
        watch.stop()
    ctx.c.expect(not watch.opened,
                 "%s: the file it references (%s, a FIFO) was opened for "
                 "reading" % (what, fifo))
    ctx.c.expect(not r.timed_out,
                 "%s: the run blocked (killed after 60 s), the referenced "
                 "FIFO was presumably opened" % what)
    check_error_run(ctx.c, r, script, out, (3,), what)


HLS_TEXT = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
            "#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nFIFO\n"
            "#EXTINF:10.0,\nABSFIFO\n#EXT-X-ENDLIST\n")
CONCAT_TEXT = "ffconcat version 1.0\nfile 'FIFO'\nduration 10\n"


@case(needs_corpus=False)
def hls_playlist_input_is_refused_without_opening_its_segments(ctx):
    check_reference_refused(ctx, HLS_TEXT, "list.m3u8", "clip.ts",
                            "hls playlist .m3u8")


@case(needs_corpus=False)
def hls_playlist_named_mp4_is_refused_without_opening_its_segments(ctx):
    check_reference_refused(ctx, HLS_TEXT, "movie.mp4", "clip.ts",
                            "hls playlist named .mp4")


@case(needs_corpus=False)
def concat_script_input_is_refused_without_opening_its_files(ctx):
    check_reference_refused(ctx, CONCAT_TEXT, "list.ffconcat", "part.mp4",
                            "ffconcat script")
    check_reference_refused(ctx, CONCAT_TEXT, "upload.mp4", "part2.mp4",
                            "ffconcat script named .mp4")


# 10. MPEG-TS output

@case()
def mpeg_ts_output_passes_frame_segment_and_timing_checks(ctx):
    src_path = ctx.bear_2997(10)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", "--segment-format", "ts",
                            *SHORT_SEGMENTS)
    rungs = ctx.rungs(out)
    for r in rungs:
        ctx.c.expect(r.format == "ts" and all(
            s.uri.endswith(".ts") for s in r.playlist.segments),
            "%s: --segment-format ts but the playlist has EXT-X-MAP %s and "
            "segments %s" % (r.label(), r.playlist.map_uri,
                             [s.uri for s in r.playlist.segments[:2]]))
        ctx.c.expect(not os.path.exists(os.path.join(r.dir, "init.mp4")),
                     "%s: init.mp4 written for MPEG-TS output" % r.label())
    check_frames_match_source(ctx.c, rungs, src, exact=True)
    check_segment_starts(ctx.c, rungs, 1, 1)
    check_extinf(ctx.c, rungs, src.last_dur, src.nominal)
    audio = ctx.audio(out)
    check_decode_and_dts(ctx.c, rungs + [audio])
    mp = check_master(ctx.c, out, rungs, audio)
    check_codecs(ctx.c, mp, rungs, audio)


# 11. Audio-only, video-only, JSON, determinism

def check_audio_only(ctx, src_path, what):
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    ctx.c.expect(not H.rung_dirs(out),
                 "%s: audio-only source but rung folders %s"
                 % (what, H.rung_dirs(out)))
    ctx.c.require(os.path.isfile(os.path.join(out, "audio", "index.m3u8")),
                  "%s: no audio/index.m3u8" % what)
    mp = H.MasterPlaylist(os.path.join(out, "master.m3u8"))
    ctx.c.expect(len(mp.variants) == 1 and
                 mp.variants[0].uri == "audio/index.m3u8",
                 "%s: master.m3u8 variants %s, expected one that points at "
                 "audio/index.m3u8" % (what, [v.uri for v in mp.variants]))
    audio = ctx.audio(out)
    if mp.variants:
        v = mp.variants[0]
        ctx.c.expect(v.get("RESOLUTION") is None,
                     "%s: audio-only variant has RESOLUTION=%s"
                     % (what, v.get("RESOLUTION")))
        check_codecs(ctx.c, mp, [], audio)
    streams, _, _ = H.probe_streams(src_path)
    a = H.first_stream(streams, "audio")
    origin = H.frac(a.get("start_time")) or Fraction(0)
    check_audio_samples(ctx.c, audio, src_path, origin)
    check_decode_and_dts(ctx.c, [audio])
    check_extinf(ctx.c, [audio], None, Fraction(H.AAC_FRAME, H.AUDIO_RATE))


@case()
def audio_only_aac_source_gives_an_audio_only_ladder(ctx):
    check_audio_only(ctx, ctx.corpus("axm-bbb_1ch_16kHz_aac.mp4"),
                     "16 kHz mono AAC")


@case()
def audio_only_wav_source_gives_an_audio_only_ladder(ctx):
    check_audio_only(ctx, ctx.corpus("axm-sample_96khz.wav"),
                     "96 kHz mono WAV")


@case()
def video_only_source_has_no_audio_rendition(ctx):
    src_path = ctx.sintel_23976(6, audio=False)
    src = H.SourceVideo(src_path)
    out, _ = ctx.process_ok(src_path, "run", *SHORT_SEGMENTS)
    ctx.c.expect(not os.path.exists(os.path.join(out, "audio")),
                 "video-only source: %s/audio exists" % out)
    rungs = ctx.rungs(out)
    mp = check_master(ctx.c, out, rungs, None)
    ctx.c.expect(not any(m.get("TYPE") == "AUDIO" for m in mp.media),
                 "video-only source: master.m3u8 declares an audio "
                 "rendition: %s" % mp.media)
    check_frames_match_source(ctx.c, rungs, src, exact=True)
    check_codecs(ctx.c, mp, rungs, None)


def parse_events(c, stdout, what):
    events = []
    for i, line in enumerate(stdout.splitlines()):
        if not line.strip():
            c.expect(False, "%s: stdout line %d is empty" % (what, i + 1))
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            c.expect(False, "%s: stdout line %d is not JSON (%s): %r"
                     % (what, i + 1, e, line[:200]))
            continue
        c.expect(isinstance(obj, dict) and "event" in obj,
                 "%s: stdout line %d has no \"event\" key: %r"
                 % (what, i + 1, line[:200]))
        if isinstance(obj, dict):
            events.append(obj)
    return events


EVENTS = {"probe", "plan", "progress", "first_segments", "done", "error"}


@case()
def json_output_is_one_event_per_line_ending_with_done(ctx):
    src_path = ctx.bear_2997(6)
    out, r = ctx.process_ok(src_path, "run", "--json", *SHORT_SEGMENTS)
    events = parse_events(ctx.c, r.out, "--json")
    names = [e.get("event") for e in events]
    ctx.c.expect(all(n in EVENTS for n in names),
                 "--json: unknown events %s" % sorted(set(names) - EVENTS))
    ctx.c.expect(names and names[-1] == "done",
                 "--json: last event is %s, expected done (events: %s)"
                 % (names[-1] if names else None, names))
    ctx.c.expect(names.count("done") == 1,
                 "--json: %d done events" % names.count("done"))
    for ev in ("probe", "plan", "first_segments"):
        ctx.c.expect(ev in names and names.index(ev) < len(names) - 1,
                     "--json: no %s event before done (events: %s)"
                     % (ev, names))
    ctx.c.expect("error" not in names, "--json: error event in a "
                 "successful run: %s" % [e for e in events
                                         if e.get("event") == "error"])
    if "probe" in names and "plan" in names:
        ctx.c.expect(names.index("probe") < names.index("plan"),
                     "--json: plan before probe: %s" % names)


def compare_trees(c, a, b, what):
    da, db = H.tree_digest(a), H.tree_digest(b)
    c.expect(sorted(da) == sorted(db),
             "%s: file lists differ: only in first %s, only in second %s"
             % (what, sorted(set(da) - set(db)), sorted(set(db) - set(da))))
    diff = sorted(k for k in set(da) & set(db) if da[k] != db[k])
    c.expect(not diff, "%s: %d files differ: %s" % (what, len(diff),
                                                    diff[:12]))


@case()
def same_command_twice_gives_identical_bytes(ctx):
    src_path = ctx.bear_2997(8)
    opts = SHORT_SEGMENTS + ["--workers", "2"]
    a, _ = ctx.process_ok(src_path, "first", *opts)
    b, _ = ctx.process_ok(src_path, "second", *opts)
    compare_trees(ctx.c, a, b, "same command twice")


@case()
def one_worker_and_two_workers_give_identical_bytes(ctx):
    src_path = ctx.bear_2997(8)
    a, _ = ctx.process_ok(src_path, "one", *(SHORT_SEGMENTS +
                                              ["--workers", "1"]))
    b, _ = ctx.process_ok(src_path, "two", *(SHORT_SEGMENTS +
                                              ["--workers", "2"]))
    compare_trees(ctx.c, a, b, "--workers 1 vs --workers 2")


@case()
def process_workers_give_the_same_bytes_as_thread_workers(ctx):
    src_path = ctx.bear_2997(8)
    a, _ = ctx.process_ok(src_path, "thread", *(SHORT_SEGMENTS + [
        "--workers", "2", "--worker-mode", "thread"]))
    b, _ = ctx.process_ok(src_path, "process", *(SHORT_SEGMENTS + [
        "--workers", "2", "--worker-mode", "process"]))
    compare_trees(ctx.c, a, b, "--worker-mode thread vs process")


# 12. Limits

def two_second_clip(ctx):
    bear = ctx.corpus("packager-bear-640x360-trailing-moov.mp4")
    path = ctx.path("inputs", "bear-2s.mp4")
    H.ffmpeg(["-i", bear, "-t", "2", "-c:v", "libx264", "-preset",
              "veryfast", "-c:a", "aac", path])
    return path


@case()
def over_long_input_is_rejected_by_max_duration(ctx):
    clip = two_second_clip(ctx)
    out = ctx.outdir("run")
    r = ctx.sinatra(clip, out, "--max-duration", "1", *SHORT_SEGMENTS)
    check_error_run(ctx.c, r, clip, out, (3,), "2 s clip, --max-duration 1")
    ctx.c.expect("duration" in r.err.lower(),
                 "--max-duration 1: error does not name the duration limit: "
                 "%r" % r.err.strip())


@case()
def over_wide_input_is_rejected_by_max_width(ctx):
    clip = two_second_clip(ctx)
    out = ctx.outdir("run")
    r = ctx.sinatra(clip, out, "--max-width", "320", *SHORT_SEGMENTS)
    check_error_run(ctx.c, r, clip, out, (3,), "640x360 clip, --max-width 320")
    ctx.c.expect("width" in r.err.lower(),
                 "--max-width 320: error does not name the width limit: %r"
                 % r.err.strip())


@case()
def other_limits_reject_and_name_the_limit(ctx):
    clip = two_second_clip(ctx)
    size = os.path.getsize(clip)
    for opt, val, word in (("--max-height", "300", "height"),
                           ("--max-frames", "30", "frame"),
                           ("--max-file-size", str(size - 1), "size")):
        out = ctx.outdir(opt.strip("-"))
        r = ctx.sinatra(clip, out, opt, val, *SHORT_SEGMENTS)
        what = "640x360 2 s clip (%d bytes), %s %s" % (size, opt, val)
        check_error_run(ctx.c, r, clip, out, (3,), what)
        ctx.c.expect(word in r.err.lower(),
                     "%s: error does not name the limit (%s): %r"
                     % (what, word, r.err.strip()))
    # Limits the clip meets let it through.
    out = ctx.outdir("within")
    r = ctx.sinatra(clip, out, "--max-width", "640", "--max-height", "360",
                    "--max-duration", "3", "--max-frames", "100",
                    "--max-file-size", str(size), *SHORT_SEGMENTS)
    ctx.c.expect(r.rc == 0 and os.path.isdir(out),
                 "limits the clip meets: `%s` exited %s, expected 0; "
                 "stderr: %s" % (r.cmdline(), r.rc, r.err_tail()))


# Further contract checks

@case(needs_corpus=False)
def usage_errors_exit_2_and_write_nothing(ctx):
    clip = ctx.path("inputs", "testsrc.mp4")
    H.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
              "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", clip])
    cases = [
        ("--keyframe-interval 4 does not divide --segment-duration 6",
         ["--segment-duration", "6", "--keyframe-interval", "4"]),
        ("--segment-format mkv", ["--segment-format", "mkv"]),
        ("--rungs not ascending", ["--rungs", "360,236"]),
        ("--rungs side not a multiple of 4", ["--rungs", "234,360"]),
        ("unknown option", ["--no-such-option"]),
        ("--workers 0", ["--workers", "0"]),
        ("--chunk-segments 0", ["--chunk-segments", "0"]),
        ("--worker-mode fork", ["--worker-mode", "fork"]),
    ]
    for what, opts in cases:
        out = ctx.outdir(re.sub(r"\W+", "_", what))
        r = ctx.sinatra(clip, out, *opts)
        ctx.c.expect(r.rc == 2, "%s: `%s` exited %s, expected 2; stderr: %s"
                     % (what, r.cmdline(), r.rc, r.err_tail()))
        ctx.c.expect(r.err.strip() != "", "%s: nothing on stderr" % what)
        ctx.c.expect(not os.path.exists(out) and not os.listdir(
            os.path.dirname(out)),
            "%s: wrote %s" % (what, os.listdir(os.path.dirname(out))))
    out = ctx.outdir("no_input")
    r = H.run([ctx.binary, "process", "-o", out], timeout=60)
    ctx.c.expect(r.rc == 2, "no INPUT: `%s` exited %s, expected 2"
                 % (r.cmdline(), r.rc))
    ctx.c.expect(not os.path.exists(out), "no INPUT: wrote %s" % out)


def start_json_run(ctx, inp, outdir, opts):
    cmd = ctx.cmd(inp, outdir, ["--json"] + list(opts))
    errf = open(ctx.path("logs", "stderr-%d.txt" % time.time_ns()), "w+")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         text=True)
    return p, errf, " ".join(cmd)


@case()
def interrupted_run_exits_130_and_leaves_nothing(ctx):
    src_path = ctx.bear_2997(20)
    out = ctx.outdir("run")
    p, errf, cmd = start_json_run(ctx, src_path, out, SHORT_SEGMENTS + [
        "--workers", "1"])
    seen = []
    deadline = time.monotonic() + BIN_TIMEOUT
    sent = False
    try:
        for line in p.stdout:
            try:
                ev = json.loads(line).get("event")
            except ValueError:
                ev = None
            seen.append(ev)
            if ev in ("progress", "first_segments") and not sent:
                os.kill(p.pid, signal.SIGINT)
                sent = True
            if time.monotonic() > deadline:
                break
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        H.kill_group(p)
        rc = p.wait()
        ctx.c.expect(False, "`%s` did not exit within 60 s of SIGINT" % cmd)
    errf.seek(0)
    err = errf.read()
    errf.close()
    ctx.c.require(sent, "`%s` finished (events %s) before a progress or "
                  "first_segments event to interrupt at" % (cmd, seen))
    ctx.c.expect(rc == 130, "SIGINT during `%s`: exited %s, expected 130; "
                 "stderr: %s" % (cmd, rc, err.strip()[-400:]))
    ctx.c.expect(not os.path.exists(out),
                 "SIGINT during `%s`: OUTDIR %s exists" % (cmd, out))
    left = os.listdir(os.path.dirname(out))
    ctx.c.expect(not left, "SIGINT during `%s`: left behind next to OUTDIR: "
                 "%s" % (cmd, left))


@case()
def working_folder_is_playable_at_first_segments(ctx):
    src_path = ctx.bear_2997(20)
    out = ctx.outdir("run")
    p, errf, cmd = start_json_run(ctx, src_path, out, SHORT_SEGMENTS + [
        "--workers", "1"])
    partial = os.path.join(os.path.dirname(out), ".out.partial-%d" % p.pid)
    checked = False
    names = []
    for line in p.stdout:
        try:
            ev = json.loads(line).get("event")
        except ValueError:
            ev = None
        names.append(ev)
        if ev == "first_segments" and not checked:
            checked = True
            ctx.c.expect(os.path.isdir(partial),
                         "at first_segments: working folder %s is missing "
                         "(next to OUTDIR: %s)"
                         % (partial, os.listdir(os.path.dirname(out))))
            ctx.c.expect(not os.path.exists(out),
                         "at first_segments: OUTDIR %s exists before the "
                         "job is done" % out)
            mpath = os.path.join(partial, "master.m3u8")
            if ctx.c.expect(os.path.isfile(mpath),
                            "at first_segments: %s is missing" % mpath):
                mp = H.MasterPlaylist(mpath)
                ctx.c.expect(mp.variants, "at first_segments: master.m3u8 "
                             "lists no variant")
                for v in mp.variants:
                    vp = os.path.join(partial, v.uri)
                    if not ctx.c.expect(os.path.isfile(vp),
                                        "at first_segments: %s is missing"
                                        % vp):
                        continue
                    pl = H.MediaPlaylist(vp)
                    ctx.c.expect(pl.playlist_type == "EVENT" and
                                 not pl.endlist,
                                 "at first_segments: %s has PLAYLIST-TYPE %s"
                                 " ENDLIST %s, expected EVENT without "
                                 "ENDLIST" % (v.uri, pl.playlist_type,
                                              pl.endlist))
                    ctx.c.expect(len(pl.segments) >= 1,
                                 "at first_segments: %s lists no segment"
                                 % v.uri)
                    for s in pl.segments:
                        ctx.c.expect(os.path.isfile(pl.seg_path(s)),
                                     "at first_segments: %s lists %s, which "
                                     "does not exist" % (v.uri, s.uri))
    rc = p.wait(timeout=BIN_TIMEOUT)
    errf.close()
    ctx.c.expect(checked, "`%s`: no first_segments event (events %s)"
                 % (cmd, sorted(set(n for n in names if n))))
    ctx.c.require(rc == 0, "`%s` exited %s" % (cmd, rc))
    ctx.c.expect(not os.path.exists(partial),
                 "after the run: working folder %s still exists" % partial)
    ctx.c.expect(os.listdir(os.path.dirname(out)) == ["out"],
                 "after the run: next to OUTDIR: %s"
                 % os.listdir(os.path.dirname(out)))
    for r in ctx.rungs(out):
        ctx.c.expect(r.playlist.playlist_type == "VOD" and
                     r.playlist.endlist,
                     "%s: final playlist has PLAYLIST-TYPE %s ENDLIST %s, "
                     "expected VOD with ENDLIST" % (r.label(),
                                                    r.playlist.playlist_type,
                                                    r.playlist.endlist))


@case()
def output_layout_matches_the_documented_tree(ctx):
    src_path = ctx.bear_2997(8)
    out, res = ctx.process_ok(src_path, "run", "--quiet", *SHORT_SEGMENTS)
    ctx.c.expect(res.out == "" and res.err == "",
                 "--quiet: printed %r on stdout and %r on stderr"
                 % (res.out[:200], res.err[:200]))
    rungs = ctx.rungs(out)
    ctx.c.expect(os.listdir(os.path.dirname(out)) == ["out"],
                 "next to OUTDIR after success: %s"
                 % os.listdir(os.path.dirname(out)))
    top = set(os.listdir(out))
    want = {"master.m3u8", "poster.jpg", "audio"} | {r.name for r in rungs}
    ctx.c.expect(top == want, "OUTDIR holds %s, expected %s"
                 % (sorted(top), sorted(want)))
    ctx.c.expect([r.name for r in rungs] == ["236p", "360p"],
                 "640x360 source with default rungs gave %s, expected 236p "
                 "and 360p" % [r.name for r in rungs])
    for r in rungs + [ctx.audio(out)]:
        pl = r.playlist
        ctx.c.expect(pl.playlist_type == "VOD" and pl.endlist,
                     "%s: PLAYLIST-TYPE %s, ENDLIST %s; expected VOD with "
                     "ENDLIST" % (r.label(), pl.playlist_type, pl.endlist))
        ctx.c.expect(pl.map_uri == "init.mp4",
                     "%s: EXT-X-MAP URI %s, expected init.mp4"
                     % (r.label(), pl.map_uri))
        names = ["seg_%05d.m4s" % i for i in range(len(pl.segments))]
        ctx.c.expect([s.uri for s in pl.segments] == names,
                     "%s: segment URIs %s..., expected seg_00000.m4s onwards"
                     % (r.label(), [s.uri for s in pl.segments[:3]]))
        files = set(os.listdir(r.dir))
        want = {"index.m3u8", "init.mp4"} | set(names)
        if r.kind == "video":
            want.add("iframes.m3u8")
        ctx.c.expect(files == want,
                     "%s: folder has unexpected files %s and lacks %s"
                     % (r.label(), sorted(files - want), sorted(want - files)))
        if r.kind == "video":
            check_iframes(ctx, r)
    poster = os.path.join(out, "poster.jpg")
    streams, fmt, pr = H.probe_streams(poster)
    v = H.first_stream(streams, "video")
    ctx.c.expect(v is not None and v.get("codec_name") == "mjpeg",
                 "poster.jpg is not a JPEG image: %s %s"
                 % (v and v.get("codec_name"), pr.err_tail()))


def check_iframes(ctx, r):
    """iframes.m3u8: I-frames only, one entry per keyframe at least per
    segment, each byte range decodes to a key I frame."""
    path = os.path.join(r.dir, "iframes.m3u8")
    if not ctx.c.expect(os.path.isfile(path), "%s: no iframes.m3u8"
                        % r.label()):
        return
    pl = H.MediaPlaylist(path)
    ctx.c.expect(pl.iframes_only, "%s: iframes.m3u8 lacks "
                 "EXT-X-I-FRAMES-ONLY" % r.label())
    ctx.c.expect(len(pl.segments) >= len(r.playlist.segments),
                 "%s: iframes.m3u8 has %d entries for %d segments"
                 % (r.label(), len(pl.segments), len(r.playlist.segments)))
    for k, s in enumerate(pl.segments):
        if not ctx.c.expect(s.byterange is not None,
                            "%s: iframes.m3u8 entry %d (%s) has no "
                            "EXT-X-BYTERANGE" % (r.label(), k, s.uri)):
            continue
        n, off = s.byterange
        segfile = pl.seg_path(s)
        size = os.path.getsize(segfile) if os.path.isfile(segfile) else -1
        if not ctx.c.expect(0 <= off and off + n <= size,
                            "%s: iframes.m3u8 entry %d: range %d@%d outside "
                            "%s (%d bytes)" % (r.label(), k, n, off, s.uri,
                                               size)):
            continue
        with open(segfile, "rb") as fh:
            fh.seek(off)
            body = fh.read(n)
        p = ctx.path("iframes", r.name, "%05d%s" % (
            k, ".mp4" if r.init else ".ts"))
        with open(p, "wb") as fh:
            if r.init is not None:
                fh.write(r.init.data)
            fh.write(body)
        st, pk, fr, res = H.probe_media(p, "v:0")
        ctx.c.expect(fr and fr[0].key == 1 and fr[0].pict == "I",
                     "%s: iframes.m3u8 entry %d (%d@%d in %s) does not "
                     "decode to a key I frame: %s"
                     % (r.label(), k, n, off, s.uri,
                        (fr[0].key, fr[0].pict) if fr else res.err_tail()))


@case()
def overwrite_replaces_an_existing_output_and_its_absence_keeps_it(ctx):
    src_path = ctx.sintel_23976(3, audio=False)
    out, _ = ctx.process_ok(src_path, "run", "--rungs", "236",
                            *SHORT_SEGMENTS)
    marker = os.path.join(out, "marker.txt")
    with open(marker, "w") as fh:
        fh.write("left by the test\n")
    r = ctx.sinatra(src_path, out, "--rungs", "236", *SHORT_SEGMENTS)
    ctx.c.expect(r.rc != 0,
                 "second run into an existing OUTDIR without --overwrite: "
                 "`%s` exited 0" % r.cmdline())
    ctx.c.expect(os.path.isfile(marker),
                 "second run without --overwrite: the existing OUTDIR was "
                 "replaced (marker file gone)")
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    ctx.c.expect(r.rc == 0 or len(lines) == 1,
                 "second run without --overwrite: stderr has %d lines, "
                 "expected one error line: %r" % (len(lines), r.err[:400]))
    r = ctx.sinatra(src_path, out, "--rungs", "236", "--overwrite",
                    *SHORT_SEGMENTS)
    ctx.c.expect(r.rc == 0, "`%s` exited %s, expected 0; stderr: %s"
                 % (r.cmdline(), r.rc, r.err_tail()))
    ctx.c.expect(not os.path.exists(marker),
                 "--overwrite: the old OUTDIR's marker file is still there")
    ctx.c.expect(os.path.isfile(os.path.join(out, "master.m3u8")),
                 "--overwrite: no master.m3u8 in the new OUTDIR")
    ctx.c.expect(sorted(os.listdir(os.path.dirname(out))) == ["out"],
                 "--overwrite: next to OUTDIR: %s"
                 % os.listdir(os.path.dirname(out)))


@case()
def enable_2160p_adds_a_2160p_rung_with_a_level_for_it(ctx):
    src_path = ctx.corpus("axm-portrait_4k60.mp4")
    out, _ = ctx.process_ok(src_path, "run", "--enable-2160p",
                            "--segment-duration", "1",
                            "--keyframe-interval", "1")
    rungs = ctx.rungs(out)
    names = [r.name for r in rungs]
    ctx.c.expect(names[-1:] == ["2160p"],
                 "--enable-2160p on a 2160x3840 source: rungs %s, expected "
                 "2160p on top" % names)
    audio = ctx.audio(out) if os.path.isdir(os.path.join(out, "audio")) \
        else None
    mp = check_master(ctx.c, out, rungs, audio)
    check_codecs(ctx.c, mp, rungs, audio)
    check_square_multiple_of_4(ctx.c, rungs, Fraction(2160, 3840),
                               "portrait_4k60")


@case()
def late_video_start_keeps_its_offset_on_the_timeline(ctx):
    # Video starts 1.0 s after audio (edit list with a positive shift).
    src_path = ctx.corpus("axm-edit_list_positive_shift.mp4")
    streams, _, _ = H.probe_streams(src_path)
    v = H.first_stream(streams, "video")
    a = H.first_stream(streams, "audio")
    vstart, astart = H.frac(v["start_time"]), H.frac(a["start_time"])
    origin = min(vstart, astart)
    out, _ = ctx.process_ok(src_path, "run", "--rungs", "236",
                            "--segment-duration", "2",
                            "--keyframe-interval", "1")
    rungs = ctx.rungs(out)
    audio = ctx.audio(out)
    for r in rungs:
        first = min(f.pts for f in r.all_frames())
        want = TIMELINE_OFFSET + vstart - origin
        ctx.c.expect(abs(first - want) <= MS,
                     "%s: first frame at %s s, expected %s s (10 s + video "
                     "start %s s - origin %s s)"
                     % (r.label(), fmt_t(first), fmt_t(want), fmt_t(vstart),
                        fmt_t(origin)))
    check_segment_starts(ctx.c, rungs, 2, 1)
    check_audio_samples(ctx.c, audio, src_path, origin)


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
        print("usage: test_process.py --list | --binary PATH CASE",
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
    if fn.needs_corpus and not os.path.isdir(media_dir()):
        print("SKIP: media corpus folder %s is absent (set SN_MEDIA_DIR)"
              % media_dir())
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
