#!/usr/bin/env bash
# Re-measures the load targets (README, "Figures") on this machine: starts a
# headless server on 127.0.0.1 with a free port for each group, runs every
# measurement RUNS times (default 3), and prints medians in a table with
# the exact commands. Takes about 4-6 minutes with RUNS=3.
#
#   bash scripts/bench.sh             # build, then measure
#   RUNS=5 bash scripts/bench.sh
#   BENCH_10K=1 bash scripts/bench.sh # also 10,000 clients (RUNS10K runs, default 1;
#                                     # on Linux raise vm.max_map_count first, see README)
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
    "$SERVER" --headless --bind 127.0.0.1 --port 0 --max-per-address 0 --message-rate 0 > "$WORK/server.log" 2>&1 &
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

# Holds N clients for 3 s; records server RSS (kB) before the clients
# connected and while all of them were held: the last sample taken at the
# run's highest thread count, so neither the joins still arriving nor the
# departures at the end are counted.
hold_rss() {
    local n=$1 base
    start_server
    base=$(server_rss_kb)
    "$LOAD" -s "$ADDR" -q -n "$n" --hold 3 --patience 120 > "$WORK/out" &
    local lp=$! held=0 most=0 threads
    while kill -0 "$lp" 2>/dev/null; do
        threads=$(awk '/^Threads/ {print $2}' "/proc/$SP/status")
        if [ "$threads" -ge "$most" ]; then most=$threads; held=$(server_rss_kb); fi
        sleep 0.5
    done
    wait "$lp" || echo "bench: hold of $n failed" >&2
    tail -n 1 "$WORK/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); r["rss_kb"] = int(sys.argv[1]); r["base_kb"] = int(sys.argv[2])
print(json.dumps(r))' "$held" "$base" >> "$WORK/$NAME"
    stop_server
}

# Server CPU per message with the joins taken out: the same clients send
# few, then many messages; the extra CPU over the extra messages is the
# relay's alone (us). Each run gets a fresh server.
marginal() {
    local n=$1 few=$2 many=$3 runs=$4
    for _ in $(seq "$runs"); do
        start_server; NAME="few$n"; measure -n "$n" -m "$few" -w 32 --patience 120; stop_server
        start_server; NAME="many$n"; measure -n "$n" -m "$many" -w 32 --patience 120; stop_server
    done
}
marginal_us() {
    python3 - "$WORK/few$1" "$WORK/many$1" <<'EOF2'
import json, statistics, sys
few, many = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
cpu = statistics.median(r["server_cpu_s"] for r in many) - statistics.median(r["server_cpu_s"] for r in few)
msgs = statistics.median(r["delivered"] for r in many) - statistics.median(r["delivered"] for r in few)
print(f"{cpu * 1e6 / msgs:.3g}" if msgs > 0 else "n/a")
EOF2
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
# 10,000 clients take minutes to join: RUNS10K runs (default 1) of those.
runs_for() { if [ "$1" = 10000 ]; then echo "${RUNS10K:-1}"; else echo "$RUNS"; fi; }
for n in $SIZES; do NAME="hold$n"; for _ in $(seq "$(runs_for "$n")"); do hold_rss "$n"; done; done
# About 200,000 extra messages at each size.
marginal 10 100 20100 "$RUNS"
marginal 100 100 2100 "$RUNS"
marginal 1000 10 210 "$RUNS"
[ "${BENCH_10K:-0}" = 1 ] && marginal 10000 2 22 "$(runs_for 10000)"

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
    row "server CPU per relayed message, $n clients, joins taken out (us)" "$(marginal_us "$n")" "$(allclean "many$n")" "hubchat-load -n $n -m M (two message counts)"
done
for n in $SIZES; do
    NAME="hold$n"
    row "server RSS, $n clients held (MB)" "$(median "$NAME" 'r["rss_kb"] / 1024')" "$(allclean "$NAME")" "hubchat-load -n $n --hold 3"
    row "  per client (kB, above the empty server)" "$(median "$NAME" '(r["rss_kb"] - r["base_kb"]) / r["clients"]')" "" ""
done
