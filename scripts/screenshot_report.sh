#!/usr/bin/env bash
# Screenshot a report page with headless Chromium, to check that it opens and its plots show.
#
#   scripts/screenshot_report.sh RUN_DIR/report/report.html [OUT.png] [WIDTHxHEIGHT]
#
# Needs Debian's chromium (apt-get install -y chromium). Everything the page shows is inside
# the HTML file (plots as base64 PNG), so no network is needed; networking features are off.
set -euo pipefail

html="${1:?usage: $0 REPORT.html [OUT.png] [WIDTH,HEIGHT]}"
out="${2:-${html%.html}.png}"
size="${3:-1400,5200}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$browser" ]]; then
    echo "no chromium found: apt-get update && apt-get install -y chromium" >&2
    exit 2
fi
if [[ ! -f "$html" ]]; then
    echo "$html: no such file" >&2
    exit 2
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --screenshot="$out" \
    --window-size="$size" "$url" >/dev/null 2>&1
if [[ ! -s "$out" ]]; then
    echo "chromium wrote no screenshot to $out" >&2
    exit 1
fi
echo "screenshot: $out"
