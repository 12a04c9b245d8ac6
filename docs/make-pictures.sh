#!/usr/bin/env bash
# Makes docs/html-report.png, the picture of the HTML report in the README: a 30 s run at
# 50 logins a second against the mock (20 ms answers), which fails every login, fast,
# from second 12 to second 18; and docs/landing-page.png, serve's landing page after
# 30 s of probes every 250 ms of the mock (a quarter of its answers a 500, 10 to 60 ms)
# and of a port nobody listens on. Both pages are drawn by headless chromium. Loopback only.
# Needs Debian's chromium (apt-get install chromium). Run from anywhere: docs/make-pictures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/nehr-probe
work=$(mktemp -d)
mock=""
serve=""
cleanup() {
  if [ -n "$serve" ]; then kill "$serve" 2>/dev/null || true; fi
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

shoot() { # PAGE WIDTH HEIGHT PNG
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size="$2,$3" \
    --screenshot="$work/shot.png" "file://$1" 2>/dev/null
  cp "$work/shot.png" "$4"
  echo "wrote $4 ($(stat -c %s "$4") bytes)"
}
shoot "$work/run.html" 1000 1500 docs/html-report.png

# The landing page: the mock, now failing a quarter of its logins, and a closed port.
curl -sf -XPOST -H 'content-type: application/json' -d '{"error_rate":0.25,"latency":"10ms..60ms"}' "$config" >/dev/null
printf 'Moh@-90008\n' >"$work/password"
cat >"$work/targets.toml" <<EOF
[targets.production]
url = "$url"
username = "MOH-90008"
password_file = "password"

[targets.standby]
url = "http://127.0.0.1:9/nehrapi/login/getToken"
username = "MOH-90008"
password_file = "password"
EOF
"$bin" serve --config "$work/targets.toml" --listen 127.0.0.1:0 --interval 250ms \
  --probe-min-interval 250ms >"$work/serve.log" 2>&1 &
serve=$!
landing=""
for _ in $(seq 50); do
  landing=$(grep -ao 'serving http://[^ ]*' "$work/serve.log" | cut -c9- || true)
  [ -n "$landing" ] && break
  sleep 0.1
done
[ -n "$landing" ] || { echo "serve did not start" >&2; exit 1; }
sleep 30
curl -sf "$landing" >"$work/landing.html"
shoot "$work/landing.html" 1280 720 docs/landing-page.png
