#!/usr/bin/env bash
# Runs the browser test against a real `sinatra serve`: makes a 60 s
# 1280x720 clip from GoPro footage in the media corpus (looped; cached in
# the build folder), starts the server on a free loopback port with one
# worker thread over a fresh data folder, runs tests/browser/play.mjs, and
# stops the server.
#
# usage: tests/browser/run_play.sh SINATRA_BINARY CACHE_DIR
# Exit codes: those of play.mjs; 77 (skipped) without the corpus.
set -uo pipefail

binary=$1
cache=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_clip=${SN_MEDIA_DIR:-}/gopro-max-heromode.mp4

if [[ -z ${SN_MEDIA_DIR:-} || ! -f $source_clip ]]; then
    echo "run_play.sh: SN_MEDIA_DIR is not set or lacks" \
         "gopro-max-heromode.mp4: skipped" >&2
    exit 77
fi

clip=$cache/browser-clip-60s-720p.mp4
if [[ ! -f $clip ]]; then
    mkdir -p "$cache"
    ffmpeg -hide_banner -nostdin -y -v error -stream_loop 20 \
        -i "$source_clip" -map 0:v:0 -map 0:a:0 -t 60 \
        -vf scale=1280:720,setsar=1 -c:v libx264 -preset ultrafast \
        -crf 23 -g 60 -c:a aac -b:a 128k -ac 2 -movflags +faststart \
        "$clip.tmp.mp4" && mv "$clip.tmp.mp4" "$clip" || {
        echo "run_play.sh: cannot make $clip" >&2
        exit 1
    }
fi

work=$(mktemp -d /tmp/sn-browser-XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$binary" serve --data "$work/data" --port 0 --workers 1 \
    2>"$work/serve.log" &
server_pid=$!

port=
for _ in $(seq 1 100); do
    port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' \
           "$work/serve.log" | head -n 1)
    [[ -n $port ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z $port ]]; then
    echo "run_play.sh: sinatra serve did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi

node "$here/play.mjs" --url "http://127.0.0.1:$port" --file "$clip"
status=$?
if ((status != 0 && status != 77)); then
    echo "run_play.sh: server log:" >&2
    tail -n 40 "$work/serve.log" >&2
fi
exit "$status"
