#!/usr/bin/env bash
# New connections at a login rate: `load --no-keepalive` over TLS against nginx-light
# on loopback (a full TLS 1.3 handshake per call, ECDSA P-256 certificate), beside the
# same rate with keep-alive, and oha --disable-keepalive at that rate when oha is
# installed. Prints whether the rate held, and CPU per call of the client.
#
# Usage: bench/handshakes.sh      (about a minute; client and server share the CPUs)
# Knobs (environment): RATE=1000 SECS=20 CONNS=100 WORKERS=2 (nginx) PORT=(a free one) OHA=path/to/oha
#                      BIN=path/to/nehr-probe (default: a release build of this tree)
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
RATE=${RATE:-1000}
SECS=${SECS:-20}
CONNS=${CONNS:-100}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TIME=/usr/bin/time

[ -x "$NGINX" ] || { echo "handshakes.sh: nginx not found (apt-get install nginx-light)" >&2; exit 2; }
[ -x "$TIME" ] || { echo "handshakes.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "handshakes.sh: openssl not found" >&2; exit 2; }

if [ -z "${BIN:-}" ]; then
    echo "building nehr-probe (release)…" >&2
    cargo build --release --quiet
    BIN=$PWD/target/release/nehr-probe
fi

WORK=$(mktemp -d)
cleanup() {
    if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=nehr-probe bench" -addext "subjectAltName=IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

ANSWER=$(python3 -c 'import json; print(json.dumps(json.load(open("schemas/get-token.example.json")), separators=(",", ":")))')
mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<EOF
worker_processes ${WORKERS:-2};
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /nehrapi/login/getToken {
            default_type application/json;
            return 200 '$ANSWER';
        }
    }
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf"
URL=https://127.0.0.1:$PORT/nehrapi/login/getToken
for _ in $(seq 50); do
    curl -fsS --cacert "$WORK/cert.pem" -o /dev/null -X POST -d '{}' "$URL" 2>/dev/null && break
    sleep 0.1
done

export NEHR_PROBE_PASSWORD='Moh@-90008'
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# "user system" CPU seconds of a command, its stdout to a file.
timed() {
    local out=$1
    shift
    "$TIME" -f '%U %S' -o "$WORK/time" "$@" >"$out"
    cat "$WORK/time"
}
# One nehr-probe run at RATE: "achieved dropped ok requests late p50 p99 tls_p50 opened µs_cpu_per_call".
run() {
    local name=$1
    shift
    read -r U S < <(timed "$WORK/$name.json" "$BIN" load --url "$URL" --username MOH-90008 --ca-cert "$WORK/cert.pem" \
        --quiet --format json --rps "$RATE" -d "${SECS}s" -c "$CONNS" "$@")
    json "' '.join(str(x) for x in [d['achieved_rps'], d.get('dropped', 0), d['outcomes']['ok'], d['requests'],
        d['late_starts'], d['latency_seconds']['p50'], d['latency_seconds']['p99'],
        (d['phases_seconds']['tls'] or {}).get('p50', 0), d['connections_opened'],
        round(($U + $S) / max(d['requests'], 1) * 1e6, 1)])" <"$WORK/$name.json"
}

echo "nginx-light over TLS on $URL; $RATE calls/s for ${SECS}s, at most $CONNS in flight" >&2
echo "1/3 --no-keepalive…" >&2
read -r NA ND NOK NREQ NLATE NP50 NP99 NTLS NOPEN NCPU < <(run fresh --no-keepalive)
echo "2/3 keep-alive…" >&2
read -r KA KD KOK KREQ KLATE KP50 KP99 KTLS KOPEN KCPU < <(run kept)
O_CPU=n/a
O_REQ=n/a
if [ -x "$OHA" ]; then
    echo "3/3 oha --disable-keepalive…" >&2
    read -r OU OS < <(timed "$WORK/oha.json" "$OHA" --no-tui --output-format json --insecure --disable-keepalive \
        -m POST -H 'Content-Type: application/json' -d '{"username":"MOH-90008","password":"Moh@-90008"}' \
        -q "$RATE" -z "${SECS}s" -c "$CONNS" "$URL")
    O_REQ=$(json 'sum(d["statusCodeDistribution"].values())' <"$WORK/oha.json")
    O_CPU=$(python3 -c "print(round(($OU+$OS)/max($O_REQ,1)*1e6, 1))")
fi

printf '\n%-34s %14s %14s %14s\n' "at $RATE calls/s over TLS, $(nproc) CPUs" "--no-keepalive" "keep-alive" "oha -no-ka"
printf '%-34s %14s %14s %14s\n' "achieved rate (calls/s)" "$NA" "$KA" "n/a"
printf '%-34s %14s %14s %14s\n' "ok / calls" "$NOK/$NREQ" "$KOK/$KREQ" "$O_REQ answered"
printf '%-34s %14s %14s %14s\n' "dropped, late starts" "$ND, $NLATE" "$KD, $KLATE" "n/a"
printf '%-34s %14s %14s %14s\n' "latency p50 / p99 (s)" "$NP50/$NP99" "$KP50/$KP99" "n/a"
printf '%-34s %14s %14s %14s\n' "tls phase p50 (s)" "$NTLS" "$KTLS" "n/a"
printf '%-34s %14s %14s %14s\n' "connections opened" "$NOPEN" "$KOPEN" "n/a"
printf '%-34s %14s %14s %14s\n' "client CPU per call (µs)" "$NCPU" "$KCPU" "$O_CPU"
