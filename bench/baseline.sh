#!/usr/bin/env bash
# How often `report --baseline` is wrong, both ways (docs/comparison.md states the
# figures this measured). Pairs of 10 s runs at 200 rps against the mock on loopback:
#   same     baseline and run at 20 ms: any measure "worse" is a false alarm
#   slower   the run at 23 ms (+15 %): latency p50 and p99 must be "worse"
#   tiny     the run at 20.2 ms (+1 %, under the 5 % tolerance): nothing may be "worse"
#   outage   the run at 20 ms with every answer a 500 from second 4 to 6: the error
#            rate must be "worse"
# Usage: bench/baseline.sh [PAIRS] [SCENARIO…]   (PAIRS defaults to 20; JOBS pairs run
# side by side, default 2; BIN a built binary, else a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
release_bin
PAIRS=${1:-20}
shift || true
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(same slower tiny outage)
JOBS=${JOBS:-2}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export NEHR_PROBE_PASSWORD='Moh@-90008' # the spec's example account, which the mock accepts

run() { # PORT OUT
    "$BIN" load -q --url "http://127.0.0.1:$1/nehrapi/login/getToken" --username MOH-90008 \
        --rps 200 -d 10s --out "$2" >/dev/null || true
}

mock() { # PORT LATENCY: a mock in the background, its pid added to MOCKS
    "$BIN" mock --listen "127.0.0.1:$1" --latency "$2" 2>/dev/null &
    MOCKS+=($!)
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$1/_mock/stats" && return
        sleep 0.1
    done
}

pair() { # SCENARIO N: one pair, its comparison in $WORK/SCENARIO-N.json
    local s=$1 n=$2 p q
    MOCKS=()
    p=$(free_port)
    mock "$p" 20ms
    run "$p" "$WORK/$s-$n-base.json"
    case $s in
        same) run "$p" "$WORK/$s-$n-run.json" ;;
        slower | tiny)
            q=$(free_port)
            mock "$q" "$([ "$s" = slower ] && echo 23ms || echo 20200us)"
            run "$q" "$WORK/$s-$n-run.json"
            ;;
        outage)
            (sleep 4 && curl -s -o /dev/null -d '{"error_rate": 1.0}' "http://127.0.0.1:$p/_mock/config" &&
                sleep 2 && curl -s -o /dev/null -d '{"error_rate": 0.0}' "http://127.0.0.1:$p/_mock/config") &
            run "$p" "$WORK/$s-$n-run.json"
            ;;
    esac
    "$BIN" report --baseline "$WORK/$s-$n-base.json" "$WORK/$s-$n-run.json" \
        --compare-out "$WORK/$s-$n.json" >/dev/null 2>&1 || true
    kill "${MOCKS[@]}" 2>/dev/null || true
}

for s in "${SCENARIOS[@]}"; do
    for first in $(seq 1 "$JOBS" "$PAIRS"); do
        pids=()
        for n in $(seq "$first" $((first + JOBS - 1))); do
            [ "$n" -le "$PAIRS" ] || break
            pair "$s" "$n" &
            pids+=($!)
        done
        wait "${pids[@]}"
    done
    python3 - "$s" "$WORK" "$PAIRS" <<'PY'
import glob, json, sys
s, work, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
comparisons = [json.load(open(f)) for f in sorted(glob.glob(f"{work}/{s}-*[0-9].json"))]
def worse(c, name):
    return any(m["measure"] == name and m["verdict"] == "worse" for m in c["measures"])
any_worse = sum(1 for c in comparisons if c["worse"])
line = f"{s:7} {len(comparisons)} pairs: {any_worse} with a measure worse"
if s in ("slower",):
    line += f"; p50 worse in {sum(worse(c, 'latency p50') for c in comparisons)}, p99 worse in {sum(worse(c, 'latency p99') for c in comparisons)}"
if s == "outage":
    line += f"; error rate worse in {sum(worse(c, 'error rate') for c in comparisons)}"
names = sorted({w for c in comparisons for w in c["worse"]})
if names:
    line += f" (measures: {', '.join(names)})"
print(line, flush=True)
PY
done
