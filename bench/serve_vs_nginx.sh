#!/usr/bin/env bash
#
# Serving benchmark: Sinatra's HTTP server against nginx, both serving the
# same HLS output on 127.0.0.1, measured with wrk in the same run.
#
# Usage:
#   bench/serve_vs_nginx.sh --hls OUTDIR --sinatra-cmd 'COMMAND' \
#       [--duration 10] [--threads 2] [--connections 50] [--rounds 3]
#
#   OUTDIR is the output of `sinatra process INPUT -o OUTDIR`. COMMAND
#   starts Sinatra's server in the foreground; the script replaces {data}
#   with a data folder whose hls/bench/1/ is a copy of OUTDIR, and {port}
#   with a free port. For example:
#
#   build/sinatra process clip.mp4 -o /tmp/clip-hls
#   bench/serve_vs_nginx.sh --hls /tmp/clip-hls --sinatra-cmd \
#       'build/sinatra serve --data {data} --port {port} --workers 0'
#
# wrk runs on two targets (default 10 s, 2 threads, 50 connections,
# keep-alive, no Accept-Encoding so neither server compresses): the
# median-size segment of the middle rung and that rung's media playlist.
# For each target the servers take turns, --rounds times, so that load
# from other processes falls on both alike. The script prints the median
# requests/s, p50 and p99 latency of each server, the ratio of the median
# requests/s (Sinatra/nginx), and the ratio of each round.
#
# nginx (Debian's package) runs in the foreground with a config generated
# in a temporary folder. It has sendfile and tcp_nopush on, as Debian's
# default nginx.conf does, and one worker per core. keepalive_requests is
# raised to 1e6 so that wrk's connections stay open, as they do with
# Sinatra. Needs nginx, wrk, curl and python3 (apt-get install nginx wrk).
set -euo pipefail

hls=""
sinatra_cmd=""
duration=10
threads=2
connections=50
rounds=3

usage() {
    sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --hls) hls="$2"; shift 2 ;;
    --sinatra-cmd) sinatra_cmd="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "serve_vs_nginx: unknown option $1" >&2; usage ;;
    esac
done
[ -n "$hls" ] && [ -n "$sinatra_cmd" ] || usage
[ -f "$hls/master.m3u8" ] || {
    echo "serve_vs_nginx: $hls/master.m3u8 not found: --hls takes the" \
         "output folder of sinatra process" >&2
    exit 2
}
for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || {
        echo "serve_vs_nginx: $tool not found; install it (apt-get install" \
             "nginx wrk)" >&2
        exit 2
    }
done

work=$(mktemp -d /tmp/serve-bench.XXXXXX)
sinatra_pid=""
nginx_pid=""

cleanup() {
    [ -n "$sinatra_pid" ] && kill "$sinatra_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Waits until url responds with 200, for at most 10 s; else prints the
# end of the server's log and exits.
wait_ready() {
    local url="$1" name="$2" log="$3"
    for _ in $(seq 100); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "serve_vs_nginx: $name did not respond with 200 on $url" \
         "within 10 s; the end of its log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
}

# The data folder both servers serve: hls/bench/1/ is a copy of OUTDIR
# (a copy, not a link, because Sinatra follows no link below its root).
mkdir -p "$work/data/hls/bench"
cp -r "$hls" "$work/data/hls/bench/1"
# nginx started as root runs its workers as the unprivileged user
# "nobody", which must be able to read the files.
chmod -R a+rX "$work"

# The middle rung (rung folders sorted by height), its median segment.
rungs=($(cd "$work/data/hls/bench/1" &&
         ls -d *p/ 2>/dev/null | sed 's#/##' | sort -n))
[ ${#rungs[@]} -gt 0 ] || rungs=(audio)
rung=${rungs[$(( ${#rungs[@]} / 2 ))]}
segment=$(cd "$work/data/hls/bench/1/$rung" &&
          ls -S seg_* | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
segment_path="/hls/bench/1/$rung/$segment"
playlist_path="/hls/bench/1/$rung/index.m3u8"
segment_bytes=$(stat -c %s "$work/data/hls/bench/1/$rung/$segment")
playlist_bytes=$(stat -c %s "$work/data/hls/bench/1/$rung/index.m3u8")

# nginx, in the foreground, everything in the work folder.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    types {
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
        video/mp4 mp4;
        video/mp2t ts;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location /hls/ {
            root $work/data;
            add_header Access-Control-Allow-Origin *;
        }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!

# Sinatra, with {data} and {port} filled in.
sinatra_port=$(free_port)
cmd=${sinatra_cmd//\{data\}/$work/data}
cmd=${cmd//\{port\}/$sinatra_port}
bash -c "exec $cmd" > "$work/sinatra.log" 2>&1 &
sinatra_pid=$!

wait_ready "http://127.0.0.1:$nginx_port$segment_path" nginx \
    "$work/nginx/error.log"
wait_ready "http://127.0.0.1:$sinatra_port$segment_path" Sinatra \
    "$work/sinatra.log"

# Runs wrk and prints "requests/s p50_ms p99_ms".
measure() {
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$1" |
        awk 'function ms(v) {
                 if (v ~ /us$/) return v / 1000
                 if (v ~ /ms$/) return v + 0
                 if (v ~ /s$/) return v * 1000
                 return v * 60000
             }
             /Requests\/sec:/ {rps = $2}
             $1 == "50%" {p50 = ms($2)}
             $1 == "99%" {p99 = ms($2)}
             END {print rps, p50, p99}'
}

# Reads "server requests/s p50 p99" lines of one target and prints the
# medians of each server and the ratios.
summarize() {
    python3 -c '
import statistics, sys
target = sys.argv[1]
runs = {"sinatra": [], "nginx": []}
for line in sys.stdin:
    server, rps, p50, p99 = line.split()
    runs[server].append((float(rps), float(p50), float(p99)))
median = {s: [statistics.median(r[i] for r in runs[s]) for i in range(3)]
          for s in runs}
for s in ("sinatra", "nginx"):
    rps, p50, p99 = median[s]
    print("%-9s %-8s %12.0f %9.2fms %9.2fms" % (target, s, rps, p50, p99))
rounds = " ".join("%.2f" % (a[0] / b[0])
                  for a, b in zip(runs["sinatra"], runs["nginx"]))
print("%-9s ratio sinatra/nginx: %.2f (rounds: %s)"
      % (target, median["sinatra"][0] / median["nginx"][0], rounds))
' "$1"
}

echo "segment:  $segment_path ($segment_bytes bytes)"
echo "playlist: $playlist_path ($playlist_bytes bytes)"
echo "wrk: ${duration} s, $threads threads, $connections connections," \
     "$rounds rounds; $(nproc) cores"
echo
printf '%-9s %-8s %12s %11s %11s\n' target server requests/s p50 p99

for target in segment playlist; do
    path=$segment_path
    [ "$target" = playlist ] && path=$playlist_path
    for _ in $(seq "$rounds"); do
        echo "sinatra $(measure "http://127.0.0.1:$sinatra_port$path")"
        echo "nginx $(measure "http://127.0.0.1:$nginx_port$path")"
    done | summarize "$target"
done
