#!/usr/bin/env bash
# Screenshot a report.html in headless Chromium, with no network access, to
# check that it renders self-contained (table and inline SVG plots).
#   scripts/screenshot.sh output/quickstart/report.html output/quickstart/report.png
# Needs Debian's chromium (apt-get install chromium); not part of cargo test.
set -euo pipefail
html="$(realpath "$1")"
out="$(realpath -m "${2:-${1%.html}.png}")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1300,3000 --hide-scrollbars \
  --screenshot="$out" "file://$html" >/dev/null 2>&1
echo "wrote $out"
