#!/usr/bin/env bash
# Side-by-side benchmark: nehr-probe against oha (and wrk when present), all against the
# same local server in one run, printing ratios for the performance targets of
# docs/measurement.md:
#   1. closed-model throughput at 50 connections        (nehr-probe / oha: want >= 1.05)
#   2. CPU seconds per request at a fixed 20k rps        (nehr-probe / oha: want <= 1.0)
#      (oha with --latency-correction, so both measure latency from the due time), and
#      context switches per request in the same runs
#   3. peak RSS after 1M requests                        (nehr-probe: want <= 32 MiB)
#
# The machine these figures come from is shared, so measures 1 and 2 run ROUNDS times
# in pairs whose order alternates (nehr-probe first, then oha first, …) and the table
# shows the median of each figure and the median of the per-round ratios; the rounds
# themselves go to stderr, to show the noise.
#
# The server is nginx-light answering the documented getToken answer from its config
# (`return 200`) when nginx is installed, the built-in mock otherwise. Every nehr-probe
# answer is still validated against the schema; oha and wrk only count statuses.
#
# HTTP/2 mode: HTTP2=h2c (prior knowledge over http) or HTTP2=tls (ALPN h2 over https,
# a self-signed certificate that nehr-probe verifies with --ca-cert; oha gets
# --insecure). Both clients then use CONNS connections of STREAMS streams each:
# `nehr-probe --http2 -c CONNS*STREAMS --streams STREAMS` (-c counts calls in flight)
# against `oha --http2 -c CONNS -p STREAMS` (its -c counts connections). nginx is then
# required (it speaks HTTP/2 where the mock would be measured instead); wrk is skipped.
#
# Usage: bench/compare.sh            (takes a few minutes; client and server share the CPUs)
# Knobs (environment): PORT=(a free one) CONNS=50 SECS=10 RATE=20000 REQUESTS=1000000
#                      ROUNDS=3 OHA=path/to/oha WRK=path/to/wrk SERVER=nginx|mock
#                      HTTP2=h2c|tls STREAMS=1
#                      BIN=path/to/nehr-probe (default: build the release binary)
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
PORT=${PORT:-$(free_port)}
CONNS=${CONNS:-50}
SECS=${SECS:-10}
RATE=${RATE:-20000}
REQUESTS=${REQUESTS:-1000000}
ROUNDS=${ROUNDS:-3}
HTTP2=${HTTP2:-}
STREAMS=${STREAMS:-1}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
WRK=${WRK:-$(command -v wrk || true)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
SERVER=${SERVER:-$([ -x "$NGINX" ] && echo nginx || echo mock)}
TIME=/usr/bin/time

[ -x "$OHA" ] || { echo "compare.sh: oha not found; install it with: cargo install oha" >&2; exit 2; }
[ -x "$TIME" ] || { echo "compare.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: ROUNDS must be a whole number above 0" >&2; exit 2; }
[[ "$STREAMS" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: STREAMS must be a whole number above 0" >&2; exit 2; }
case "$HTTP2" in
    '' | h2c | tls) ;;
    *) echo "compare.sh: HTTP2 must be h2c or tls" >&2; exit 2 ;;
esac
if [ -n "$HTTP2" ] && [ "$SERVER" != nginx ]; then
    echo "compare.sh: HTTP2=$HTTP2 needs nginx (apt-get install nginx-light)" >&2
    exit 2
fi

release_bin

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    stop_nginx "$WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT

URL=http://127.0.0.1:$PORT/nehrapi/login/getToken
BODY='{"username":"MOH-90008","password":"Moh@-90008"}'
# What each client adds for the protocol: nehr-probe's calls in flight are connections
# times streams; oha's -c is connections, -p streams on each.
N_FLAGS=()
# nginx hands every login the one token of its config: not a cache fault to count.
[ "$SERVER" = nginx ] && N_FLAGS=(--token-reuse same-account)
O_FLAGS=()
N_INFLIGHT=$CONNS
CURL_FLAGS=()
PROTO="HTTP/1.1"
case "$HTTP2" in
    h2c)
        start_nginx "$WORK" 1 "127.0.0.1:$PORT http2"
        N_FLAGS+=(--http2 --streams "$STREAMS")
        O_FLAGS=(--http2 -p "$STREAMS")
        N_INFLIGHT=$((CONNS * STREAMS))
        CURL_FLAGS=(--http2-prior-knowledge)
        PROTO="HTTP/2 h2c, $STREAMS streams a connection"
        ;;
    tls)
        self_signed "$WORK"
        start_nginx "$WORK" 1 "127.0.0.1:$PORT ssl http2" "ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;"
        URL=https://127.0.0.1:$PORT/nehrapi/login/getToken
        N_FLAGS+=(--http2 --streams "$STREAMS" --ca-cert "$WORK/cert.pem")
        O_FLAGS=(--http2 -p "$STREAMS" --insecure)
        N_INFLIGHT=$((CONNS * STREAMS))
        CURL_FLAGS=(--http2 -k)
        PROTO="HTTP/2 over TLS, $STREAMS streams a connection"
        ;;
esac

if [ -n "$HTTP2" ]; then
    WRK=
elif [ "$SERVER" = nginx ]; then
    start_nginx "$WORK" 1 "127.0.0.1:$PORT"
else
    "$BIN" mock --listen "127.0.0.1:$PORT" 2>/dev/null &
    SERVER_PID=$!
fi
wait_for_login "$URL" "${CURL_FLAGS[@]}"

export NEHR_PROBE_PASSWORD='Moh@-90008'
nehr() { "$BIN" load --url "$URL" --username MOH-90008 --quiet --format json "${N_FLAGS[@]}" "$@"; }
oha_() {
    "$OHA" --no-tui --output-format json -m POST -H 'Content-Type: application/json' -d "$BODY" "${O_FLAGS[@]}" \
        "$@" "$URL"
}
# Requests oha answered, from its JSON.
OHA_COUNT='sum(d["statusCodeDistribution"].values())'
ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}x' if b else 'n/a')"; }
# The median of the numbers given as arguments.
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# Per-round figures: rounds.txt holds "round measure nehr oha" lines.
: >"$WORK/rounds.txt"
keep() { echo "$*" >>"$WORK/rounds.txt"; }
col() { awk -v m="$1" -v c="$2" '$2 == m {print $c}' "$WORK/rounds.txt"; }
per_round_ratios() { awk -v m="$1" '$2 == m && $4 > 0 {print $3 / $4}' "$WORK/rounds.txt"; }

echo "server: $SERVER on $URL ($PROTO); $CONNS connections; ${SECS}s per run; $ROUNDS rounds" >&2

# 1. Closed model, 50 connections, as fast as the server answers.
closed_nehr() {
    nehr -c "$N_INFLIGHT" -d "${SECS}s" >"$WORK/n1.json"
    N_RPS=$(json 'd["achieved_rps"]' <"$WORK/n1.json")
    N_OK=$(json 'd["outcomes"]["ok"]/max(d["requests"],1)' <"$WORK/n1.json")
}
closed_oha() {
    oha_ -c "$CONNS" -z "${SECS}s" >"$WORK/o1.json"
    O_RPS=$(json 'd["summary"]["requestsPerSec"]' <"$WORK/o1.json")
}

# 2. CPU and context switches per request at a fixed rate (open model for nehr-probe,
#    oha -q with --latency-correction).
rate_nehr() {
    local u s sw_v sw_i
    read -r u s _ sw_v sw_i < <(timed "$WORK/n2.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
        --format json "${N_FLAGS[@]}" --rps "$RATE" -d "${SECS}s" -c "$N_INFLIGHT")
    N_REQ2=$(json 'd["requests"]' <"$WORK/n2.json")
    N_ACH2=$(json 'd["achieved_rps"]' <"$WORK/n2.json")
    N_CPU=$(python3 -c "print(($u+$s)/max($N_REQ2,1)*1e6)")
    N_CSW=$(python3 -c "print(($sw_v+$sw_i)/max($N_REQ2,1))")
}
rate_oha() {
    local u s sw_v sw_i
    read -r u s _ sw_v sw_i < <(timed "$WORK/o2.json" "$OHA" --no-tui --output-format json -m POST \
        -H 'Content-Type: application/json' -d "$BODY" "${O_FLAGS[@]}" -q "$RATE" --latency-correction \
        -z "${SECS}s" -c "$CONNS" "$URL")
    O_REQ2=$(json "$OHA_COUNT" <"$WORK/o2.json")
    O_CPU=$(python3 -c "print(($u+$s)/max($O_REQ2,1)*1e6)")
    O_CSW=$(python3 -c "print(($sw_v+$sw_i)/max($O_REQ2,1))")
}

for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS: 1/2 closed-model throughput, 2/2 CPU per request at $RATE rps…" >&2
    # Alternate who goes first, so neither always runs on a warmer (or busier) machine.
    if [ $((round % 2)) -eq 1 ]; then
        closed_nehr
        closed_oha
        rate_nehr
        rate_oha
    else
        closed_oha
        closed_nehr
        rate_oha
        rate_nehr
    fi
    keep "$round rps $N_RPS $O_RPS"
    keep "$round cpu $N_CPU $O_CPU"
    keep "$round csw $N_CSW $O_CSW"
    printf '  round %d: throughput %.0f / %.0f req/s (%s); CPU %.1f / %.1f µs a request (%s);' \
        "$round" "$N_RPS" "$O_RPS" "$(ratio "$N_RPS" "$O_RPS")" "$N_CPU" "$O_CPU" "$(ratio "$N_CPU" "$O_CPU")" >&2
    printf ' %.2f / %.2f context switches a request; nehr-probe achieved %.1f rps, oha answered %s\n' \
        "$N_CSW" "$O_CSW" "$N_ACH2" "$O_REQ2" >&2
done

W_RPS=
if [ -n "$WRK" ] && [ -x "$WRK" ]; then
    cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
    W_RPS=$("$WRK" -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/post.lua" "$URL" | awk '/Requests\/sec/ {print $2}')
fi

# 3. Peak RSS over REQUESTS requests (and a tenth of them, to show it is flat).
echo "peak memory over $REQUESTS requests…" >&2
read -r _ _ N_RSS_SMALL _ < <(timed "$WORK/n3s.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
    --format json "${N_FLAGS[@]}" -c "$N_INFLIGHT" -n $((REQUESTS / 10)))
read -r _ _ N_RSS _ < <(timed "$WORK/n3.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
    --format json "${N_FLAGS[@]}" -c "$N_INFLIGHT" -n "$REQUESTS")
N_REQ3=$(json 'd["requests"]' <"$WORK/n3.json")
N_PROTO=$(json 'd.get("http_versions")' <"$WORK/n3.json")
read -r _ _ O_RSS _ < <(timed "$WORK/o3.json" "$OHA" --no-tui --output-format json -m POST \
    -H 'Content-Type: application/json' -d "$BODY" "${O_FLAGS[@]}" -c "$CONNS" -n "$REQUESTS" "$URL")

mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
# shellcheck disable=SC2046 # one number a line, split on purpose
row() {
    local what=$1 measure=$2 fmt=$3
    printf "%-50s $fmt $fmt %10s %12s\n" "$what" "$(median $(col "$measure" 3))" "$(median $(col "$measure" 4))" \
        "$(python3 -c "print(f'{$(median $(per_round_ratios "$measure")):.2f}x')")" "${4:-n/a}"
}
printf '\n%-50s %12s %12s %10s %12s\n' "measure ($SERVER server, $PROTO, $(nproc) CPUs; median of $ROUNDS)" \
    nehr-probe oha ratio wrk
row "closed-model throughput, $CONNS conns (req/s)" rps '%12.0f' "${W_RPS:-n/a}"
row "CPU per request at $RATE rps (µs)" cpu '%12.1f'
row "context switches per request at $RATE rps" csw '%12.2f'
printf '%-50s %12s %12s %10s %12s\n' "peak RSS after $REQUESTS requests (MiB)" "$(mib "$N_RSS")" "$(mib "$O_RSS")" \
    "$(ratio "$N_RSS" "$O_RSS")" "n/a"
echo
echo "ratios are the median of the per-round ratios (rounds above, on stderr)"
echo "nehr-probe: share ok in the last throughput run $N_OK (every answer validated);" \
    "achieved $N_ACH2 of $RATE rps in the last fixed-rate run; peak RSS $(mib "$N_RSS_SMALL") MiB after" \
    "$((REQUESTS / 10)) requests, $(mib "$N_RSS") MiB after $N_REQ3; answers by protocol $N_PROTO; connections" \
    "opened $(json 'd["connections_opened"]' <"$WORK/n3.json")"
echo "oha answered $O_REQ2 requests in the last fixed-rate run; wrk has no fixed-rate mode (wrk2 has)"
