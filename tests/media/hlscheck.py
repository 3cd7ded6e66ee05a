"""Helpers for the integration tests of `sinatra process`.

Reads Sinatra's HLS output back with ffprobe/ffmpeg and with small parsers
for the playlists and the MP4 boxes, and turns what it finds into checks.
Python 3 standard library only; the media tools are the ffmpeg/ffprobe
command-line programs.

Times are kept as fractions.Fraction seconds so that timestamps from
different time bases compare exactly; tolerances are explicit at each check.
"""

import array
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

# Every rendition's presentation times are the source's plus this offset
# (docs/OUTPUT.md, "Timeline").
TIMELINE_OFFSET = Fraction(10)
AAC_PRIMING = 1024
AAC_FRAME = 1024
AUDIO_RATE = 48000
MS = Fraction(1, 1000)


class CaseFailed(Exception):
    """A required step failed; the case cannot go on."""


class CaseSkipped(Exception):
    """The case cannot run here (exit 77)."""


def fmt_t(t):
    """Formats a time in seconds with microsecond precision."""
    if t is None:
        return "None"
    return "%.6f" % float(t)


class Checks:
    """Collects assertions. Each check has its own message; a failed check
    is printed at once and the case goes on, so one run shows every broken
    condition. require() stops the case."""

    MAX_PRINTED = 60

    def __init__(self):
        self.n_checks = 0
        self.failures = []

    def expect(self, cond, msg):
        self.n_checks += 1
        if not cond:
            self.failures.append(msg)
            if len(self.failures) <= self.MAX_PRINTED:
                print("FAIL: " + msg, flush=True)
            elif len(self.failures) == self.MAX_PRINTED + 1:
                print("FAIL: (further failures counted, not printed)",
                      flush=True)
        return bool(cond)

    def require(self, cond, msg):
        if not self.expect(cond, msg):
            raise CaseFailed(msg)
        return True

    def note(self, msg):
        print("note: " + msg, flush=True)


# ---------------------------------------------------------------------------
# Running programs

class Result:
    def __init__(self, cmd, rc, out, err, elapsed, timed_out):
        self.cmd = cmd
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed
        self.timed_out = timed_out

    def cmdline(self):
        return " ".join(shell_quote(str(c)) for c in self.cmd)

    def err_tail(self, n=600):
        e = self.err.strip()
        return e if len(e) <= n else "..." + e[-n:]


def shell_quote(s):
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def run(cmd, timeout=600, binary_output=False, cwd=None):
    """Runs cmd in its own process group; kills that group (and only it) on
    timeout. Returns a Result."""
    cmd = [str(c) for c in cmd]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         cwd=cwd)
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(p)
        out, err = p.communicate()
    elapsed = time.monotonic() - t0
    if not binary_output:
        out = out.decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    return Result(cmd, p.returncode, out, err, elapsed, timed_out)


def kill_group(p):
    """Kills the process group of a child we started with
    start_new_session=True (its id is the child's pid)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tool_ok(name):
    return shutil.which(name) is not None


def ffmpeg(args, timeout=300):
    """Runs ffmpeg to make an input; a failure stops the case (it is the
    test's own setup that broke, not the binary)."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"] + \
        [str(a) for a in args]
    r = run(cmd, timeout=timeout)
    if r.rc != 0:
        raise CaseFailed("test setup: ffmpeg failed (rc %s): %s\n%s"
                         % (r.rc, r.cmdline(), r.err_tail()))
    return r


def ffprobe_json(args, path, timeout=300):
    cmd = ["ffprobe", "-v", "error", "-of", "json"] + [str(a) for a in args] \
        + [str(path)]
    r = run(cmd, timeout=timeout)
    try:
        data = json.loads(r.out) if r.out.strip() else {}
    except ValueError:
        data = {}
    return data, r


# ---------------------------------------------------------------------------
# Probing sources

def frac(s):
    """Parses '1/30000', '30000/1001', '0.5' into a Fraction; None for N/A."""
    if s is None:
        return None
    if isinstance(s, (int, Fraction)):
        return Fraction(s)
    s = str(s).replace(":", "/")
    if s in ("N/A", "", "0/0"):
        return None
    if "/" in s:
        a, b = s.split("/", 1)
        if int(b) == 0:
            return None
        return Fraction(int(a), int(b))
    return Fraction(s)


def probe_streams(path):
    data, r = ffprobe_json(["-show_streams", "-show_format"], path)
    return data.get("streams", []), data.get("format", {}), r


def first_stream(streams, kind):
    for s in streams:
        if s.get("codec_type") == kind and \
                not s.get("disposition", {}).get("attached_pic"):
            return s
    return None


def count_frames(path, selector="v:0"):
    data, r = ffprobe_json(["-count_frames", "-select_streams", selector,
                            "-show_entries", "stream=nb_read_frames"], path)
    st = data.get("streams", [])
    if not st or st[0].get("nb_read_frames") in (None, "N/A"):
        raise CaseFailed("test setup: cannot count frames of %s: %s"
                         % (path, r.err_tail()))
    return int(st[0]["nb_read_frames"])


class Frame:
    __slots__ = ("pts", "dur", "key", "pict", "pos", "width", "height",
                 "sar", "nb_samples", "segment")

    def __init__(self):
        self.pts = None
        self.dur = None
        self.key = 0
        self.pict = "?"
        self.pos = None
        self.width = None
        self.height = None
        self.sar = None
        self.nb_samples = 0
        self.segment = None


class Packet:
    __slots__ = ("pts", "dts", "dur", "pos", "size", "key", "segment")


def _ts(v, tb):
    if v is None or v == "N/A":
        return None
    return int(v) * tb


def parse_probe(data):
    """Turns ffprobe JSON (-show_streams -show_packets -show_frames, one
    selected stream) into (stream, packets, frames) with Fraction times."""
    streams = data.get("streams", [])
    stream = streams[0] if streams else {}
    tb = frac(stream.get("time_base", "1/1")) or Fraction(1)
    packets, frames = [], []
    items = data.get("packets_and_frames")
    if items is None:
        items = [dict(p, type="packet") for p in data.get("packets", [])] + \
            [dict(f, type="frame") for f in data.get("frames", [])]
    for it in items:
        if it.get("type") == "packet":
            p = Packet()
            p.pts = _ts(it.get("pts"), tb)
            p.dts = _ts(it.get("dts"), tb)
            p.dur = _ts(it.get("duration"), tb)
            p.pos = int(it["pos"]) if it.get("pos") not in (None, "N/A") \
                else None
            p.size = int(it.get("size", 0))
            p.key = "K" in it.get("flags", "")
            p.segment = None
            packets.append(p)
        elif it.get("type") == "frame":
            f = Frame()
            pts = it.get("pts")
            if pts in (None, "N/A"):
                pts = it.get("best_effort_timestamp")
            f.pts = _ts(pts, tb)
            f.dur = _ts(it.get("pkt_duration"), tb)
            f.key = int(it.get("key_frame", 0))
            f.pict = it.get("pict_type", "?")
            f.pos = int(it["pkt_pos"]) if it.get("pkt_pos") not in \
                (None, "N/A") else None
            f.width = it.get("width")
            f.height = it.get("height")
            f.sar = it.get("sample_aspect_ratio")
            f.nb_samples = int(it.get("nb_samples", 0) or 0)
            frames.append(f)
    return stream, packets, frames


PROBE_ENTRIES = (
    "stream=index,codec_name,codec_type,profile,time_base,width,height,"
    "sample_aspect_ratio,display_aspect_ratio,sample_rate,channels,"
    "r_frame_rate,avg_frame_rate,start_time,duration,pix_fmt,level:"
    "stream_tags:stream_side_data:"
    "packet=pts,dts,duration,pos,size,flags:"
    "frame=pts,best_effort_timestamp,pkt_duration,key_frame,pict_type,"
    "pkt_pos,width,height,sample_aspect_ratio,nb_samples")


def probe_media(path, selector, timeout=300):
    """Decodes one stream of a file: returns (stream, packets, frames,
    Result)."""
    data, r = ffprobe_json(["-show_streams", "-show_packets", "-show_frames",
                            "-select_streams", selector, "-show_entries",
                            PROBE_ENTRIES], path, timeout=timeout)
    stream, packets, frames = parse_probe(data)
    return stream, packets, frames, r


class SourceVideo:
    """Frame timing of a source's first video stream, relative to the
    source's origin (earliest start of the first video and audio
    streams)."""

    def __init__(self, path):
        self.path = path
        streams, fmt, r = probe_streams(path)
        self.streams = streams
        self.format = fmt
        v = first_stream(streams, "video")
        a = first_stream(streams, "audio")
        if v is None:
            raise CaseFailed("test setup: %s has no video stream" % path)
        self.stream = v
        starts = [frac(s.get("start_time")) for s in (v, a) if s is not None]
        starts = [s for s in starts if s is not None]
        self.origin = min(starts) if starts else Fraction(0)
        vst, packets, frames, r = probe_media(path, "v:0")
        if not frames:
            raise CaseFailed("test setup: cannot decode %s: %s"
                             % (path, r.err_tail()))
        frames.sort(key=lambda f: f.pts)
        self.frames = frames
        self.pts = [f.pts - self.origin for f in frames]
        # The duration of each frame: the distance to the next one, the
        # last one's from its packet (or the median interval).
        ivals = [b - a for a, b in zip(self.pts, self.pts[1:])]
        self.intervals = ivals
        med = sorted(ivals)[len(ivals) // 2] if ivals else \
            (frames[0].dur or Fraction(1, 30))
        self.nominal = med
        last = frames[-1].dur if frames[-1].dur else med
        self.last_dur = last
        self.start = self.pts[0]
        self.end = self.pts[-1] + last
        self.count = count_frames(path)
        self.width = int(v.get("width", 0))
        self.height = int(v.get("height", 0))
        self.sar = frac(v.get("sample_aspect_ratio")) or Fraction(1)
        if self.sar == 0:
            self.sar = Fraction(1)
        self.rotation = stream_rotation(v)

    def display_aspect(self):
        w = self.width * self.sar
        h = Fraction(self.height)
        if self.rotation % 180 != 0:
            w, h = h, w
        return w / h

    def is_cfr(self, tol=Fraction(1, 2000)):
        return all(abs(i - self.nominal) <= tol for i in self.intervals)


def stream_rotation(stream):
    """Rotation in degrees from the display matrix side data or the legacy
    rotate tag (0 if none)."""
    for sd in stream.get("side_data_list", []) or []:
        if "rotation" in sd:
            try:
                return int(round(float(sd["rotation"])))
            except ValueError:
                pass
    tag = (stream.get("tags") or {}).get("rotate")
    if tag:
        try:
            return int(tag)
        except ValueError:
            pass
    return 0


def has_display_matrix(stream):
    for sd in stream.get("side_data_list", []) or []:
        if sd.get("side_data_type") == "Display Matrix":
            return True
    return False


# ---------------------------------------------------------------------------
# Playlists

ATTR_RE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def parse_attrs(text):
    out = {}
    for m in ATTR_RE.finditer(text):
        v = m.group(2)
        if v.startswith('"') and v.endswith('"'):
            v = v[1:-1]
        out[m.group(1)] = v
    return out


class Segment:
    def __init__(self, uri, duration, byterange=None):
        self.uri = uri
        self.extinf = duration          # Fraction, as written
        self.extinf_text = None
        self.byterange = byterange      # (length, offset) or None


class MediaPlaylist:
    def __init__(self, path):
        self.path = path
        self.dir = os.path.dirname(path)
        self.target_duration = None
        self.version = None
        self.playlist_type = None
        self.endlist = False
        self.iframes_only = False
        self.map_uri = None
        self.map_byterange = None
        self.media_sequence = None
        self.segments = []
        self.lines = []
        self.errors = []
        self.parse()

    def parse(self):
        with open(self.path, "r", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        self.lines = text.splitlines()
        if not self.lines or self.lines[0].strip() != "#EXTM3U":
            self.errors.append("first line is not #EXTM3U")
        pending = None
        pending_text = None
        pending_br = None
        last_br_end = 0
        for raw in self.lines[1:]:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#EXT-X-TARGETDURATION:"):
                self.target_duration = int(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-VERSION:"):
                self.version = int(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-PLAYLIST-TYPE:"):
                self.playlist_type = line.split(":", 1)[1]
            elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                self.media_sequence = int(line.split(":", 1)[1])
            elif line == "#EXT-X-ENDLIST":
                self.endlist = True
            elif line == "#EXT-X-I-FRAMES-ONLY":
                self.iframes_only = True
            elif line.startswith("#EXT-X-MAP:"):
                a = parse_attrs(line.split(":", 1)[1])
                self.map_uri = a.get("URI")
                if "BYTERANGE" in a:
                    self.map_byterange = parse_byterange(a["BYTERANGE"], 0)
            elif line.startswith("#EXTINF:"):
                d = line.split(":", 1)[1].split(",", 1)[0]
                pending_text = d
                pending = Fraction(d)
            elif line.startswith("#EXT-X-BYTERANGE:"):
                pending_br = parse_byterange(line.split(":", 1)[1],
                                             last_br_end)
            elif line.startswith("#"):
                continue
            else:
                if pending is None:
                    self.errors.append("URI %s without #EXTINF" % line)
                    pending = Fraction(0)
                seg = Segment(line, pending, pending_br)
                seg.extinf_text = pending_text
                if pending_br:
                    last_br_end = pending_br[1] + pending_br[0]
                self.segments.append(seg)
                pending, pending_text, pending_br = None, None, None

    def seg_path(self, seg):
        return os.path.join(self.dir, seg.uri)

    def total(self):
        return sum((s.extinf for s in self.segments), Fraction(0))


def parse_byterange(text, default_offset):
    if "@" in text:
        n, o = text.split("@", 1)
        return int(n), int(o)
    return int(text), default_offset


class Variant:
    def __init__(self, attrs, uri):
        self.attrs = attrs
        self.uri = uri

    def get(self, k, default=None):
        return self.attrs.get(k, default)


class MasterPlaylist:
    def __init__(self, path):
        self.path = path
        self.variants = []
        self.media = []
        self.iframe_streams = []
        self.lines = []
        self.errors = []
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            self.lines = fh.read().splitlines()
        if not self.lines or self.lines[0].strip() != "#EXTM3U":
            self.errors.append("first line is not #EXTM3U")
        pending = None
        for raw in self.lines[1:]:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#EXT-X-STREAM-INF:"):
                pending = parse_attrs(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-MEDIA:"):
                self.media.append(parse_attrs(line.split(":", 1)[1]))
            elif line.startswith("#EXT-X-I-FRAME-STREAM-INF:"):
                self.iframe_streams.append(parse_attrs(line.split(":", 1)[1]))
            elif line.startswith("#"):
                continue
            else:
                if pending is None:
                    self.errors.append("URI %s without #EXT-X-STREAM-INF"
                                       % line)
                    pending = {}
                self.variants.append(Variant(pending, line))
                pending = None

    def variant_for(self, rung_name):
        for v in self.variants:
            if v.uri.split("/")[0] == rung_name:
                return v
        return None


def round_half_up(x):
    return int(math.floor(Fraction(x) + Fraction(1, 2)))


# ---------------------------------------------------------------------------
# MP4 boxes

def iter_boxes(data, start=0, end=None):
    """Yields (type, payload_start, box_end) for the boxes in data[start:end]."""
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack(">I4s", data[i:i + 8])
        hdr = 8
        if size == 1:
            if i + 16 > end:
                return
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - i
        if size < hdr or i + size > end:
            return
        yield typ.decode("latin-1"), i + hdr, i + size
        i += size


def find_box(data, path, start=0, end=None):
    """Finds the first box along a path like 'moov/trak/mdia'; returns
    (payload_start, box_end) or None."""
    parts = path.split("/")
    for typ, ps, be in iter_boxes(data, start, end):
        if typ == parts[0]:
            if len(parts) == 1:
                return ps, be
            r = find_box(data, "/".join(parts[1:]), ps, be)
            if r:
                return r
    return None


class InitInfo:
    """What the tests need from an fMP4 init segment."""

    def __init__(self, path):
        with open(path, "rb") as fh:
            self.data = data = fh.read()
        self.sample_entry = None
        self.avcc = None
        self.sps = None
        self.pasp = None
        self.matrix = None
        self.top_level = [t for t, _, _ in iter_boxes(data)]
        tkhd = find_box(data, "moov/trak/tkhd")
        if tkhd:
            ps, be = tkhd
            version = data[ps]
            off = ps + 4 + (32 if version == 1 else 20) + 8 + 2 + 2 + 2 + 2
            if off + 36 <= be:
                self.matrix = struct.unpack(">9i", data[off:off + 36])
        stsd = find_box(data, "moov/trak/mdia/minf/stbl/stsd")
        if stsd:
            ps, be = stsd
            for typ, eps, ebe in iter_boxes(data, ps + 8, be):
                self.sample_entry = typ
                if typ in ("avc1", "avc3"):
                    for ctyp, cps, cbe in iter_boxes(data, eps + 78, ebe):
                        if ctyp == "avcC":
                            self.avcc = data[cps:cbe]
                        elif ctyp == "pasp" and cbe - cps >= 8:
                            self.pasp = struct.unpack(">II",
                                                      data[cps:cps + 8])
                break
        if self.avcc and len(self.avcc) >= 8:
            nsps = self.avcc[5] & 0x1F
            if nsps >= 1:
                n = struct.unpack(">H", self.avcc[6:8])[0]
                self.sps = self.avcc[8:8 + n]

    def nal_length_size(self):
        if self.avcc and len(self.avcc) >= 5:
            return (self.avcc[4] & 3) + 1
        return 4


IDENTITY_MATRIX = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


# ---------------------------------------------------------------------------
# H.264

def split_annexb(data):
    """Splits an Annex B byte stream into NAL units (without start codes)."""
    nals = []
    i, n = 0, len(data)
    starts = []
    while i + 3 <= n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            starts.append(i + 3)
            i += 3
        else:
            i += 1
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[s:e]
        while nal.endswith(b"\x00") and k + 1 < len(starts):
            nal = nal[:-1]
        if nal:
            nals.append(nal)
    return nals


def split_lengths(data, size=4):
    nals = []
    i = 0
    while i + size <= len(data):
        n = int.from_bytes(data[i:i + size], "big")
        i += size
        if n <= 0 or i + n > len(data):
            break
        nals.append(data[i:i + n])
        i += n
    return nals


def nal_types(nals):
    return [nal[0] & 0x1F for nal in nals if nal]


def sps_codec_triplet(sps):
    """(profile_idc, constraint byte, level_idc) of an SPS NAL unit (with its
    header byte)."""
    if sps is None or len(sps) < 4:
        return None
    return sps[1], sps[2], sps[3]


# H.264 Table A-1: level_idc -> (MaxMBPS, MaxFS, MaxBR in 1000 bit/s for
# Baseline/Main/Extended).
H264_LEVELS = {
    10: (1485, 99, 64), 11: (3000, 396, 192), 12: (6000, 396, 384),
    13: (11880, 396, 768), 20: (11880, 396, 2000), 21: (19800, 792, 4000),
    22: (20250, 1620, 4000), 30: (40500, 1620, 10000),
    31: (108000, 3600, 14000), 32: (216000, 5120, 20000),
    40: (245760, 8192, 20000), 41: (245760, 8192, 50000),
    42: (522240, 8704, 50000), 50: (589824, 22080, 135000),
    51: (983040, 36864, 240000), 52: (2073600, 36864, 240000),
    60: (4177920, 139264, 240000), 61: (8355840, 139264, 480000),
    62: (16711680, 139264, 800000),
}


def required_level(width, height, fps):
    """Smallest level_idc whose frame size and macroblock rate admit the
    picture size and frame rate."""
    mbw = (width + 15) // 16
    mbh = (height + 15) // 16
    fs = mbw * mbh
    mbps = fs * fps
    for lvl in sorted(H264_LEVELS):
        max_mbps, max_fs, _ = H264_LEVELS[lvl]
        side = math.sqrt(max_fs * 8)
        if fs <= max_fs and mbps <= max_mbps and mbw <= side and mbh <= side:
            return lvl
    return None


# ---------------------------------------------------------------------------
# Renditions

class SegmentProbe:
    def __init__(self, index, seg):
        self.index = index
        self.seg = seg
        self.size = 0
        self.stream = {}
        self.packets = []
        self.frames = []
        self.errors = ""
        self.first_nal_types = None

    def first_pts(self):
        return min(f.pts for f in self.frames) if self.frames else None

    def last_frame(self):
        return max(self.frames, key=lambda f: f.pts) if self.frames else None


class Rendition:
    """One rung or the audio rendition: its media playlist and a probe of
    every segment (init.mp4 + segment for fMP4, the segment alone for TS)."""

    def __init__(self, outdir, name, workdir, kind="video"):
        self.name = name
        self.kind = kind
        self.dir = os.path.join(outdir, name)
        self.playlist_path = os.path.join(self.dir, "index.m3u8")
        self.workdir = os.path.join(workdir, "probe-" + name)
        self.playlist = MediaPlaylist(self.playlist_path)
        self.format = "fmp4" if self.playlist.map_uri else "ts"
        self.init = None
        if self.playlist.map_uri:
            self.init_path = os.path.join(self.dir, self.playlist.map_uri)
            self.init = InitInfo(self.init_path)
        self.segments = []

    def label(self, k=None):
        if k is None:
            return "rung %s" % self.name if self.kind == "video" \
                else "audio rendition"
        return "%s segment %d (%s)" % (
            "rung " + self.name if self.kind == "video" else "audio",
            k, self.playlist.segments[k].uri if k < len(
                self.playlist.segments) else "?")

    def _read_segment(self, seg):
        with open(self.playlist.seg_path(seg), "rb") as fh:
            if seg.byterange:
                n, off = seg.byterange
                fh.seek(off)
                return fh.read(n)
            return fh.read()

    def probe(self, jobs=2):
        os.makedirs(self.workdir, exist_ok=True)
        init_bytes = b""
        if self.init is not None:
            init_bytes = self.init.data
        selector = "v:0" if self.kind == "video" else "a:0"

        def one(k):
            seg = self.playlist.segments[k]
            sp = SegmentProbe(k, seg)
            try:
                body = self._read_segment(seg)
            except OSError as e:
                sp.errors = "cannot read: %s" % e
                return sp
            sp.size = len(body)
            ext = ".mp4" if self.format == "fmp4" else ".ts"
            path = os.path.join(self.workdir, "seg%05d%s" % (k, ext))
            with open(path, "wb") as fh:
                fh.write(init_bytes)
                fh.write(body)
            st, pk, fr, r = probe_media(path, selector)
            sp.stream, sp.packets, sp.frames = st, pk, fr
            sp.errors = r.err.strip()
            for p in pk:
                p.segment = k
            for f in fr:
                f.segment = k
            if self.kind == "video" and pk:
                sp.first_nal_types = self._first_packet_nals(path, pk, body,
                                                             len(init_bytes))
            os.unlink(path) if os.path.exists(path) else None
            return sp

        with ThreadPoolExecutor(max_workers=jobs) as ex:
            self.segments = list(ex.map(one,
                                        range(len(self.playlist.segments))))
        return self

    def _first_packet_nals(self, path, packets, body, init_len):
        first = min(packets, key=lambda p: p.dts if p.dts is not None
                    else p.pts)
        if self.format == "fmp4":
            if first.pos is None:
                return None
            off = first.pos - init_len
            data = body[off:off + first.size]
            return nal_types(split_lengths(data, self.init.nal_length_size()))
        # MPEG-TS: ask ffprobe for the bytes of the first packet.
        data = packet_data(path, "v:0")
        return nal_types(split_annexb(data)) if data is not None else None

    # Convenience views

    def all_frames(self):
        return [f for s in self.segments for f in s.frames]

    def all_packets(self):
        return [p for s in self.segments for p in s.packets]

    def sorted_frames(self):
        return sorted(self.all_frames(), key=lambda f: f.pts)

    def stream_info(self):
        for s in self.segments:
            if s.stream:
                return s.stream
        return {}

    def end_time(self, fallback_dur=None):
        """End of the last frame (presentation), from its packet duration."""
        fr = self.all_frames()
        if not fr:
            return None
        last = max(fr, key=lambda f: f.pts)
        dur = self.frame_duration(last, fallback_dur)
        return last.pts + dur

    def frame_duration(self, frame, fallback=None):
        if self.kind == "audio" and frame.nb_samples:
            sr = int(self.stream_info().get("sample_rate", AUDIO_RATE))
            return Fraction(frame.nb_samples, sr)
        for p in self.segments[frame.segment].packets:
            if p.pts == frame.pts and p.dur:
                return p.dur
        if frame.dur:
            return frame.dur
        return fallback if fallback is not None else Fraction(0)


def packet_data(path, selector):
    """Bytes of the first packet of a stream, via ffprobe -show_data."""
    r = run(["ffprobe", "-v", "error", "-select_streams", selector,
             "-read_intervals", "%+#1", "-show_packets", "-show_data",
             "-of", "json", path], timeout=120)
    try:
        pk = json.loads(r.out).get("packets", [])
    except ValueError:
        return None
    if not pk or "data" not in pk[0]:
        return None
    return hexdump_bytes(pk[0]["data"])


def hexdump_bytes(dump):
    out = bytearray()
    for line in dump.splitlines():
        line = line.strip()
        if not line or ":" not in line:
            continue
        hexpart = line.split(":", 1)[1].strip()
        # "0000 0001 0910 ...  ascii": the hex groups end at two spaces.
        hexpart = hexpart.split("  ")[0]
        for grp in hexpart.split():
            if re.fullmatch(r"[0-9a-fA-F]+", grp):
                out += bytes.fromhex(grp)
    return bytes(out)


def rung_dirs(outdir):
    """Rung folders in OUTDIR: names like 720p."""
    out = []
    for n in os.listdir(outdir):
        if re.fullmatch(r"\d+p", n) and os.path.isdir(os.path.join(outdir, n)):
            out.append(n)
    return sorted(out, key=lambda n: int(n[:-1]))


def load_rungs(outdir, workdir, jobs=2):
    return [Rendition(outdir, n, workdir).probe(jobs) for n in
            rung_dirs(outdir)]


# ---------------------------------------------------------------------------
# Audio samples

def decode_pcm(path, channels=1, rate=AUDIO_RATE, extra_in=None,
               selector="0:a:0", timeout=300):
    """Decodes audio to signed 16-bit PCM (mono by default); returns an
    array('h')."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"] + \
        (extra_in or []) + ["-i", str(path), "-map", selector, "-ac",
                            str(channels), "-ar", str(rate), "-f", "s16le",
                            "-"]
    r = run(cmd, timeout=timeout, binary_output=True)
    if r.rc != 0:
        return None, r
    a = array.array("h")
    a.frombytes(r.out[:len(r.out) // 2 * 2])
    if sys.byteorder != "little":
        a.byteswap()
    return a, r


def silent_runs(samples, threshold, min_len):
    """Runs [start, end) of samples with |x| <= threshold at least min_len
    long."""
    runs = []
    start = None
    for i, x in enumerate(samples):
        if -threshold <= x <= threshold:
            if start is None:
                start = i
        else:
            if start is not None and i - start >= min_len:
                runs.append((start, i))
            start = None
    if start is not None and len(samples) - start >= min_len:
        runs.append((start, len(samples)))
    return runs


def best_lag(ref, ref_start, sig, sig_center, length, max_lag):
    """Lag L in [-max_lag, max_lag] maximising the normalised correlation of
    ref[ref_start:ref_start+length] with sig[sig_center+L : ...+length].
    Returns (L, correlation) or (None, 0) when out of range."""
    if ref_start < 0 or ref_start + length > len(ref):
        return None, 0.0
    r = ref[ref_start:ref_start + length]
    rr = math.sqrt(sum(x * x for x in r)) or 1.0
    best, best_c = None, -2.0
    for lag in range(-max_lag, max_lag + 1):
        s0 = sig_center + lag
        if s0 < 0 or s0 + length > len(sig):
            continue
        s = sig[s0:s0 + length]
        num = sum(a * b for a, b in zip(r, s))
        ss = math.sqrt(sum(x * x for x in s)) or 1.0
        c = num / (rr * ss)
        if c > best_c:
            best, best_c = lag, c
    return best, best_c


# ---------------------------------------------------------------------------
# Files

def tree_digest(root):
    """{relative path: sha256 hex} for every file under root."""
    import hashlib
    out = {}
    for dp, dn, fn in os.walk(root):
        for n in fn:
            p = os.path.join(dp, n)
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for blk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(blk)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def psnr(filter_complex, inputs, timeout=300):
    """Runs ffmpeg with a filter graph ending in psnr; returns the average
    PSNR (float, inf for identical) or None, and the Result."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "info"]
    for i in inputs:
        cmd += i
    cmd += ["-filter_complex", filter_complex, "-f", "null", "-"]
    r = run(cmd, timeout=timeout)
    m = re.findall(r"PSNR .*average:([0-9.]+|inf)", r.err)
    if not m:
        return None, r
    v = m[-1]
    return (float("inf") if v == "inf" else float(v)), r
