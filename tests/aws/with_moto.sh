#!/usr/bin/env bash
# Runs a command against moto's server with signature checking on.
#
# usage: tests/aws/with_moto.sh COMMAND [ARG...]
#
# Starts moto's server application on 127.0.0.1 on a free port with
# INITIAL_NO_AUTH_ACTION_COUNT=3: the first three requests (made here,
# with boto3) create an IAM user, give it an inline allow-all policy and
# create its access key; from then on moto verifies every signature. The
# command runs with that key in AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL pointing at the server,
# AWS_REGION=us-east-1 and AWS_EC2_METADATA_DISABLED=true, and nothing
# else from the caller's AWS_* environment. The server is stopped by its
# process id at the end. Exits with the command's status, or 77 (skipped)
# when moto_server or boto3 is missing.
set -uo pipefail

if ! command -v moto_server >/dev/null || ! python3 -c 'import boto3' \
        2>/dev/null; then
    echo "with_moto.sh: moto_server or boto3 not found: skipped" >&2
    exit 77
fi

work=$(mktemp -d /tmp/sn-moto-XXXXXX)
moto_pid=
cleanup() {
    if [[ -n $moto_pid ]]; then
        kill -TERM "$moto_pid" 2>/dev/null
        wait "$moto_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# moto_server answers each request on a thread of its own, and moto does
# not make a conditional write atomic against a concurrent one (two racing
# DynamoDB updates with the same condition both succeeded). The same
# application is therefore served here on one thread, so requests run one
# at a time, as the real services' conditions are evaluated atomically.
MOTO_PORT=$port INITIAL_NO_AUTH_ACTION_COUNT=3 python3 - "$port" \
    >"$work/moto.log" 2>&1 <<'PY' &
import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

run_simple("127.0.0.1", int(sys.argv[1]),
           DomainDispatcherApplication(create_backend_app), threaded=False)
PY
moto_pid=$!

endpoint=http://127.0.0.1:$port
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request, sys; \
urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" \
        "$endpoint" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

# The three unauthenticated requests: user, inline policy, access key.
keys=$(AWS_EC2_METADATA_DISABLED=true python3 - "$endpoint" <<'PY'
import json
import sys

import boto3

iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap",
                   aws_secret_access_key="bootstrap")
iam.create_user(UserName="sinatra-test")
iam.put_user_policy(
    UserName="sinatra-test", PolicyName="allow-all",
    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="sinatra-test")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
)
if [[ -z $keys ]]; then
    echo "with_moto.sh: could not create the test user; moto log:" >&2
    cat "$work/moto.log" >&2
    exit 1
fi
read -r key_id secret <<<"$keys"

for name in $(compgen -e | grep '^AWS_'); do
    unset "$name"
done
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_ENDPOINT_URL=$endpoint
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

"$@"
