#!/usr/bin/env bash
# Install the packages, build Sinatra and turn one video into an HLS
# ladder in build/demo-hls/.
#
#     scripts/demo.sh [INPUT]
#
# Without INPUT, the demo makes a 20 s 1280x720 sample at 29.97 fps
# (FFmpeg's testsrc2 pattern, a 440 Hz tone that beeps once a second,
# H.264 and AAC in MP4) in build/sample/ and uses that. The sample is made
# once and reused by later runs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
input=
if (($# > 1)); then
    echo "usage: scripts/demo.sh [INPUT]" >&2
    exit 2
fi
if (($# == 1)); then
    # Resolve INPUT before anything changes folder.
    if [[ ! -f $1 ]]; then
        echo "demo.sh: input file $1 not found" >&2
        exit 2
    fi
    input=$(realpath -- "$1")
fi

"$root/scripts/setup.sh"
# hls.js, which `sinatra serve` sends to the web page.
"$root/scripts/npm-install.sh"
"$root/scripts/build.sh"

if [[ -z $input ]]; then
    input=$root/build/sample/testsrc2-720p-29.97fps-20s.mp4
    if [[ ! -s $input ]]; then
        echo "demo.sh: making the sample $input"
        mkdir -p "$(dirname "$input")"

        # Write to a temporary name first so that an interrupted run does
        # not leave a truncated sample for the next run to reuse.
        ffmpeg -hide_banner -loglevel error -nostdin -y \
            -f lavfi -i "testsrc2=size=1280x720:rate=30000/1001" \
            -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" \
            -t 20 -map 0:v -map 1:a \
            -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p \
            -c:a aac -b:a 128k -ac 2 -movflags +faststart \
            "$input.part.mp4"
        mv "$input.part.mp4" "$input"
    fi
fi

output=$root/build/demo-hls
rc=0
"$root/build/sinatra" process "$input" -o "$output" --overwrite || rc=$?
if ((rc != 0)); then
    echo "demo.sh: sinatra process failed with exit code $rc" \
         "(build/sinatra process --help lists the codes)" >&2
    exit "$rc"
fi

cat <<EOF

The HLS stream is in $output/
  master playlist: $output/master.m3u8

Play it with ffplay:
  ffplay $output/master.m3u8

or start Sinatra's server, open http://127.0.0.1:8080/ in a browser and
drop a video on the page: it plays while it is still being processed.
  $root/build/sinatra serve
EOF
