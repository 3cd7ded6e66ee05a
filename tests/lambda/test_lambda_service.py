#!/usr/bin/env python3
"""Tests of the test Lambda service (lambda_service.py) with a runtime of
its own (echo_runtime.py), so they need neither AWS nor sinatra-lambda.

    python3 tests/lambda/test_lambda_service.py --list
    python3 tests/lambda/test_lambda_service.py CASE

Exit status: 0 pass, 1 fail.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "media"))
sys.path.insert(0, HERE)

import hlscheck as H  # noqa: E402
import lambda_service as L  # noqa: E402

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def echo_code(tmp):
    """Writes a code folder whose bootstrap runs echo_runtime.py."""
    code = os.path.join(tmp, "code")
    os.makedirs(code)
    path = os.path.join(code, "bootstrap")
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\nexec '%s' '%s'\n"
                 % (sys.executable, os.path.join(HERE, "echo_runtime.py")))
    os.chmod(path, 0o755)
    return code


def echo_function(tmp, env=None, **kw):
    return L.Function(echo_code(tmp), "echo.handler", env=env,
                      workdir=os.path.join(tmp, "fn"), **kw)


def error_type(result):
    p = result.payload
    return p.get("errorType") if isinstance(p, dict) else None


# ---------------------------------------------------------------------------
# Cases


@case
def event_and_environment_match_lambda(c, tmp):
    os.environ["SN_LEAK_MARKER"] = "from-the-caller"
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    fn = echo_function(tmp, env={"SINATRA_X": "configured"}, timeout=7,
                       memory=1536, name="sn-echo",
                       credentials=("AKID", "SECRET", "TOKEN"))
    try:
        t0 = time.time()
        r = fn.invoke({"do": "echo", "n": 1})
        c.require(r.kind == "response", "echo: %r, expected a response" % r)
        out = r.payload
        env = out["env"]
        root = fn.code_dir
        c.expect(out["event"] == {"do": "echo", "n": 1},
                 "event %r" % out["event"])
        c.expect(out["cwd"] == root, "cwd %s, expected the code folder %s"
                 % (out["cwd"], root))
        c.expect(not out["task_root_writable"],
                 "the code folder %s is writable" % root)
        want = {
            "_HANDLER": "echo.handler",
            "LAMBDA_TASK_ROOT": root,
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % fn.port,
            "AWS_REGION": fn.region,
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "SECRET",
            "AWS_SESSION_TOKEN": "TOKEN",
            "AWS_LAMBDA_FUNCTION_NAME": "sn-echo",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1536",
            "TZ": ":UTC",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:"
                               "/var/runtime:/var/runtime/lib:%s:%s/lib:"
                               "/opt/lib" % (root, root),
            "SINATRA_X": "configured",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name, value in want.items():
            c.expect(env.get(name) == value, "env %s=%r, expected %r"
                     % (name, env.get(name), value))
        c.expect("SN_LEAK_MARKER" not in env,
                 "the caller's SN_LEAK_MARKER reached the function")

        h = out["headers"]
        c.expect(h.get("Lambda-Runtime-Aws-Request-Id") == r.request_id,
                 "request id header %r, the invoke's id is %s"
                 % (h.get("Lambda-Runtime-Aws-Request-Id"), r.request_id))
        deadline = int(h.get("Lambda-Runtime-Deadline-Ms", 0)) / 1000.0
        c.expect(abs(deadline - (t0 + 7)) < 2.0,
                 "deadline %.3f, expected about now + 7 s = %.3f"
                 % (deadline, t0 + 7))
        c.expect(h.get("Lambda-Runtime-Invoked-Function-Arn") == fn.arn,
                 "function ARN header %r"
                 % h.get("Lambda-Runtime-Invoked-Function-Arn"))
        c.expect(h.get("Lambda-Runtime-Trace-Id", "").startswith("Root=1-"),
                 "trace id header %r" % h.get("Lambda-Runtime-Trace-Id"))
        c.expect(r.init_s is not None and r.init_s > 0,
                 "cold start without init time: %r" % r.init_s)
    finally:
        fn.stop()


@case
def warm_invokes_reuse_the_process(c, tmp):
    fn = echo_function(tmp)
    try:
        a = fn.invoke({"do": "echo"})
        b = fn.invoke({"do": "echo"})
        c.require(a.kind == b.kind == "response", "echo: %r, %r" % (a, b))
        c.expect(fn.cold_starts == 1, "%d cold starts for two invokes"
                 % fn.cold_starts)
        c.expect(b.init_s is None, "warm invoke has init time %r" % b.init_s)
        c.expect(a.request_id != b.request_id, "request id reused")
        c.expect(len(fn.timings) == 2 and fn.timings[1][1] > 0,
                 "timings %r" % fn.timings)
    finally:
        fn.stop()


@case
def init_error_fails_invoke_and_restarts(c, tmp):
    fn = echo_function(tmp, env={"ECHO_INIT": "error"})
    try:
        for attempt in (1, 2):
            r = fn.invoke({"do": "echo"})
            c.expect(r.kind == "error" and
                     error_type(r) == "Echo.InitFailed",
                     "attempt %d: %r, expected the init error" % (attempt, r))
        c.expect(fn.cold_starts == 2, "%d cold starts, expected 2"
                 % fn.cold_starts)
    finally:
        fn.stop()


@case
def exit_before_next_fails_init(c, tmp):
    fn = echo_function(tmp, env={"ECHO_INIT": "exit"})
    try:
        r = fn.invoke({"do": "echo"})
        c.expect(r.kind == "error" and error_type(r) == "Runtime.ExitError",
                 "%r, expected Runtime.ExitError" % r)
        c.expect("exit status 3" in r.body.decode(),
                 "%r does not name exit status 3" % r)
    finally:
        fn.stop()


@case
def slow_init_times_out(c, tmp):
    fn = echo_function(tmp, env={"ECHO_INIT": "sleep:10"}, init_timeout=0.5)
    try:
        t0 = time.monotonic()
        r = fn.invoke({"do": "echo"})
        c.expect(r.kind == "error" and error_type(r) == "Sandbox.Timedout",
                 "%r, expected Sandbox.Timedout" % r)
        c.expect(time.monotonic() - t0 < 3, "took %.1f s"
                 % (time.monotonic() - t0))
    finally:
        fn.stop()


@case
def error_post_gives_error_result(c, tmp):
    fn = echo_function(tmp)
    try:
        r = fn.invoke({"do": "error", "type": "Echo.Failed"})
        c.expect(r.kind == "error", "%r, expected an error" % r)
        c.expect(error_type(r) == "Echo.Failed", "errorType %r"
                 % error_type(r))
        c.expect(r.error_type == "Echo.Failed", "error type header %r"
                 % r.error_type)
        ok = fn.invoke({"do": "echo"})
        c.expect(ok.kind == "response" and fn.cold_starts == 1,
                 "after an error: %r, %d cold starts" % (ok, fn.cold_starts))
    finally:
        fn.stop()


@case
def function_past_deadline_is_killed(c, tmp):
    fn = echo_function(tmp, timeout=0.5)
    try:
        r = fn.invoke({"do": "sleep", "seconds": 20})
        c.expect(r.kind == "error" and error_type(r) == "Sandbox.Timedout",
                 "%r, expected Sandbox.Timedout" % r)
        c.expect(r.timed_out, "timed_out not set")
        c.expect(r.duration_s is not None and 0.5 <= r.duration_s < 1.5,
                 "killed after %r s, expected about 0.5" % r.duration_s)
        ok = fn.invoke({"do": "echo"})
        c.expect(ok.kind == "response", "after the timeout: %r" % ok)
        c.expect(fn.cold_starts == 2, "%d cold starts, expected 2"
                 % fn.cold_starts)
    finally:
        fn.stop()


@case
def exit_during_invoke_is_exit_error(c, tmp):
    fn = echo_function(tmp)
    try:
        r = fn.invoke({"do": "exit", "code": 7})
        c.expect(r.kind == "error" and error_type(r) == "Runtime.ExitError",
                 "%r, expected Runtime.ExitError" % r)
        c.expect("exit status 7" in r.body.decode(),
                 "%r does not name exit status 7" % r)
    finally:
        fn.stop()


@case
def response_over_6_mb_gets_413(c, tmp):
    fn = echo_function(tmp)
    try:
        r = fn.invoke({"do": "big", "size": L.MAX_PAYLOAD + 1})
        c.expect(r.kind == "error" and
                 error_type(r) == "Function.ResponseSizeTooLarge",
                 "%r, expected Function.ResponseSizeTooLarge" % r)
        echo = fn.invoke({"do": "echo"})
        c.require(echo.kind == "response", "echo: %r" % echo)
        c.expect(echo.payload["notes"].get("big_status") == 413,
                 "POST of 6 MB + 1 byte got %r, expected 413"
                 % echo.payload["notes"])
        r = fn.invoke({"do": "big", "size": L.MAX_PAYLOAD})
        c.expect(r.kind == "response" and len(r.body) == L.MAX_PAYLOAD,
                 "6 MB response: %s with %d bytes" % (r.kind, len(r.body)))
    finally:
        fn.stop()


@case
def wrong_id_400_wrong_state_403(c, tmp):
    fn = echo_function(tmp)
    try:
        r = fn.invoke({"do": "probe"})
        c.require(r.kind == "response", "probe: %r" % r)
        c.expect(r.payload.get("wrong_id") == 400,
                 "response for a wrong request id got %r, expected 400"
                 % r.payload.get("wrong_id"))
        c.expect(r.payload.get("late_init") == 403,
                 "init/error during an invocation got %r, expected 403"
                 % r.payload.get("late_init"))
        echo = fn.invoke({"do": "echo"})
        c.require(echo.kind == "response", "echo: %r" % echo)
        c.expect(echo.payload["notes"].get("second_response") == 403,
                 "a second response got %r, expected 403"
                 % echo.payload["notes"])
    finally:
        fn.stop()


@case
def zip_keeps_bootstrap_mode(c, tmp):
    code = echo_code(tmp)
    path = os.path.join(tmp, "fn.zip")
    with zipfile.ZipFile(path, "w") as z:
        z.write(os.path.join(code, "bootstrap"), "bootstrap")
    fn = L.Function(path, "echo.handler", workdir=os.path.join(tmp, "fn"))
    try:
        r = fn.invoke({"do": "echo"})
        c.expect(r.kind == "response", "echo from a zip: %r" % r)
    finally:
        fn.stop()


@case
def code_without_bootstrap_is_rejected(c, tmp):
    code = os.path.join(tmp, "empty")
    os.makedirs(code)
    fn = L.Function(code, "x", workdir=os.path.join(tmp, "fn"))
    try:
        fn.invoke({})
        c.expect(False, "invoke of code without bootstrap did not raise")
    except L.InitFailed as e:
        c.expect("bootstrap" in str(e), "message %r" % str(e))
    finally:
        fn.stop()


@case
def cli_prints_line_per_event(c, tmp):
    code = echo_code(tmp)
    events = []
    for n in (1, 2):
        path = os.path.join(tmp, "event%d.json" % n)
        with open(path, "w") as fh:
            json.dump({"do": "echo", "n": n}, fh)
        events += ["--event", path]
    r = subprocess.run([sys.executable, os.path.join(HERE,
                                                     "lambda_service.py"),
                        "--code", code, "--handler", "h"] + events,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    c.expect(r.returncode == 0, "exit status %d; stderr %s"
             % (r.returncode, r.stderr[-500:]))
    lines = r.stdout.decode().splitlines()
    c.require(len(lines) == 2, "%d output lines, expected 2: %r"
              % (len(lines), lines))
    for n, line in enumerate(lines, 1):
        out = json.loads(line)
        c.expect(out["kind"] == "response" and
                 out["payload"]["event"]["n"] == n,
                 "line %d: %s" % (n, line[:200]))


def main(argv):
    if argv == ["--list"]:
        for fn in CASES:
            print(fn.__name__)
        return 0
    by_name = {fn.__name__: fn for fn in CASES}
    if len(argv) != 1 or argv[0] not in by_name:
        print("usage: test_lambda_service.py --list | CASE", file=sys.stderr)
        return 2
    fn = by_name[argv[0]]
    checks = H.Checks()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sn-lambda-svc-") as tmp:
        try:
            fn(checks, tmp)
        except H.CaseFailed:
            pass
        except Exception:
            traceback.print_exc()
            checks.failures.append("test raised an exception")
    dt = time.monotonic() - t0
    if checks.failures:
        print("%s: FAILED %d of %d checks (%.1f s)"
              % (fn.__name__, len(checks.failures), checks.n_checks, dt))
        return 1
    print("%s: passed %d checks (%.1f s)" % (fn.__name__, checks.n_checks,
                                             dt))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
