#!/usr/bin/env bash
# Install the npm packages of package-lock.json into node_modules/ at the
# repository root: hls.js, which `sinatra serve` sends to the web page,
# and playwright-core, which drives Chromium in tests/browser/play.mjs.
# Runs `npm ci` only when node_modules/ is missing or older than
# package-lock.json; otherwise it finishes without calling npm.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lockfile=$root/package-lock.json
# npm ci writes this copy of the lockfile at the end of an install, so its
# modification time is the time of the last complete install.
installed=$root/node_modules/.package-lock.json

if [[ -f $installed && ! $lockfile -nt $installed ]]; then
    echo "npm-install.sh: node_modules is up to date"
    exit 0
fi

if ! command -v npm >/dev/null; then
    echo "npm-install.sh: npm not found; run scripts/setup.sh to install" \
         "Node.js and npm" >&2
    exit 1
fi

echo "npm-install.sh: running npm ci in $root"
cd "$root"
npm ci --no-audit --no-fund
