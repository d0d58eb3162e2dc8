#!/usr/bin/env bash
# Re-measures the load targets (README, "Figures") on this machine: starts a
# headless server on 127.0.0.1 with a free port for each group, runs every
# measurement RUNS times (default 3), and prints medians in a table with
# the exact commands. Takes about 4-6 minutes with RUNS=3.
#
#   bash scripts/bench.sh             # build, then measure
#   RUNS=5 bash scripts/bench.sh
#   BENCH_10K=1 bash scripts/bench.sh # also try holding 10,000 clients
#
# Only loopback is used. Linux only (reads /proc for CPU and memory).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin hubchat-server --bin hubchat-load
SERVER="$TARGET/release/hubchat-server"
LOAD="$TARGET/release/hubchat-load"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
SP=""
cleanup() { [ -n "$SP" ] && kill "$SP" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

start_server() {
    "$SERVER" --headless --bind 127.0.0.1 --port 0 > "$WORK/server.log" 2>&1 &
    SP=$!
    for _ in $(seq 100); do
        ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/server.log")
        [ -n "$ADDR" ] && return
        sleep 0.05
    done
    echo "bench: the server did not start" >&2; exit 1
}
stop_server() { kill "$SP"; wait "$SP" 2>/dev/null || true; SP=""; }
# CPU seconds the server has used (user + system).
server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$SP/stat"; }
server_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SP/status"; }

# Runs the load tool once with "$@"; appends its JSON line, plus the
# server's CPU seconds during the run, to $WORK/$NAME.
measure() {
    local before after
    before=$(server_cpu)
    "$LOAD" -s "$ADDR" -q "$@" > "$WORK/out" || echo "bench: run failed: hubchat-load $*" >&2
    after=$(server_cpu)
    tail -n 1 "$WORK/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); r["server_cpu_s"] = float(sys.argv[1])
print(json.dumps(r))' "$(echo "$after - $before" | bc)" >> "$WORK/$NAME"
}

# Holds N clients for 3 s; records server RSS (kB) near the end of the hold
# and before the clients connected.
hold_rss() {
    local n=$1 base
    start_server
    base=$(server_rss_kb)
    "$LOAD" -s "$ADDR" -q -n "$n" --hold 3 --patience 60 > "$WORK/out" &
    local lp=$! last=0
    while kill -0 "$lp" 2>/dev/null; do last=$(server_rss_kb); sleep 0.5; done
    wait "$lp" || echo "bench: hold of $n failed" >&2
    tail -n 1 "$WORK/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); r["rss_kb"] = int(sys.argv[1]); r["base_kb"] = int(sys.argv[2])
print(json.dumps(r))' "$last" "$base" >> "$WORK/$NAME"
    stop_server
}

# median FILE EXPRESSION: the median of a Python expression over the runs
# (r is one run's JSON).
median() {
    python3 - "$WORK/$1" "$2" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
vals = []
for r in runs:
    try:
        v = eval(sys.argv[2], {}, {"r": r})
    except Exception:
        v = None
    if v is not None:
        vals.append(v)
print(f"{statistics.median(vals):.4g}" if vals else "n/a")
EOF
}
allclean() { python3 -c '
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("yes" if all(r["clean"] for r in runs) else "NO")' "$WORK/$1"; }

row() { printf '| %s | %s | %s | `%s` |\n' "$1" "$2" "$3" "$4"; }

echo "bench: $RUNS runs each; server $SERVER, tool $LOAD" >&2
start_server
for spec in "10 1000" "100 200" "1000 20"; do
    set -- $spec
    NAME="tp$1"
    for _ in $(seq "$RUNS"); do measure -n "$1" -m "$2" -w 32; done
done
NAME=rate; for _ in $(seq "$RUNS"); do measure -n 100 -m 100 -r 10; done
NAME=pingpong; for _ in $(seq "$RUNS"); do measure -n 2 -m 5000 -w 1; done
NAME=join; for _ in $(seq "$RUNS"); do measure -n 1000 --hold 0; done
NAME=stormd; for _ in $(seq "$RUNS"); do measure -n 2000 -m 20 --storm disconnect 1000; done
NAME=stormk; for _ in $(seq "$RUNS"); do measure -n 2000 -m 20 --storm kill 1000; done
stop_server
SIZES="10 100 1000"
[ "${BENCH_10K:-0}" = 1 ] && SIZES="$SIZES 10000"
for n in $SIZES; do NAME="hold$n"; for _ in $(seq "$RUNS"); do hold_rss "$n"; done; done

us_per_msg='r["server_cpu_s"] * 1e6 / r["delivered"]'
tool_per_msg='r["tool_cpu_s"] * 1e6 / r["delivered"]'
echo
echo "Medians of $RUNS runs. Server headless on 127.0.0.1; tool and server on this machine."
echo
echo "| what | median | zero loss, all clean | command |"
echo "|---|---|---|---|"
for spec in "10 1000" "100 200" "1000 20"; do
    set -- $spec
    NAME="tp$1"
    row "relay, $1 x $2, window 32: msg/s" "$(median "$NAME" 'r["msg_per_s"]')" "$(allclean "$NAME")" "hubchat-load -n $1 -m $2 -w 32"
    row "  server CPU per message (us)" "$(median "$NAME" "$us_per_msg")" "" ""
    row "  tool CPU per message (us)" "$(median "$NAME" "$tool_per_msg")" "" ""
done
row "latency, 100 clients x 10 msg/s x 10 s: p50 / p99 (us)" "$(median rate 'r["latency_us"]["p50"]') / $(median rate 'r["latency_us"]["p99"]')" "$(allclean rate)" "hubchat-load -n 100 -m 100 -r 10"
row "ping-pong, window 1: p50 / p99 (us)" "$(median pingpong 'r["latency_us"]["p50"]') / $(median pingpong 'r["latency_us"]["p99"]')" "$(allclean pingpong)" "hubchat-load -n 2 -m 5000 -w 1"
row "1,000 clients connected and in every roster (ms)" "$(median join 'r["join_ms"]')" "$(allclean join)" "hubchat-load -n 1000 --hold 0"
for k in d k; do
    NAME="storm$k"; kind=$([ $k = d ] && echo disconnect || echo kill)
    row "storm, 1,000 of 2,000 $kind: all told (ms)" "$(median "$NAME" 'r["storm"]["told_ms"]')" "$(allclean "$NAME")" "hubchat-load -n 2000 -m 20 --storm $kind 1000"
    row "  fresh client joined, from the storm (ms)" "$(median "$NAME" 'r["storm"]["fresh_join_ms"]')" "" ""
    row "  told twice / lost after" "$(median "$NAME" 'r["told_twice"]') / $(median "$NAME" 'r["lost"]')" "" ""
done
for n in $SIZES; do
    NAME="hold$n"
    row "server RSS, $n clients held (MB)" "$(median "$NAME" 'r["rss_kb"] / 1024')" "$(allclean "$NAME")" "hubchat-load -n $n --hold 3"
    row "  per client (kB, above the empty server)" "$(median "$NAME" '(r["rss_kb"] - r["base_kb"]) / r["clients"]')" "" ""
done
