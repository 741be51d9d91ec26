#!/usr/bin/env bash
# Screenshot a whole report.html in headless Chromium, with no network
# access, to check that it renders self-contained (table and inline SVG plots).
#   scripts/screenshot.sh output/quickstart/report.html output/quickstart/report.png
# Needs Debian's chromium (apt-get install chromium); not part of cargo test.
# The page's full height is measured first (a copy of the page writes its
# scrollHeight into its title, read back with --dump-dom), then the window is
# made that tall, so the screenshot holds the whole page, not its first screen.
set -euo pipefail
html="$(realpath "$1")"
out="$(realpath -m "${2:-${1%.html}.png}")"
width=1300
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$profile" --hide-scrollbars)
probe="$profile/probe.html"
cp "$html" "$probe"
printf '<script>document.title="H"+Math.ceil(document.documentElement.scrollHeight)+"H";</script>\n' >>"$probe"
height="$(chromium "${flags[@]}" --window-size="$width",1000 --dump-dom "file://$probe" 2>/dev/null |
  grep -o 'H[0-9][0-9]*H' | head -n 1 | tr -d H || true)"
if [ -z "$height" ]; then
  echo "could not measure the page height; using 8000 px" >&2
  height=8000
fi
chromium "${flags[@]}" --window-size="$width","$height" --screenshot="$out" "file://$html" >/dev/null 2>&1
echo "wrote $out (${width}×${height} px: the whole page)"
