#!/usr/bin/env python3
"""A tiny custom runtime for the tests of lambda_service.py.

The code folder's bootstrap execs this script. It speaks the Runtime API
at $AWS_LAMBDA_RUNTIME_API and does what each event's "do" member names:

  echo      responds with the event, the environment, the working folder,
            the headers of `next`, and whether the code folder is writable
  error     posts an error with the type in "type"
  big       responds with a body of "size" bytes; the status code it got
            is reported in the next echo
  sleep     sleeps "seconds", then responds
  exit      exits with status "code" without answering
  probe     posts a response for a wrong request id and an init error,
            then responds with the status codes the two got; a second
            response after that is reported in the next echo

ECHO_INIT (a configured variable) changes the start: "error" posts an init
error and exits 1, "exit" exits 3 before the first `next`, "sleep:S"
sleeps S seconds first. Python 3 standard library only.
"""

import http.client
import json
import os
import sys
import time

API = "/2018-06-01/runtime"


class Api:
    def __init__(self):
        host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def call(self, method, path, body=None, headers=None):
        self.conn.request(method, API + path, body=body,
                          headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, dict(r.getheaders()), data


def writable(folder):
    path = os.path.join(folder, "write-test")
    try:
        with open(path, "w") as fh:
            fh.write("x")
    except OSError:
        return False
    os.unlink(path)
    return True


def main():
    api = Api()
    mode = os.environ.get("ECHO_INIT", "")
    if mode == "error":
        status, _, _ = api.call(
            "POST", "/init/error",
            json.dumps({"errorMessage": "echo: init failed on purpose",
                        "errorType": "Echo.InitFailed"}),
            {"Lambda-Runtime-Function-Error-Type": "Echo.InitFailed"})
        sys.exit(1)
    if mode == "exit":
        sys.exit(3)
    if mode.startswith("sleep:"):
        time.sleep(float(mode[6:]))

    notes = {}
    while True:
        status, headers, body = api.call("GET", "/invocation/next")
        rid = headers.get("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(body)
        action = event.get("do")
        if action == "echo":
            out = {"event": event, "env": dict(os.environ),
                   "cwd": os.getcwd(), "headers": headers,
                   "task_root_writable": writable(os.getcwd()),
                   "notes": notes}
            notes = {}
            api.call("POST", "/invocation/%s/response" % rid,
                     json.dumps(out))
        elif action == "error":
            api.call("POST", "/invocation/%s/error" % rid,
                     json.dumps({"errorMessage": "echo: failed on purpose",
                                 "errorType": event["type"],
                                 "stackTrace": []}),
                     {"Lambda-Runtime-Function-Error-Type": event["type"],
                      "Content-Type":
                          "application/vnd.aws.lambda.error+json"})
        elif action == "big":
            status, _, _ = api.call("POST", "/invocation/%s/response" % rid,
                                    b"x" * event["size"])
            notes["big_status"] = status
        elif action == "sleep":
            time.sleep(event["seconds"])
            api.call("POST", "/invocation/%s/response" % rid, b'"slept"')
        elif action == "exit":
            sys.exit(event["code"])
        elif action == "probe":
            wrong, _, _ = api.call("POST", "/invocation/not-%s/response"
                                   % rid, b"{}")
            init, _, _ = api.call("POST", "/init/error", b"{}",
                                  {"Lambda-Runtime-Function-Error-Type":
                                   "Echo.Late"})
            api.call("POST", "/invocation/%s/response" % rid,
                     json.dumps({"wrong_id": wrong, "late_init": init}))
            again, _, _ = api.call("POST", "/invocation/%s/response" % rid,
                                   b"{}")
            notes["second_response"] = again


if __name__ == "__main__":
    main()
