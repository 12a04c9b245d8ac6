#!/usr/bin/env bash
# Side-by-side benchmark: nehr-probe against oha (and wrk when present), all against the
# same local server in one run, printing ratios for the performance targets of
# docs/measurement.md:
#   1. closed-model throughput at 50 connections        (nehr-probe / oha: want >= 1.0)
#   2. CPU seconds per request at a fixed 20k rps        (nehr-probe / oha: want <= 1.0)
#   3. peak RSS after 1M requests                        (nehr-probe: want <= 32 MiB)
#
# The server is nginx-light answering the documented getToken answer from its config
# (`return 200`) when nginx is installed, the built-in mock otherwise. Every nehr-probe
# answer is still validated against the schema; oha and wrk only count statuses.
#
# Usage: bench/compare.sh            (takes a few minutes; client and server share the CPUs)
# Knobs (environment): PORT=(a free one) CONNS=50 SECS=10 RATE=20000 REQUESTS=1000000
#                      OHA=path/to/oha WRK=path/to/wrk SERVER=nginx|mock
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
CONNS=${CONNS:-50}
SECS=${SECS:-10}
RATE=${RATE:-20000}
REQUESTS=${REQUESTS:-1000000}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
WRK=${WRK:-$(command -v wrk || true)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
SERVER=${SERVER:-$([ -x "$NGINX" ] && echo nginx || echo mock)}
TIME=/usr/bin/time

[ -x "$OHA" ] || { echo "compare.sh: oha not found; install it with: cargo install oha" >&2; exit 2; }
[ -x "$TIME" ] || { echo "compare.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }

echo "building nehr-probe (release)…" >&2
cargo build --release --quiet
BIN=$PWD/target/release/nehr-probe

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

URL=http://127.0.0.1:$PORT/nehrapi/login/getToken
BODY='{"username":"MOH-90008","password":"Moh@-90008"}'
# The API document's example answer (schemas/get-token.example.json), on one line.
ANSWER=$(python3 -c 'import json; print(json.dumps(json.load(open("schemas/get-token.example.json")), separators=(",", ":")))')

if [ "$SERVER" = nginx ]; then
    mkdir -p "$WORK/logs"
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$PORT;
        location = /nehrapi/login/getToken {
            default_type application/json;
            return 200 '$ANSWER';
        }
    }
}
EOF
    "$NGINX" -p "$WORK" -c "$WORK/nginx.conf"
else
    "$BIN" mock --listen "127.0.0.1:$PORT" 2>/dev/null &
    SERVER_PID=$!
fi
for _ in $(seq 50); do
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "$BODY" "$URL" 2>/dev/null && break
    sleep 0.1
done

export NEHR_PROBE_PASSWORD='Moh@-90008'
nehr() { "$BIN" load --url "$URL" --username MOH-90008 --quiet --format json "$@"; }
oha_() { "$OHA" --no-tui --output-format json -m POST -H 'Content-Type: application/json' -d "$BODY" "$@" "$URL"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# Requests oha answered, from its JSON.
OHA_COUNT='sum(d["statusCodeDistribution"].values())'
# "user system maxrss_kib" of a command, its stdout to a file.
timed() {
    local out=$1
    shift
    "$TIME" -f '%U %S %M' -o "$WORK/time" "$@" >"$out"
    cat "$WORK/time"
}
ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}x' if b else 'n/a')"; }

echo "server: $SERVER on $URL; $CONNS connections; ${SECS}s per throughput run" >&2

# 1. Closed model, 50 connections, as fast as the server answers.
echo "1/3 closed-model throughput…" >&2
nehr -c "$CONNS" -d "${SECS}s" >"$WORK/n1.json"
N_RPS=$(json 'd["achieved_rps"]' <"$WORK/n1.json")
N_OK=$(json 'd["outcomes"]["ok"]/max(d["requests"],1)' <"$WORK/n1.json")
oha_ -c "$CONNS" -z "${SECS}s" >"$WORK/o1.json"
O_RPS=$(json 'd["summary"]["requestsPerSec"]' <"$WORK/o1.json")
W_RPS=
if [ -n "$WRK" ] && [ -x "$WRK" ]; then
    cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
    W_RPS=$("$WRK" -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/post.lua" "$URL" | awk '/Requests\/sec/ {print $2}')
fi

# 2. CPU per request at a fixed rate (open model for nehr-probe, oha -q).
echo "2/3 CPU per request at $RATE rps…" >&2
read -r NU NS _ < <(timed "$WORK/n2.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet --format json \
    --rps "$RATE" -d "${SECS}s" -c "$CONNS")
N_REQ2=$(json 'd["requests"]' <"$WORK/n2.json")
N_ACH2=$(json 'd["achieved_rps"]' <"$WORK/n2.json")
read -r OU OS _ < <(timed "$WORK/o2.json" "$OHA" --no-tui --output-format json -m POST \
    -H 'Content-Type: application/json' -d "$BODY" -q "$RATE" -z "${SECS}s" -c "$CONNS" "$URL")
O_REQ2=$(json "$OHA_COUNT" <"$WORK/o2.json")
N_CPU=$(python3 -c "print(($NU+$NS)/max($N_REQ2,1)*1e6)")
O_CPU=$(python3 -c "print(($OU+$OS)/max($O_REQ2,1)*1e6)")

# 3. Peak RSS over REQUESTS requests (and a tenth of them, to show it is flat).
echo "3/3 peak memory over $REQUESTS requests…" >&2
read -r _ _ N_RSS_SMALL < <(timed "$WORK/n3s.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
    --format json -c "$CONNS" -n $((REQUESTS / 10)))
read -r _ _ N_RSS < <(timed "$WORK/n3.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
    --format json -c "$CONNS" -n "$REQUESTS")
N_REQ3=$(json 'd["requests"]' <"$WORK/n3.json")
read -r _ _ O_RSS < <(timed "$WORK/o3.json" "$OHA" --no-tui --output-format json -m POST \
    -H 'Content-Type: application/json' -d "$BODY" -c "$CONNS" -n "$REQUESTS" "$URL")

mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
printf '\n%-46s %12s %12s %10s %12s\n' "measure ($SERVER server, $(nproc) CPUs)" nehr-probe oha ratio wrk
printf '%-46s %12.0f %12.0f %10s %12s\n' "closed-model throughput, $CONNS conns (req/s)" "$N_RPS" "$O_RPS" \
    "$(ratio "$N_RPS" "$O_RPS")" "${W_RPS:-n/a}"
printf '%-46s %12.1f %12.1f %10s %12s\n' "CPU per request at $RATE rps (µs)" "$N_CPU" "$O_CPU" \
    "$(ratio "$N_CPU" "$O_CPU")" "n/a"
printf '%-46s %12s %12s %10s %12s\n' "peak RSS after $REQUESTS requests (MiB)" "$(mib "$N_RSS")" "$(mib "$O_RSS")" \
    "$(ratio "$N_RSS" "$O_RSS")" "n/a"
echo
echo "nehr-probe: share ok in the throughput run $N_OK (every answer validated);" \
    "achieved $N_ACH2 of $RATE rps; peak RSS $(mib "$N_RSS_SMALL") MiB after $((REQUESTS / 10))" \
    "requests, $(mib "$N_RSS") MiB after $N_REQ3"
echo "oha answered $O_REQ2 requests in the fixed-rate run; wrk has no fixed-rate mode (wrk2 has)"
