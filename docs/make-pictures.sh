#!/usr/bin/env bash
# Makes docs/html-report.png, the picture of the HTML report in the README: a 30 s run at
# 50 logins a second against the mock (20 ms answers), which fails every login, fast,
# from second 12 to second 18; the page is drawn by headless chromium. Loopback only.
# Needs Debian's chromium (apt-get install chromium). Run from anywhere: docs/make-pictures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/nehr-probe
work=$(mktemp -d)
mock=""
cleanup() {
  if [ -n "$mock" ]; then kill "$mock" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" mock --listen 127.0.0.1:0 --latency 20ms >"$work/mock.log" 2>&1 &
mock=$!
for _ in $(seq 50); do
  url=$(grep -o 'http://[^ ]*' "$work/mock.log" || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the mock did not start" >&2; exit 1; }
config="${url%/nehrapi/login/getToken}/_mock/config"
printf 'MOH-90008:Moh@-90008\n' >"$work/accounts"

outage() {
  sleep 12
  curl -sf -XPOST -H 'content-type: application/json' -d '{"error_rate":1,"latency":""}' "$config" >/dev/null
  sleep 6
  curl -sf -XPOST -H 'content-type: application/json' -d '{"error_rate":0,"latency":"20ms"}' "$config" >/dev/null
}
outage &
switch=$!
"$bin" load --quiet --url "$url" --credentials "$work/accounts" --rps 50 -d 30s \
  --threshold 'ok_p99<100ms' --threshold 'error_rate<1%' --html "$work/run.html" >/dev/null || true
wait "$switch"

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size=1000,1500 \
  --screenshot="$work/shot.png" "file://$work/run.html" 2>/dev/null
cp "$work/shot.png" docs/html-report.png
echo "wrote docs/html-report.png ($(stat -c %s docs/html-report.png) bytes)"
