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
. bench/lib.sh
PORT=${PORT:-$(free_port)}
RATE=${RATE:-1000}
SECS=${SECS:-20}
CONNS=${CONNS:-100}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TIME=/usr/bin/time

[ -x "$NGINX" ] || { echo "handshakes.sh: nginx not found (apt-get install nginx-light)" >&2; exit 2; }
[ -x "$TIME" ] || { echo "handshakes.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "handshakes.sh: openssl not found" >&2; exit 2; }

release_bin

WORK=$(mktemp -d)
cleanup() {
    stop_nginx "$WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=nehr-probe bench" -addext "subjectAltName=IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

start_nginx "$WORK" "${WORKERS:-2}" "127.0.0.1:$PORT ssl" "ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"
URL=https://127.0.0.1:$PORT/nehrapi/login/getToken
wait_for_login "$URL" --cacert "$WORK/cert.pem"

export NEHR_PROBE_PASSWORD='Moh@-90008'
# One nehr-probe run at RATE: "achieved dropped ok requests late p50 p99 tls_p50 opened µs_cpu_per_call".
run() {
    local name=$1
    shift
    read -r U S _ < <(timed "$WORK/$name.json" "$BIN" load --url "$URL" --username MOH-90008 --ca-cert "$WORK/cert.pem" \
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
    read -r OU OS _ < <(timed "$WORK/oha.json" "$OHA" --no-tui --output-format json --insecure --disable-keepalive \
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
