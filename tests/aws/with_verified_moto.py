#!/usr/bin/env python3
"""Runs a command against moto's services with every signature checked
by botocore over the request exactly as it was sent.

    usage: tests/aws/with_verified_moto.py COMMAND [ARG...]

Why not moto's own check (tests/aws/with_moto.sh): moto 5.2.1 verifies a
signature over werkzeug's `request.url`, which is rebuilt from the decoded
path and query. werkzeug 3.1 quotes the path again keeping
"!$&'()*+,/:;=@%" as they are, and then turns the %XX escapes of UTF-8
back into text. The canonical URI moto computes for the key "a+b(1)é" is
therefore "/bucket/a+b(1)é", while S3 defines it as the key encoded once,
"/bucket/a%2Bb%281%29%C3%A9", which is what a correct client signs. The
query is rebuilt the same way, so "prefix=a%2F" becomes "prefix=a/". moto
rejects such requests with SignatureDoesNotMatch, boto3's own included;
only keys made of A-Za-z0-9-._~, '/' and spaces get through.

Here moto's application runs with its own check off, behind a WSGI layer
that checks each request first:

- botocore's SigV4 code, which is independent of Sinatra's signer,
  recomputes the signature over the method, the request target as sent,
  the signed headers and the payload hash, with the test's key pair;
- an S3 request target must be encoded as S3 defines: every byte of the
  path except A-Za-z0-9-._~ and '/', and every byte of a query name or
  value except A-Za-z0-9-._~, as %XX with uppercase hex, exactly once;
- a hex x-amz-content-sha256 must be the SHA-256 of the body, and
  X-Amz-Date must be within 15 minutes of the clock.

A request that fails gets 403 with the error code AWS uses for that
case. Before the command runs, a self-check proves that the layer accepts
boto3's requests for such keys and rejects a wrong secret and a path
that is not encoded as S3 defines.

The server listens on 127.0.0.1 only. It takes requests on many threads
but passes them to moto one at a time, for the reason given in
with_moto.sh. An SQS ReceiveMessage that may wait (WaitTimeSeconds) is
the exception: the layer sends it to moto without a wait, between other
requests, every LONG_POLL_STEP_S until a message comes or the time is
up, because moto would hold every other request up while it waits. The command runs with AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION=us-east-1 and
AWS_EC2_METADATA_DISABLED=true, and no other AWS_* variable of the
caller. When SN_VERIFIED_MOTO_LOG names a file, one line per request is
appended to it: the Unix time it arrived, the seconds until its response
was ready, method, request target, X-Amz-Target (or "-"), status and
response body bytes. Exits with the command's
status, 77 (skipped) when moto or boto3 is missing, 1 when the server or
its self-check fails.
"""

import datetime
import hashlib
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse

# moto's own check stays off: it is on only when this variable is set.
os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

try:
    import boto3
    import botocore.exceptions
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server
except ImportError as e:
    print("with_verified_moto.py: %s: skipped" % e, file=sys.stderr)
    sys.exit(77)

REGION = "us-east-1"
KEY_ID = "AKIASINATRAVERIFIED1"
MAX_SKEW = datetime.timedelta(minutes=15)
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,]+), *"
                     r"SignedHeaders=([^,]+), *Signature=([0-9a-f]{64})$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
LONG_POLL_STEP_S = 0.05


class Rejected(Exception):
    """A request that fails the check: an AWS error code and a message."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


def canonical_s3_path(path):
    """Returns path encoded as S3 defines: every byte but A-Za-z0-9-._~
    and '/' as %XX, once."""
    raw = urllib.parse.unquote_to_bytes(path)
    return urllib.parse.quote_from_bytes(raw, safe="/")


def canonical_query_part(text):
    raw = urllib.parse.unquote_to_bytes(text)
    return urllib.parse.quote_from_bytes(raw, safe="")


def check_s3_target(target):
    path, _, query = target.partition("?")
    want = canonical_s3_path(path)
    if path != want:
        raise Rejected("InvalidURI", "the path %r is not encoded as S3 "
                       "defines; expected %r" % (path, want))
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        for text in (name, value):
            if text != canonical_query_part(text):
                raise Rejected("InvalidURI", "the query part %r is not "
                               "encoded as S3 defines; expected %r"
                               % (text, canonical_query_part(text)))


def request_headers(environ):
    """Returns the request's headers as {lower-case name: value}."""
    out = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            out[name[5:].replace("_", "-").lower()] = value
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            out[name.replace("_", "-").lower()] = environ[name]
    return out


def check_request(environ, body, secret):
    """Raises Rejected unless the request is signed with KEY_ID and secret
    over exactly what was sent."""
    headers = request_headers(environ)
    m = AUTH_RE.match(headers.get("authorization", ""))
    if m is None:
        raise Rejected("AccessDenied", "no AWS4-HMAC-SHA256 Authorization "
                       "header")
    scope, signed, signature = m.groups()
    parts = scope.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Rejected("AuthorizationHeaderMalformed", "credential scope "
                       "%r" % scope)
    key_id, day, region, service = parts[:4]
    if key_id != KEY_ID:
        raise Rejected("InvalidAccessKeyId", "unknown key id %r" % key_id)

    stamp = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Rejected("AccessDenied", "X-Amz-Date %r" % stamp) from None
    if abs(datetime.datetime.now(datetime.timezone.utc) - when) > MAX_SKEW:
        raise Rejected("RequestTimeTooSkewed", "X-Amz-Date %s" % stamp)
    if stamp[:8] != day:
        raise Rejected("SignatureDoesNotMatch", "scope day %s, X-Amz-Date "
                       "%s" % (day, stamp))

    target = environ["REQUEST_URI"]
    sha = headers.get("x-amz-content-sha256")
    if service == "s3":
        check_s3_target(target)
        if sha is None:
            raise Rejected("InvalidRequest", "no x-amz-content-sha256")
        if HEX64_RE.match(sha) and sha != hashlib.sha256(body).hexdigest():
            raise Rejected("XAmzContentSHA256Mismatch", "the body does "
                           "not match x-amz-content-sha256")

    names = signed.split(";")
    missing = [n for n in names if n not in headers]
    if missing:
        raise Rejected("SignatureDoesNotMatch", "signed headers %s not sent"
                       % ",".join(missing))
    req = AWSRequest(method=environ["REQUEST_METHOD"],
                     url="http://%s%s" % (headers["host"], target),
                     headers={n: headers[n] for n in names}, data=body)
    req.context["timestamp"] = stamp
    auth_class = S3SigV4Auth if service == "s3" else SigV4Auth
    auth = auth_class(Credentials(KEY_ID, secret), service, region)
    canonical = auth.canonical_request(req)
    expected = auth.signature(auth.string_to_sign(req, canonical), req)
    if expected != signature:
        raise Rejected("SignatureDoesNotMatch", "signature over the "
                       "canonical request %r does not match" % canonical)


def error_response(environ, e):
    """Returns (status, headers, body) for a rejected request, in the
    error format of its protocol."""
    target = request_headers(environ).get("x-amz-target")
    if target is not None:
        code = e.code
        if code == "SignatureDoesNotMatch":
            code = "InvalidSignatureException"
        body = json.dumps({"__type": "com.amazon.coral.service#" + code,
                           "message": str(e)})
        return "400 Bad Request", "application/x-amz-json-1.0", body
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
            "</Code><Message>%s</Message></Error>"
            % (e.code, str(e).replace("&", "&amp;").replace("<", "&lt;")))
    return "403 Forbidden", "application/xml", body


class Verifier:
    """WSGI layer that checks a request before moto's application gets
    it."""

    def __init__(self, app, secret, log_path):
        self.app = app
        self.secret = secret
        self.log = open(log_path, "a") if log_path else None
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length == 0 and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
        else:
            body = environ["wsgi.input"].read(length)

        started = time.time()
        try:
            check_request(environ, body, self.secret)
            wait_s = long_poll_seconds(environ, body)
            if wait_s > 0:
                status, headers, data = self.long_poll(environ, body, wait_s)
            else:
                status, headers, data = self.call_app(environ, body)
        except Rejected as e:
            status, ctype, text = error_response(environ, e)
            data = text.encode("utf-8")
            headers = [("Content-Type", ctype),
                       ("Content-Length", str(len(data)))]
        if self.log is not None:
            with self.log_lock:
                self.log.write("%.6f %.6f %s %s %s %s %d\n" % (
                    started, time.time() - started,
                    environ["REQUEST_METHOD"], environ["REQUEST_URI"],
                    environ.get("HTTP_X_AMZ_TARGET", "-"),
                    status.split()[0], len(data)))
                self.log.flush()
        start_response(status, headers)
        return [data]

    def call_app(self, environ, body):
        """Runs one request through moto, one at a time, and returns
        (status, headers, body)."""
        out = {}

        def start(status, headers, exc_info=None):
            out["status"], out["headers"] = status, headers
            return lambda data: None

        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body))
        with self.lock:
            chunks = self.app(env, start)
            try:
                data = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        return out["status"], out["headers"], data

    def long_poll(self, environ, body, wait_s):
        """Serves a ReceiveMessage that may wait wait_s seconds by asking
        moto without waiting every LONG_POLL_STEP_S until a message comes
        or the time is up. moto itself would wait inside the request and
        hold up every other one behind the lock."""
        request = json.loads(body)
        request["WaitTimeSeconds"] = 0
        once = json.dumps(request).encode("utf-8")
        deadline = time.monotonic() + wait_s
        while True:
            status, headers, data = self.call_app(environ, once)
            if (not status.startswith("200") or
                    json.loads(data or b"{}").get("Messages") or
                    time.monotonic() >= deadline):
                return status, headers, data
            time.sleep(LONG_POLL_STEP_S)


def long_poll_seconds(environ, body):
    """Returns the WaitTimeSeconds of an SQS JSON ReceiveMessage, else 0."""
    if environ.get("HTTP_X_AMZ_TARGET") != "AmazonSQS.ReceiveMessage":
        return 0
    try:
        return int(json.loads(body).get("WaitTimeSeconds") or 0)
    except (ValueError, AttributeError):
        return 0


def self_check(endpoint, secret):
    """Returns None when the layer accepts what it must and rejects what
    it must, or the first problem."""
    good = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=KEY_ID,
                        aws_secret_access_key=secret)
    bad = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id=KEY_ID,
                       aws_secret_access_key=secret + "x")
    bucket, key = "sinatra-verifier-self-check", "k/(1)+a 100% n\u00e9e.txt"

    good.create_bucket(Bucket=bucket)
    good.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = good.list_objects_v2(Bucket=bucket, Prefix="k/")
    if [o["Key"] for o in listed.get("Contents", [])] != [key]:
        return "boto3 could not list %r back: %r" % (key, listed)
    try:
        bad.get_object(Bucket=bucket, Key=key)
        return "a wrong secret was accepted"
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "SignatureDoesNotMatch":
            return "a wrong secret got %r" % e.response["Error"]

    # Signed as sent, but with '(' and ')' not encoded: S3 would decode the
    # path and sign "%28"/"%29", so the layer must reject it.
    raw = "%s/%s/k/(1)+a%%20100%%25%%20n%%C3%%A9e.txt" % (endpoint, bucket)
    req = AWSRequest(method="GET", url=raw)
    S3SigV4Auth(Credentials(KEY_ID, secret), "s3", REGION).add_auth(req)
    prepared = req.prepare()
    status = http_status(prepared.url, prepared.headers)
    if status != 403:
        return "a path with unencoded '(' got status %s, expected 403" % status

    good.delete_object(Bucket=bucket, Key=key)
    good.delete_bucket(Bucket=bucket)
    return None


def http_status(url, headers):
    import http.client

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", parts.path + ("?" + parts.query
                                             if parts.query else ""),
                        skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    secret = secrets.token_urlsafe(30)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Verifier(DomainDispatcherApplication(create_backend_app), secret,
                   os.environ.get("SN_VERIFIED_MOTO_LOG"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    endpoint = "http://127.0.0.1:%d" % server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        problem = self_check(endpoint, secret)
        if problem is not None:
            print("with_verified_moto.py: self-check failed: %s" % problem,
                  file=sys.stderr)
            return 1
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION,
                   AWS_EC2_METADATA_DISABLED="true")
        return subprocess.run(sys.argv[1:], env=env).returncode
    finally:
        server.shutdown()
        thread.join()


if __name__ == "__main__":
    sys.exit(main())
