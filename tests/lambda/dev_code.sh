#!/bin/sh
# Writes a Lambda code folder for a host build: DIR/bootstrap execs the
# host-built sinatra-lambda with the handler name, so the Lambda tests can
# run on the plain build without a bundle.
#
# usage: tests/lambda/dev_code.sh BINARY DIR HANDLER
#
# BINARY is made absolute; DIR is created if missing; HANDLER is
# orchestrator or worker.
set -eu

if [ $# -ne 3 ]; then
    echo "usage: dev_code.sh BINARY DIR HANDLER" >&2
    exit 2
fi
binary=$1
dir=$2
handler=$3

case $handler in
    orchestrator|worker) ;;
    *) echo "dev_code.sh: handler '$handler' is invalid; expected" \
            "orchestrator or worker" >&2
       exit 2 ;;
esac
if [ ! -x "$binary" ]; then
    echo "dev_code.sh: $binary is not an executable file" >&2
    exit 1
fi
case $binary in
    /*) ;;
    *) binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary") ;;
esac

# Single quotes keep the path literal; a quote inside it is closed,
# escaped and reopened.
quoted=$(printf '%s' "$binary" | sed "s/'/'\\\\''/g")
mkdir -p "$dir"
printf "#!/bin/sh\nexec '%s' %s\n" "$quoted" "$handler" > "$dir/bootstrap"
chmod 755 "$dir/bootstrap"
