# What the bench scripts share: sourced by them (`. bench/lib.sh` from the repository's
# root), never run on its own. Every server it starts listens on loopback only.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# BIN, or a release build of this tree when BIN is unset.
release_bin() {
    if [ -z "${BIN:-}" ]; then
        echo "building nehr-probe (release)…" >&2
        cargo build --release --quiet
        BIN=$PWD/target/release/nehr-probe
    fi
}

# The API document's example answer (schemas/get-token.example.json), on one line.
example_answer() {
    python3 -c 'import json; print(json.dumps(json.load(open("schemas/get-token.example.json")), separators=(",", ":")))'
}

# start_nginx DIR WORKERS LISTEN [SERVER_LINES]: nginx-light in DIR (its pid in
# DIR/nginx.pid) answering POST /nehrapi/login/getToken with the example answer from
# its config, `listen LISTEN;` plus SERVER_LINES in the server block (TLS settings, say).
start_nginx() {
    local dir=$1 workers=$2 listen=$3 extra=${4:-}
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    server {
        listen $listen;
        $extra
        location = /nehrapi/login/getToken {
            default_type application/json;
            return 200 '$(example_answer)';
        }
    }
}
CONF
    "${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}" -p "$dir" -c "$dir/nginx.conf"
}

# self_signed DIR: a self-signed certificate for 127.0.0.1 (an end entity, so a client
# that verifies trusts it with --ca-cert DIR/cert.pem) and its key, DIR/key.pem.
self_signed() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=nehr-probe bench" -addext "subjectAltName=IP:127.0.0.1" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# stop_nginx DIR: stops what start_nginx DIR started, if it did.
stop_nginx() {
    if [ -f "$1/nginx.pid" ]; then kill "$(cat "$1/nginx.pid")" 2>/dev/null || true; fi
}

# wait_for_login URL [CURL_ARGS…]: waits up to 5 s for URL to answer a POST.
wait_for_login() {
    local url=$1
    shift
    for _ in $(seq 50); do
        curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "$@" "$url" 2>/dev/null && return
        sleep 0.1
    done
}

# timed OUT COMMAND…: runs COMMAND with its stdout to OUT and prints "user system
# maxrss_kib voluntary_switches involuntary_switches" of it (WORK must be set).
timed() {
    local out=$1
    shift
    /usr/bin/time -f '%U %S %M %w %c' -o "$WORK/time" "$@" >"$out"
    cat "$WORK/time"
}

# json EXPR: EXPR of the JSON document on stdin, as `d`.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
