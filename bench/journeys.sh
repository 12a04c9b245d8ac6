#!/usr/bin/env bash
# What a journey costs: `load --then` (login, then one call with its token) against the
# login alone, at one fixed rate against `nehr-probe mock` on loopback, pair by pair
# (login alone, journey, login alone, …) so a drifting machine moves both; and the
# token ledger's memory: peak RSS of a run that fills it (more than 200,000 logins)
# against one that holds a tenth of that. Prints the medians and their ratio.
#
# Usage: bench/journeys.sh      (about a minute and a half)
# Knobs (environment): RATE=2000 SECS=4 RUNS=5 PORT=(a free one)
#                      BIN=path/to/nehr-probe (default: a release build of this tree)
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
PORT=${PORT:-$(free_port)}
RATE=${RATE:-2000}
SECS=${SECS:-4}
RUNS=${RUNS:-5}
[ -x /usr/bin/time ] || { echo "journeys.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }

release_bin
WORK=$(mktemp -d)
"$BIN" mock --listen "127.0.0.1:$PORT" >"$WORK/mock.log" 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null; rm -rf "$WORK"' EXIT
URL=http://127.0.0.1:$PORT/nehrapi/login/getToken
wait_for_login "$URL"
export NEHR_PROBE_PASSWORD='Moh@-90008'

# µs of client CPU per login (or journey) of one run, and its peak RSS in KiB.
run() {
    local rate=$1 secs=$2
    shift 2
    read -r U S M _ < <(timed "$WORK/run.json" "$BIN" load --url "$URL" --username MOH-90008 --quiet \
        --format json --rps "$rate" -d "${secs}s" "$@")
    json "' '.join(str(x) for x in [round(($U + $S) / max(d['requests'], 1) * 1e6, 2), $M, d['outcomes']['ok'],
        d['requests']])" <"$WORK/run.json"
}
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

LOGIN=() JOURNEY=() RATIO=()
for i in $(seq "$RUNS"); do
    echo "pair $i/$RUNS…" >&2
    read -r L _ LOK LREQ < <(run "$RATE" "$SECS")
    read -r J _ JOK JREQ < <(run "$RATE" "$SECS" --then /nehrapi/mock/resource)
    [ "$LOK" = "$LREQ" ] && [ "$JOK" = "$JREQ" ] || echo "note: not every call ok ($LOK/$LREQ, $JOK/$JREQ)" >&2
    LOGIN+=("$L") JOURNEY+=("$J") RATIO+=("$(python3 -c "print($J / $L)")")
done
echo "the ledger: 20,000 logins, then 240,000…" >&2
read -r _ SMALL _ _ < <(run 20000 1)
read -r _ FULL _ _ < <(run 20000 12)

printf '\n%-44s %12s\n' "at $RATE/s for ${SECS}s, $RUNS pairs, $(nproc) CPUs" "median"
printf '%-44s %12s\n' "CPU per login alone (µs)" "$(median "${LOGIN[@]}")"
printf '%-44s %12s\n' "CPU per journey, --then (µs)" "$(median "${JOURNEY[@]}")"
printf '%-44s %12s\n' "journey / login (target: at most 2)" "$(median "${RATIO[@]}")"
printf '%-44s %12s\n' "peak RSS, 20,000 logins (KiB)" "$SMALL"
printf '%-44s %12s\n' "peak RSS, 240,000 logins: ledger full (KiB)" "$FULL"
