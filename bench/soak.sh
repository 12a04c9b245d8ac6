#!/usr/bin/env bash
# Soak: one long open-model run against the built-in mock (30 minutes at 2000 rps by
# default), sampling every minute what must stay flat in a process that runs for hours:
# the load process's resident memory and open file descriptors, the requests it made
# and the late starts (requests sent more than 1 ms after their due time) of that minute,
# read from its live metrics. The mock's memory and descriptors are sampled beside it.
#
# It ends with the run's own report (requests, achieved rate, latency, late starts) and
# a verdict: flat when, after the first minute (connections and buffers warming up),
# the load process's RSS grew by at most RSS_SLACK_KIB and its descriptors by at most
# FD_SLACK, and every minute sent its share of the schedule. Exit 1 when not flat.
#
# Not in CI (it takes half an hour). Traffic goes to loopback only.
#
# Usage: bench/soak.sh
# Knobs (environment): MINUTES=30 RATE=2000 CONNS=50 EVERY=60 (seconds between samples)
#                      RSS_SLACK_KIB=2048 FD_SLACK=2 BIN=path/to/nehr-probe (default:
#                      build the release binary) OUT=file (also keep the samples, TSV)
set -euo pipefail

cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-30}
RATE=${RATE:-2000}
CONNS=${CONNS:-50}
EVERY=${EVERY:-60}
RSS_SLACK_KIB=${RSS_SLACK_KIB:-2048}
FD_SLACK=${FD_SLACK:-2}
for knob in MINUTES CONNS EVERY RSS_SLACK_KIB FD_SLACK; do
    [[ "${!knob}" =~ ^[0-9]+$ ]] || { echo "soak.sh: $knob must be a whole number" >&2; exit 2; }
done
[ "$MINUTES" -gt 0 ] && [ "$EVERY" -gt 0 ] || { echo "soak.sh: MINUTES and EVERY must be above 0" >&2; exit 2; }

. bench/lib.sh
release_bin
PORT=$(free_port)
MPORT=$(free_port)

WORK=$(mktemp -d)
MOCK_PID=
LOAD_PID=
cleanup() {
    if [ -n "$LOAD_PID" ]; then kill "$LOAD_PID" 2>/dev/null || true; fi
    if [ -n "$MOCK_PID" ]; then kill "$MOCK_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" mock --listen "127.0.0.1:$PORT" 2>"$WORK/mock.err" &
MOCK_PID=$!
URL=http://127.0.0.1:$PORT/nehrapi/login/getToken
for _ in $(seq 50); do
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d '{"username":"MOH-90008","password":"Moh@-90008"}' "$URL" 2>/dev/null && break
    sleep 0.1
done

NEHR_PROBE_PASSWORD='Moh@-90008' "$BIN" load --url "$URL" --username MOH-90008 --quiet --format json \
    --rps "$RATE" -d "${MINUTES}m" -c "$CONNS" --metrics-listen "127.0.0.1:$MPORT" \
    >"$WORK/report.json" 2>"$WORK/load.err" &
LOAD_PID=$!

# VmRSS in KiB and open descriptors of a live process ("- -" once it is gone).
proc_sample() {
    local rss fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null) || rss=-
    fds=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || fds=-
    echo "${rss:--} ${fds:--}"
}
# "requests late_starts" so far, from the live metrics ("- -" if they cannot be read).
metrics_sample() {
    curl -fsS --max-time 5 "http://127.0.0.1:$MPORT/metrics" 2>/dev/null | awk '
        /^nehr_probe_requests_total\{/ {req += $NF}
        /^nehr_probe_late_starts_total[{ ]/ {late += $NF; seen = 1}
        END {if (NR) print req + 0, (seen ? late : "-"); else print "- -"}' || echo "- -"
}

mib() { if [ "$1" = - ]; then echo -; else python3 -c "print(f'{$1/1024:.1f}')"; fi; }

echo "soak: $MINUTES min at $RATE rps, $CONNS connections, against the mock on $URL; a sample every ${EVERY}s" >&2
SAMPLES=$WORK/samples.tsv
printf 'minute\trss_kib\tfds\trequests\tlate_starts\tmock_rss_kib\tmock_fds\n' >"$SAMPLES"
printf '%7s %12s %6s %10s %12s %14s %9s\n' minute "RSS (MiB)" fds requests "late starts" "mock RSS (MiB)" "mock fds"
START=$(date +%s)
prev_req=0
prev_late=0
n=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
    n=$((n + 1))
    # Sleep to the next whole sample time, so samples do not drift.
    wait_for=$((START + n * EVERY - $(date +%s)))
    while [ "$wait_for" -gt 0 ] && kill -0 "$LOAD_PID" 2>/dev/null; do
        sleep 1
        wait_for=$((wait_for - 1))
    done
    kill -0 "$LOAD_PID" 2>/dev/null || break
    read -r rss fds < <(proc_sample "$LOAD_PID")
    read -r mrss mfds < <(proc_sample "$MOCK_PID")
    read -r req late < <(metrics_sample)
    d_req=-
    d_late=-
    if [ "$req" != - ]; then d_req=$((req - prev_req)) && prev_req=$req; fi
    if [ "$late" != - ]; then d_late=$((late - prev_late)) && prev_late=$late; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$rss" "$fds" "$d_req" "$d_late" "$mrss" "$mfds" >>"$SAMPLES"
    printf '%7s %12s %6s %10s %12s %14s %9s\n' "$n" "$(mib "$rss")" "$fds" "$d_req" "$d_late" "$(mib "$mrss")" "$mfds"
done
status=0
wait "$LOAD_PID" || status=$?
LOAD_PID=
[ -z "${OUT:-}" ] || cp "$SAMPLES" "$OUT"
if [ "$status" -ne 0 ] || [ ! -s "$WORK/report.json" ]; then
    echo "soak.sh: the load run failed (exit $status):" >&2
    cat "$WORK/load.err" >&2
    exit 2
fi

python3 - "$WORK/report.json" "$SAMPLES" "$RATE" "$EVERY" "$RSS_SLACK_KIB" "$FD_SLACK" <<'EOF'
import csv, json, sys
report, samples, rate, every, rss_slack, fd_slack = sys.argv[1:]
rate, every, rss_slack, fd_slack = float(rate), int(every), int(rss_slack), int(fd_slack)
d = json.load(open(report))
rows = [r for r in csv.DictReader(open(samples), delimiter="\t") if r["rss_kib"] != "-"]
lat = d["latency_seconds"]
not_ok = {k: v for k, v in d["outcomes"].items() if k != "ok" and v}
print()
print(f"run: {d['requests']} requests in {d['duration_seconds']:.0f} s, achieved {d['achieved_rps']:.1f} of "
      f"{rate:g} rps; latency p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms, "
      f"max {lat['max'] * 1e3:.2f} ms; late starts {d['late_starts']}; not ok: {not_ok or 'none'}")
if len(rows) < 2:
    print("too few samples to judge flatness (the run was shorter than two sample intervals)")
    sys.exit(0)
later = rows[1:]
rss = [int(r["rss_kib"]) for r in later]
fds = [int(r["fds"]) for r in later]
rss_growth, fd_growth = max(rss) - rss[0], max(fds) - fds[0]
# Every full interval sends its share of the schedule (within 2 %), the last one aside.
want = rate * every
short = [r["minute"] for r in later[:-1] if r["requests"] != "-" and int(r["requests"]) < 0.98 * want]
flat = rss_growth <= rss_slack and fd_growth <= fd_slack and not short
print(f"after the first sample: RSS {rss[0] / 1024:.1f} to {max(rss) / 1024:.1f} MiB (grew {rss_growth} KiB, "
      f"allowed {rss_slack}); descriptors {fds[0]} to {max(fds)} (allowed +{fd_slack}); "
      f"samples that sent under 98 % of {want:.0f}: {', '.join(short) or 'none'}")
print("flat" if flat else "NOT flat")
sys.exit(0 if flat else 1)
EOF
