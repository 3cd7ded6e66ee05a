"""Helpers for the integration tests of `sinatra serve` and `sinatra worker`.

Starts and stops the two commands on a data folder, talks HTTP to the
server with http.client, polls the status API, and fetches HLS output the
way a player does. Python 3 standard library only.

Each process writes its stderr (and stdout) to a log file of its own, which
the tests poll, so a pipe can never fill up and block the process.
"""

import gzip
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

# The line `sinatra serve` logs once it listens; the port is read from it.
SERVING_RE = re.compile(r"serving http://(\[[^\]]+\]|[^/:\s\"]+):(\d+)/")

HOST = "127.0.0.1"
START_TIMEOUT = 30          # seconds until the serving line appears
STOP_TIMEOUT = 30           # seconds a process may take to exit on SIGTERM
HTTP_TIMEOUT = 30           # seconds for one HTTP request

# Upload names live under this key prefix; the video id is derived from
# the whole key.
UPLOAD_PREFIX = "stream/"
VIDEO_ID_LEN = 16


class SetupFailed(Exception):
    """A process could not be started or did not report its port."""


# ---------------------------------------------------------------------------
# Processes

class Proc:
    """One sinatra process whose stdout and stderr go to log_path."""

    def __init__(self, cmd, log_path, label):
        self.cmd = [str(c) for c in cmd]
        self.log_path = log_path
        self.label = label
        self.p = None
        self.rc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.p = subprocess.Popen(self.cmd, stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        return self

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=1500):
        text = self.log_text().strip()
        return text if len(text) <= n else "..." + text[-n:]

    def cmdline(self):
        return " ".join(self.cmd)

    def terminate(self, timeout=STOP_TIMEOUT):
        """Sends SIGTERM and waits. Returns the exit status, or None when
        the process did not exit in time (it is then killed)."""
        if not self.alive():
            self.rc = self.p.returncode if self.p else None
            return self.rc
        os.kill(self.p.pid, signal.SIGTERM)
        try:
            self.rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return self.rc

    def kill(self):
        """Sends SIGKILL to this process (by its pid) and reaps it."""
        if self.alive():
            try:
                os.kill(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.p is not None:
            self.rc = self.p.wait()


class Server(Proc):
    """`sinatra serve` on a free loopback port."""

    def __init__(self, binary, data, log_path, workers, extra):
        cmd = [binary, "serve", "--data", data, "--host", HOST, "--port", "0",
               "--workers", workers, "--preset", "ultrafast"] + list(extra)
        Proc.__init__(self, cmd, log_path, "sinatra serve")
        self.data = data
        self.port = None

    def start(self):
        Proc.start(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = SERVING_RE.search(self.log_text())
            if m:
                self.port = int(m.group(2))
                return self
            if not self.alive():
                raise SetupFailed("`%s` exited with status %s before "
                                  "serving; log: %s"
                                  % (self.cmdline(), self.p.returncode,
                                     self.log_tail()))
            time.sleep(0.05)
        self.kill()
        raise SetupFailed("`%s` logged no 'serving http://HOST:PORT/' line "
                          "within %d s; log: %s"
                          % (self.cmdline(), START_TIMEOUT, self.log_tail()))


class Worker(Proc):
    """`sinatra worker` on a data folder."""

    def __init__(self, binary, data, log_path, workers, extra):
        cmd = [binary, "worker", "--data", data, "--workers",
               workers] + list(extra)
        Proc.__init__(self, cmd, log_path, "sinatra worker")
        self.data = data


# ---------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.body = body

    def header(self, name):
        """Returns the value of a header (several values joined by ", "),
        or None."""
        values = [v for k, v in self.header_list if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def json(self):
        """Returns the body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    def error_text(self):
        """Returns the "error" member of a JSON error body, or None."""
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
        return None

    def describe(self):
        text = self.body[:300].decode("utf-8", "replace")
        return "%d %s, body %r" % (self.status, self.reason, text)


def request(port, method, path, body=None, headers=None,
            timeout=HTTP_TIMEOUT):
    """Sends one request on a new connection and reads the whole response.
    path is sent as given, so it must already be percent-encoded."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def request_streamed(port, method, path, headers, pieces, chunked=False,
                     timeout=HTTP_TIMEOUT):
    """Sends a request whose body is the byte strings in pieces, framed as
    chunked transfer coding when chunked is true. A server may respond (and
    close) before the whole body is sent, so a failed send is not an error
    as long as a response can still be read. Returns (Response or None,
    bytes sent, the send error or None)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    sent = 0
    send_error = None
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for piece in pieces:
                if chunked:
                    conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    conn.send(piece)
                sent += len(piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError as e:
            send_error = e
        try:
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            return None, sent, send_error or e
        return Response(r.status, r.reason, r.getheaders(), data), sent, \
            send_error
    finally:
        conn.close()


def quote_name(name):
    """Percent-encodes an upload name for the PUT path (every '/' too)."""
    return urllib.parse.quote(name, safe="")


def video_id(name):
    """Returns the video id the server gives an upload named name: the
    first VIDEO_ID_LEN hex digits of the SHA-256 of its key."""
    key = (UPLOAD_PREFIX + name).encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:VIDEO_ID_LEN]


def file_pieces(path, size=256 * 1024):
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(size), b""):
            yield block


def put_file(port, name, path):
    """Uploads the file at path with PUT /stream/NAME."""
    headers = [("Content-Length", str(os.path.getsize(path))),
               ("Content-Type", "application/octet-stream")]
    r, _, err = request_streamed(port, "PUT", "/stream/" + quote_name(name),
                                 headers, file_pieces(path))
    if r is None:
        raise AssertionError("PUT /stream/%s: no response (%s)" % (name, err))
    return r


def multipart_body(field, filename, data, boundary):
    """Builds a multipart/form-data body with one file field (RFC 7578)."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    head = ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
            "filename=\"%s\"\r\nContent-Type: video/mp4\r\n\r\n"
            % (boundary, field, quoted)).encode("utf-8")
    tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")
    return head + data + tail


# ---------------------------------------------------------------------------
# Status API

def api_video(port, vid):
    return request(port, "GET", "/api/videos/" + vid)


def api_videos(port):
    """Fetches the list of videos from GET /api/videos, which returns a
    {"videos": [...]} object. Returns (list or None, Response)."""
    r = request(port, "GET", "/api/videos")
    body = r.json()
    if isinstance(body, dict) and isinstance(body.get("videos"), list):
        return body["videos"], r
    return None, r


def wait_for_video(port_of, vid, done, timeout, label, on_poll=None,
                   interval=0.2):
    """Polls GET /api/videos/ID until done(video) is true and returns the
    video. port_of() gives the server's current port, which changes when a
    test restarts the server, or None while it is down, and the poll goes
    on meanwhile. on_poll(video) is called with every video record
    received. Raises AssertionError with the last response on timeout."""
    deadline = time.monotonic() + timeout
    last = "no response yet"
    while True:
        port = port_of()
        if port is not None:
            try:
                r = api_video(port, vid)
                body = r.json()
                if r.status == 200 and isinstance(body, dict):
                    if on_poll is not None:
                        on_poll(body)
                    if done(body):
                        return body
                    last = json.dumps(body)[:600]
                else:
                    last = r.describe()
            except (OSError, http.client.HTTPException) as e:
                last = "request failed: %s" % e
        if time.monotonic() > deadline:
            raise AssertionError("%s: video %s not done within %d s; last "
                                 "response: %s" % (label, vid, timeout, last))
        time.sleep(interval)


def finished(video):
    return video.get("status") in ("ready", "failed")


# ---------------------------------------------------------------------------
# HLS over HTTP

URI_ATTR_RE = re.compile(r'URI="([^"]*)"')


def playlist_uris(text):
    """Lists every URI a playlist references: URI lines and URI="..."
    attributes (EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF), in order,
    without repeats."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        found = URI_ATTR_RE.findall(line) if line.startswith("#") else [line]
        for uri in found:
            if uri not in out:
                out.append(uri)
    return out


def resolve(base_url, uri):
    """Resolves a playlist URI against the playlist's URL path."""
    return urllib.parse.urljoin(base_url, uri)


def disk_path(data, url):
    """Returns the file under DATA/hls/ that a /hls/... URL names."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    assert path.startswith("/hls/"), path
    return os.path.join(data, "hls", path[len("/hls/"):])


def playlist_problems(text):
    """Lists what makes a fetched playlist incomplete or malformed: the header,
    the final newline, an EXTINF without its URI."""
    problems = []
    if not text.startswith("#EXTM3U\n"):
        problems.append("does not start with #EXTM3U and a newline")
    if not text.endswith("\n"):
        problems.append("does not end with a newline (cut off?)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if nxt is None or nxt.startswith("#EXTINF"):
                problems.append("#EXTINF on line %d has no URI after it"
                                % (i + 1))
    return problems


def is_final(text):
    return any(ln.strip() == "#EXT-X-ENDLIST" for ln in text.splitlines())


def playlist_type(text):
    for ln in text.splitlines():
        if ln.startswith("#EXT-X-PLAYLIST-TYPE:"):
            return ln.split(":", 1)[1].strip()
    return None


def fetch_tree(c, port, data, master_url, label):
    """Fetches the master playlist, every playlist it names and every file
    those name, as a player would. Every response must be 200 and equal
    the file on disk. Returns {url: body}."""
    fetched = {}
    pending = [master_url]
    while pending:
        url = pending.pop(0)
        if url in fetched:
            continue
        r = request(port, "GET", url)
        fetched[url] = r.body
        if not c.expect(r.status == 200, "%s: GET %s returned %s, expected "
                        "200" % (label, url, r.describe())):
            continue
        path = disk_path(data, url)
        try:
            with open(path, "rb") as fh:
                on_disk = fh.read()
        except OSError as e:
            c.expect(False, "%s: GET %s returned 200 but %s cannot be read: "
                     "%s" % (label, url, path, e))
            on_disk = None
        if on_disk is not None:
            c.expect(r.body == on_disk,
                     "%s: GET %s returned %d bytes that differ from the %d "
                     "bytes of %s" % (label, url, len(r.body), len(on_disk),
                                      path))
        if url.endswith(".m3u8"):
            text = r.body.decode("utf-8", "replace")
            for p in playlist_problems(text):
                c.expect(False, "%s: %s %s" % (label, url, p))
            for uri in playlist_uris(text):
                pending.append(resolve(url, uri))
    return fetched


# ---------------------------------------------------------------------------
# Files

def list_files(root, folders=False):
    """Lists the relative paths of every file below root, and of every
    folder too when folders is true (empty when root is missing)."""
    out = []
    for dp, dirs, names in os.walk(root):
        for n in names + (dirs if folders else []):
            out.append(os.path.relpath(os.path.join(dp, n), root))
    return sorted(out)


def gunzip(data):
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        return "not gzip data: %s" % e


def raw_connection(port, timeout=HTTP_TIMEOUT):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
