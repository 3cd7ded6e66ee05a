#!/usr/bin/env python3
"""A test Lambda service on 127.0.0.1 for custom runtimes (a `bootstrap`).

Plays the part of the Lambda service for one function. It serves the
Runtime API (version 2018-06-01) on a free loopback port and starts the
function's `bootstrap` the way Lambda does. Then it hands the function one
event at a time and collects the response or error. Python 3 standard library only.

How the function is started, as on Lambda's provided.al2023 runtime:
  - the code (a folder or a zip) is copied or unpacked into a temporary
    folder that is made read-only: chmod -R a-w, and as root also a
    read-only bind mount in a private mount namespace (root ignores file
    modes), set up by `unshare -m` just before bootstrap runs;
  - bootstrap runs with that folder as working directory and an
    environment built from scratch: _HANDLER, LAMBDA_TASK_ROOT,
    LAMBDA_RUNTIME_DIR, AWS_LAMBDA_RUNTIME_API, AWS_REGION,
    AWS_DEFAULT_REGION, the credentials, AWS_LAMBDA_FUNCTION_NAME,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION,
    AWS_LAMBDA_LOG_GROUP_NAME, AWS_LAMBDA_LOG_STREAM_NAME,
    AWS_LAMBDA_INITIALIZATION_TYPE, TZ, LANG, PATH and LD_LIBRARY_PATH with
    the values of Lambda's base images, then the function's configured
    variables, and AWS_ENDPOINT_URL (when the caller has it, so the
    function reaches moto) and AWS_EC2_METADATA_DISABLED=true;
  - an optional command prefix (chroot, setpriv, qemu-user) goes in front
    of bootstrap, with task_root naming the code folder's path inside the
    function's root.

What it does on an invoke, as Lambda does:
  - a cold start when no process runs: the init phase ends with the first
    GET .../invocation/next; an init error, an exit or an init timeout
    makes the invoke fail and the next invoke starts a new process;
  - the deadline (Lambda-Runtime-Deadline-Ms) is the dispatch time plus
    the function timeout; a function that has sent no response or error
    by then is killed and the invoke fails with Sandbox.Timedout;
  - a response or error body over 6 MB gets 413 and the invoke fails with
    Function.ResponseSizeTooLarge;
  - calls in the wrong state get 403 (InvalidStateTransition), a request
    id that is not the current invocation's gets 400 (InvalidRequestID).

    python3 tests/lambda/lambda_service.py --code DIR_OR_ZIP \\
        --handler worker --event FILE [--event FILE ...] [--timeout S] \\
        [--env NAME=VALUE ...] [--prefix 'CMD ARGS'] [--task-root PATH]

prints one JSON line per event: {"kind", "payload", "duration_s",
"init_s", "request_id"}. The function's output goes to stderr.

Sources: docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html and
configuration-envvars.html; the values of TZ, PATH and LD_LIBRARY_PATH are
those of the aws/aws-lambda-base-images Dockerfiles.
"""

import argparse
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile

API_VERSION = "2018-06-01"
HOST = "127.0.0.1"

# Lambda's limit for a synchronous response, and for an error body.
MAX_PAYLOAD = 6 * 1024 * 1024
# Bodies above this are not read at all: the connection is closed.
MAX_READ = 64 * 1024 * 1024

INIT_TIMEOUT = 10.0         # seconds; Lambda's on-demand init limit
DEFAULT_TIMEOUT = 30.0      # seconds; the function timeout
DEFAULT_MEMORY = 1024       # MB, only reported to the function
ACCOUNT = "123456789012"

RUNTIME_DIR = "/var/runtime"
LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"


def lambda_library_path(task_root):
    """Returns LD_LIBRARY_PATH as Lambda sets it: the system folders first,
    then the code folder and its lib/."""
    return ("/var/lang/lib:/lib64:/usr/lib64:%s:%s/lib:%s:%s/lib:/opt/lib"
            % (RUNTIME_DIR, RUNTIME_DIR, task_root, task_root))


class InitFailed(Exception):
    """The code cannot be prepared (no bootstrap, unreadable zip)."""


class Result:
    """The outcome of one invoke.

    kind is "response" or "error". payload is the body parsed as JSON, or
    the raw bytes when it is not JSON, and body is the raw bytes. init_s is
    the time from process start to the first `next` on a cold start, None
    when warm. duration_s is the time from dispatch to the response or
    error. Unpacks as (kind, payload)."""

    def __init__(self, kind, body, request_id, error_type=None,
                 duration_s=None, init_s=None, timed_out=False):
        self.kind = kind
        self.body = body
        self.request_id = request_id
        self.error_type = error_type
        self.duration_s = duration_s
        self.init_s = init_s
        self.timed_out = timed_out
        try:
            self.payload = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.payload = body

    def __iter__(self):
        return iter((self.kind, self.payload))

    def __repr__(self):
        text = self.body[:300].decode("utf-8", "replace")
        return "Result(%s, %s)" % (self.kind, text)


def error_body(error_type, message):
    return json.dumps({"errorType": error_type,
                       "errorMessage": message}).encode("utf-8")


# ---------------------------------------------------------------------------
# Runtime API


class Invocation:
    def __init__(self, event, timeout):
        self.id = str(uuid.uuid4())
        self.event = event
        self.timeout = timeout
        self.deadline = None        # epoch seconds, set at dispatch
        self.dispatched = None      # monotonic, set at dispatch
        self.result = None          # (kind, body, error_type, monotonic)
        now = time.time()
        self.trace_id = "Root=1-%08x-%s;Parent=%s;Sampled=0" % (
            int(now), uuid.uuid4().hex[:24], uuid.uuid4().hex[:16])


class RuntimeState:
    """What the Runtime API and the invoker share, under one condition.

    phase is "init" until the first `next`, then "idle" while the runtime
    waits for an event, "invoking" from dispatch to the response or error,
    and "responded" after it."""

    def __init__(self, function_arn):
        self.cond = threading.Condition()
        self.function_arn = function_arn
        self.reset()

    def reset(self):
        self.phase = "init"
        self.pending = None         # an Invocation not yet dispatched
        self.current = None         # the dispatched Invocation
        self.first_next = None      # monotonic time of the first `next`
        self.init_error = None      # (error_type, body)
        self.stopping = False
        # Raised for every new process, so that a `next` still waiting for
        # a killed process never takes the new process's event.
        self.generation = getattr(self, "generation", 0) + 1


class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sn-lambda-service"
    # The headers and the body of a reply are separate writes. With Nagle's
    # algorithm on, the body waits for the client's delayed ACK of the
    # headers, which added about 40 ms to every call.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("runtime api: " + (fmt % args) + "\n")

    # -- replies -----------------------------------------------------------

    def reply(self, status, body=b"", ctype="application/json",
              headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_error(self, status, error_type, message):
        self.reply(status, error_body(error_type, message))

    def read_body(self):
        """Reads the request body (Content-Length or chunked). Returns the
        bytes, or None after replying 413 when it is over MAX_READ."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_READ:
            self.close_connection = True
            self.reply_error(413, "RequestEntityTooLarge",
                             "body of %d bytes not read" % length)
            return None
        return self.rfile.read(length)

    def read_chunked(self):
        parts = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_READ:
                self.close_connection = True
                self.reply_error(413, "RequestEntityTooLarge",
                                 "chunked body over %d bytes" % MAX_READ)
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    # -- routes ------------------------------------------------------------

    ROUTE_RE = re.compile(r"^/%s/runtime/(?:invocation/([^/]+)/"
                          r"(response|error)|init/error)$" % API_VERSION)

    def do_GET(self):
        if self.path == "/%s/runtime/invocation/next" % API_VERSION:
            self.next_invocation()
        else:
            self.reply_error(404, "NotFound", "no route GET %s" % self.path)

    def do_POST(self):
        m = self.ROUTE_RE.match(self.path)
        body = self.read_body()
        if body is None:
            return
        if m is None:
            self.reply_error(404, "NotFound", "no route POST %s" % self.path)
        elif m.group(1) is None:
            self.init_error(body)
        else:
            self.post_result(m.group(1), m.group(2), body)

    def next_invocation(self):
        st = self.server.state
        with st.cond:
            if st.phase == "invoking":
                self.reply_error(403, "InvalidStateTransition",
                                 "next called before invocation %s got a "
                                 "response or error" % st.current.id)
                return
            if st.first_next is None:
                st.first_next = time.monotonic()
            st.phase = "idle"
            st.cond.notify_all()
            generation = st.generation
            while st.pending is None and not st.stopping and \
                    generation == st.generation:
                st.cond.wait()
            if st.stopping or generation != st.generation:
                self.close_connection = True
                return
            inv = st.pending
            st.pending = None
            st.current = inv
            st.phase = "invoking"
            inv.dispatched = time.monotonic()
            inv.deadline = time.time() + inv.timeout
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", inv.id),
            ("Lambda-Runtime-Deadline-Ms", str(int(inv.deadline * 1000))),
            ("Lambda-Runtime-Invoked-Function-Arn", st.function_arn),
            ("Lambda-Runtime-Trace-Id", inv.trace_id),
        ]
        self.reply(200, inv.event, headers=headers)

    def post_result(self, request_id, what, body):
        st = self.server.state
        with st.cond:
            if st.phase != "invoking":
                self.reply_error(403, "InvalidStateTransition",
                                 "%s for %s while no invocation is in "
                                 "progress" % (what, request_id))
                return
            inv = st.current
            if request_id != inv.id:
                self.reply_error(400, "InvalidRequestID",
                                 "request id %s is not the current "
                                 "invocation %s" % (request_id, inv.id))
                return
            now = time.monotonic()
            if len(body) > MAX_PAYLOAD:
                inv.result = ("error", error_body(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size (%d bytes) exceeded maximum "
                    "allowed payload size (%d bytes)."
                    % (len(body), MAX_PAYLOAD)),
                    "Function.ResponseSizeTooLarge", now)
                status = 413
            elif what == "response":
                inv.result = ("response", body, None, now)
                status = 202
            else:
                error_type = self.headers.get(
                    "Lambda-Runtime-Function-Error-Type")
                if not body and error_type:
                    body = error_body(error_type, "")
                inv.result = ("error", body, error_type, now)
                status = 202
            st.phase = "responded"
            st.cond.notify_all()
        if status == 413:
            self.reply_error(413, "RequestEntityTooLarge",
                             "payload of %d bytes is over %d"
                             % (len(body), MAX_PAYLOAD))
        else:
            self.reply(202, b'{"status":"OK"}')

    def init_error(self, body):
        st = self.server.state
        with st.cond:
            if st.phase != "init":
                self.reply_error(403, "InvalidStateTransition",
                                 "init/error after the init phase")
                return
            error_type = self.headers.get(
                "Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown"
            st.init_error = (error_type, body or error_body(error_type, ""))
            st.cond.notify_all()
        self.reply(202, b'{"status":"OK"}')


class RuntimeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state, verbose=False):
        http.server.HTTPServer.__init__(self, (HOST, 0), RuntimeHandler)
        self.state = state
        self.verbose = verbose

    def handle_error(self, request, client_address):
        # A killed function resets its connection: expected, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError) and \
                not self.verbose:
            return
        socketserver.TCPServer.handle_error(self, request, client_address)


# ---------------------------------------------------------------------------
# Code folder


def _make_read_only(root):
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.lstat(path).st_mode
                os.chmod(path, stat.S_IMODE(mode) & ~0o222)
    os.chmod(root, stat.S_IMODE(os.stat(root).st_mode) & ~0o222)


def _make_writable(root):
    if not os.path.isdir(root):
        return
    os.chmod(root, 0o755)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o755)


def prepare_code(code, dest):
    """Copies the folder or unpacks the zip at code into dest (which must
    not exist) and makes it read-only. Raises InitFailed."""
    if os.path.isdir(code):
        shutil.copytree(code, dest, symlinks=True)
    elif zipfile.is_zipfile(code):
        with zipfile.ZipFile(code) as z:
            z.extractall(dest)
            # zipfile drops the mode bits; restore them from the entries.
            for info in z.infolist():
                mode = (info.external_attr >> 16) & 0o777
                path = os.path.join(dest, info.filename)
                if mode and not info.is_dir():
                    os.chmod(path, mode)
    else:
        raise InitFailed("code %s: not a folder or a zip file" % code)
    _make_read_only(dest)


def _unshare_works():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-m", "--propagation", "private",
                        "true"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return r.returncode == 0


# ---------------------------------------------------------------------------
# Function


class Function:
    """One function and its execution environment (at most one process).

    code: a folder or a zip with `bootstrap` at the top.
    handler: the value of _HANDLER.
    env: the function's configured variables.
    timeout: the function timeout in seconds (a float is allowed here).
    credentials: (key id, secret, session token or None); by default the
        caller's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
        AWS_SESSION_TOKEN.
    prefix: a command put in front of bootstrap, e.g. a chroot wrapper.
    task_root: LAMBDA_TASK_ROOT and the path of bootstrap inside the
        function's root (default: the read-only copy). A prefix that changes
        the root must make that path exist.
    """

    def __init__(self, code, handler, env=None, timeout=DEFAULT_TIMEOUT,
                 memory=DEFAULT_MEMORY, name=None, region=None,
                 credentials=None, prefix=None, task_root=None,
                 init_timeout=INIT_TIMEOUT, log_path=None, workdir=None,
                 verbose=False):
        self.code = code
        self.handler = handler
        self.config_env = dict(env or {})
        self.timeout = float(timeout)
        self.memory = int(memory)
        self.name = name or "sn-%s" % handler
        self.region = region or os.environ.get("AWS_REGION") or "us-east-1"
        self.credentials = credentials
        self.prefix = list(prefix or [])
        self.init_timeout = init_timeout
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="sn-lambda-")
        self.log_path = log_path or os.path.join(self.workdir,
                                                 "%s.log" % self.name)
        self.code_dir = os.path.join(self.workdir, "task-%s" % self.name)
        self.task_root = task_root
        self.arn = "arn:aws:lambda:%s:%s:function:%s" % (
            self.region, ACCOUNT, self.name)
        self.state = RuntimeState(self.arn)
        self.server = RuntimeServer(self.state, verbose)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.proc = None
        self.exit_status = None
        self.started_at = None
        self.cold_starts = 0
        self.timings = []           # (init_s or None, duration_s) per invoke
        self.use_bind_mount = _unshare_works()
        self.prepared = False

    # -- environment -------------------------------------------------------

    def build_env(self):
        """Returns the function's environment, built from scratch."""
        if self.credentials is not None:
            key, secret, token = self.credentials
        else:
            key = os.environ.get("AWS_ACCESS_KEY_ID", "")
            secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            token = os.environ.get("AWS_SESSION_TOKEN")
        root = self.task_root or self.code_dir
        env = {
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": root,
            "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
            "AWS_LAMBDA_RUNTIME_API": "%s:%d" % (HOST, self.port),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/%s" % self.name,
            "AWS_LAMBDA_LOG_STREAM_NAME": "%s/[$LATEST]%s" % (
                time.strftime("%Y/%m/%d"), uuid.uuid4().hex),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": LAMBDA_PATH,
            "LD_LIBRARY_PATH": lambda_library_path(root),
            # Nothing in a test may send a request to the instance metadata
        # address.
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if token:
            env["AWS_SESSION_TOKEN"] = token
        for name, value in os.environ.items():
            if name == "AWS_ENDPOINT_URL" or \
                    name.startswith("AWS_ENDPOINT_URL_"):
                env[name] = value
        env.update(self.config_env)
        return env

    # -- process -----------------------------------------------------------

    def prepare(self):
        if self.prepared:
            return
        prepare_code(self.code, self.code_dir)
        self.prepared = True

    def command(self):
        root = self.task_root or self.code_dir
        cmd = self.prefix + [os.path.join(root, "bootstrap")]
        if self.use_bind_mount and self.task_root is None:
            # Root ignores file modes: a read-only bind mount of the code
            # folder onto itself, in a mount namespace of the function's
            # own, makes writes fail with EROFS as on Lambda.
            cmd = ["unshare", "-m", "--propagation", "private", "--",
                   "/bin/sh", "-c",
                   'mount --bind -o ro "$0" "$0" && cd "$0" && exec "$@"',
                   self.code_dir] + cmd
        return cmd

    def start(self):
        """Starts the process (a cold start). Raises InitFailed when the
        code has no bootstrap."""
        self.prepare()
        if self.task_root is None:
            bootstrap = os.path.join(self.code_dir, "bootstrap")
            if not os.path.isfile(bootstrap) or \
                    not os.access(bootstrap, os.X_OK):
                raise InitFailed("code %s: no executable bootstrap at the "
                                 "top" % self.code)
        with self.state.cond:
            self.state.reset()
            self.state.cond.notify_all()
        log = open(self.log_path, "ab")
        try:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                self.command(), cwd=self.code_dir, env=self.build_env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        self.exit_status = None
        self.cold_starts += 1
        threading.Thread(target=self._reap, args=(self.proc,),
                         daemon=True).start()

    def _reap(self, proc):
        status = proc.wait()
        with self.state.cond:
            if proc is self.proc:
                self.exit_status = status
            self.state.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.exit_status is None

    def kill(self):
        """Kills the process group of the function (by its pid)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        with self.state.cond:
            self.exit_status = proc.returncode
            self.state.cond.notify_all()
        self.proc = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- invoke ------------------------------------------------------------

    def _exit_text(self):
        status = self.exit_status
        if status is not None and status < 0:
            return "signal: %s" % signal.Signals(-status).name.lower()
        return "exit status %s" % status

    def _wait_init(self):
        """Waits for the end of the init phase. Returns None, or the Result
        of a failed init (the process is then killed)."""
        st = self.state
        limit = time.monotonic() + self.init_timeout
        with st.cond:
            while True:
                if st.init_error is not None:
                    error_type, body = st.init_error
                    break
                if st.first_next is not None:
                    return None
                if self.exit_status is not None:
                    error_type = "Runtime.ExitError"
                    body = error_body(error_type, "Runtime exited with "
                                      "error: %s" % self._exit_text())
                    break
                left = limit - time.monotonic()
                if left <= 0:
                    error_type = "Sandbox.Timedout"
                    body = error_body(error_type, "init did not reach "
                                      "next within %.1f s"
                                      % self.init_timeout)
                    break
                st.cond.wait(left)
        self.kill()
        return Result("error", body, None, error_type)

    def invoke(self, event, timeout=None):
        """Invokes the function with event (a JSON-serializable value, or
        bytes sent as they are) and returns a Result."""
        body = event if isinstance(event, bytes) else \
            json.dumps(event).encode("utf-8")
        inv = Invocation(body, self.timeout if timeout is None else timeout)
        init_s = None
        if not self.alive():
            self.start()
            failed = self._wait_init()
            if failed is not None:
                self.timings.append((None, None))
                return failed
            init_s = self.state.first_next - self.started_at

        st = self.state
        with st.cond:
            st.pending = inv
            st.cond.notify_all()
            while True:
                if inv.result is not None:
                    kind, out, error_type, at = inv.result
                    break
                if self.exit_status is not None:
                    kind, error_type, at = ("error", "Runtime.ExitError",
                                            time.monotonic())
                    out = error_body(error_type, "RequestId: %s Error: "
                                     "Runtime exited with error: %s"
                                     % (inv.id, self._exit_text()))
                    break
                if inv.deadline is not None and time.time() >= inv.deadline:
                    kind, error_type, at = ("error", "Sandbox.Timedout",
                                            time.monotonic())
                    out = error_body(error_type, "RequestId: %s Error: Task "
                                     "timed out after %.2f seconds"
                                     % (inv.id, inv.timeout))
                    break
                wait = 0.5 if inv.deadline is None else \
                    max(0.0, inv.deadline - time.time())
                st.cond.wait(min(wait, 0.5))
        timed_out = error_type == "Sandbox.Timedout" and inv.result is None
        if inv.result is None:
            self.kill()
        duration = None if inv.dispatched is None else at - inv.dispatched
        self.timings.append((init_s, duration))
        return Result(kind, out, inv.id, error_type, duration, init_s,
                      timed_out)

    def stop(self):
        """Stops the process and the Runtime API server and removes the
        temporary folder when this object made it."""
        self.kill()
        with self.state.cond:
            self.state.stopping = True
            self.state.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        if self.own_workdir and not os.environ.get("SN_KEEP_TMP"):
            _make_writable(self.code_dir)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# Command line


def main(argv):
    ap = argparse.ArgumentParser(
        description="Run a Lambda custom runtime (bootstrap) on a loopback "
                    "Runtime API and feed it events.")
    ap.add_argument("--code", required=True,
                    help="folder or zip with bootstrap at the top")
    ap.add_argument("--handler", default="handler", help="value of _HANDLER")
    ap.add_argument("--event", action="append", required=True,
                    help="file with one event (JSON); repeat for more")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="function timeout in seconds (default 30)")
    ap.add_argument("--memory", type=int, default=DEFAULT_MEMORY,
                    help="memory size in MB reported to the function")
    ap.add_argument("--name", help="function name (default sn-HANDLER)")
    ap.add_argument("--env", action="append", default=[],
                    metavar="NAME=VALUE", help="a configured variable")
    ap.add_argument("--prefix", default="",
                    help="command put in front of bootstrap (shell words)")
    ap.add_argument("--task-root",
                    help="LAMBDA_TASK_ROOT inside the function's root")
    args = ap.parse_args(argv)

    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error("--env %r: expected NAME=VALUE" % item)
        env[name] = value
    events = []
    for path in args.event:
        with open(path, "rb") as fh:
            events.append(fh.read())

    fn = Function(args.code, args.handler, env=env, timeout=args.timeout,
                  memory=args.memory, name=args.name,
                  prefix=shlex.split(args.prefix), task_root=args.task_root)
    failed = False
    try:
        for event in events:
            try:
                r = fn.invoke(event)
            except InitFailed as e:
                print("lambda_service.py: %s" % e, file=sys.stderr)
                return 1
            failed = failed or r.kind != "response"
            payload = r.payload if not isinstance(r.payload, bytes) else \
                r.payload.decode("utf-8", "replace")
            print(json.dumps({"kind": r.kind, "payload": payload,
                              "request_id": r.request_id,
                              "duration_s": r.duration_s,
                              "init_s": r.init_s}), flush=True)
    finally:
        sys.stderr.write(fn.log_text())
        fn.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
