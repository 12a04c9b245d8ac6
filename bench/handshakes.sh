#!/usr/bin/env bash
# New connections at a login rate: `load --no-keepalive` over TLS against nginx-light
# on loopback (a full TLS 1.3 handshake per call, ECDSA P-256 certificate), verifying
# the certificate and with --insecure, beside the same rate with keep-alive, and
# oha --disable-keepalive at that rate (with --insecure, and verifying with --cacert)
# when oha is installed. Prints whether the rate held, the client's CPU per call, and
# the ratios of nehr-probe's to oha's (only the client's CPU: nginx's is not counted).
#
# Usage: bench/handshakes.sh      (about two minutes; client and server share the CPUs)
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

# No session tickets and no session cache: oha keeps rustls' default session store and
# would resume (skipping the certificate and its signatures) where nehr-probe resumes
# nothing; with these every handshake of both is a full one.
start_nginx "$WORK" "${WORKERS:-2}" "127.0.0.1:$PORT ssl" "ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_session_tickets off;
        ssl_session_cache off;
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
echo "1/5 --no-keepalive…" >&2
read -r NA ND NOK NREQ NLATE NP50 NP99 NTLS NOPEN NCPU < <(run fresh --no-keepalive)
echo "2/5 --no-keepalive --insecure…" >&2
read -r IA ID IOK IREQ ILATE IP50 IP99 ITLS IOPEN ICPU < <(run insecure --no-keepalive --insecure)
echo "3/5 keep-alive…" >&2
read -r KA KD KOK KREQ KLATE KP50 KP99 KTLS KOPEN KCPU < <(run kept)
# One oha run at RATE, its TLS flags given: "answered µs_cpu_per_call".
oha_run() {
    local name=$1
    shift
    read -r OU OS _ < <(timed "$WORK/$name.json" "$OHA" --no-tui --output-format json --disable-keepalive "$@" \
        -m POST -H 'Content-Type: application/json' -d '{"username":"MOH-90008","password":"Moh@-90008"}' \
        -q "$RATE" -z "${SECS}s" -c "$CONNS" "$URL")
    json "' '.join(str(x) for x in [sum(d['statusCodeDistribution'].values()),
        round(($OU + $OS) / max(sum(d['statusCodeDistribution'].values()), 1) * 1e6, 1)])" <"$WORK/$name.json"
}
O_REQ=n/a O_CPU=n/a V_REQ=n/a V_CPU=n/a
if [ -x "$OHA" ]; then
    echo "4/5 oha --disable-keepalive --insecure…" >&2
    read -r O_REQ O_CPU < <(oha_run oha --insecure)
    echo "5/5 oha --disable-keepalive --cacert…" >&2
    read -r V_REQ V_CPU < <(oha_run oha-verifying --cacert "$WORK/cert.pem")
fi
ratio() { python3 -c "import sys; a, b = sys.argv[1:]; print('n/a' if 'n/a' in (a, b) else f'{float(a) / float(b):.2f}')" "$1" "$2"; }

printf '\n%-30s %13s %13s %13s %13s %13s\n' "at $RATE calls/s over TLS, $(nproc) CPUs" "--no-keepalive" "+ --insecure" "keep-alive" "oha insecure" "oha --cacert"
printf '%-30s %13s %13s %13s %13s %13s\n' "achieved rate (calls/s)" "$NA" "$IA" "$KA" "n/a" "n/a"
printf '%-30s %13s %13s %13s %13s %13s\n' "ok / calls" "$NOK/$NREQ" "$IOK/$IREQ" "$KOK/$KREQ" "$O_REQ answered" "$V_REQ answered"
printf '%-30s %13s %13s %13s %13s %13s\n' "dropped, late starts" "$ND, $NLATE" "$ID, $ILATE" "$KD, $KLATE" "n/a" "n/a"
printf '%-30s %13s %13s %13s %13s %13s\n' "latency p50 / p99 (s)" "$NP50/$NP99" "$IP50/$IP99" "$KP50/$KP99" "n/a" "n/a"
printf '%-30s %13s %13s %13s %13s %13s\n' "tls phase p50 (s)" "$NTLS" "$ITLS" "$KTLS" "n/a" "n/a"
printf '%-30s %13s %13s %13s %13s %13s\n' "connections opened" "$NOPEN" "$IOPEN" "$KOPEN" "n/a" "n/a"
printf '%-30s %13s %13s %13s %13s %13s\n' "client CPU per call (µs)" "$NCPU" "$ICPU" "$KCPU" "$O_CPU" "$V_CPU"
echo
echo "client CPU per call, nehr-probe / oha (one run each: pair several runs before quoting a ratio):"
echo "  nehr-probe verifying / oha --insecure:  $(ratio "$NCPU" "$O_CPU")"
echo "  nehr-probe --insecure / oha --insecure: $(ratio "$ICPU" "$O_CPU")"
echo "  nehr-probe verifying / oha verifying:   $(ratio "$NCPU" "$V_CPU")"
