#!/usr/bin/env bash
# Re-measures the load figures (README, "Figures") on this machine. First
# HubChat side by side with ngIRCd, the IRC server a LAN may already run:
# each of RUNS rounds (default 3) starts a headless hubchat-server and then
# an ngIRCd on 127.0.0.1 (free ports, ngIRCd with a config written here,
# flood penalties off) and runs the same scenarios against each with the
# same load tool (--proto irc for ngIRCd), alternately, so both see the
# same machine; it prints the medians and their ratio. In the same rounds
# HubChat is measured encrypted too (hubchat-load --tls: every client joins
# over TLS 1.3 with a certificate of its own), and a second table sets
# plain and encrypted side by side: the relay of 100 clients x 200
# messages and 1,000 joins, with the ratio TLS / plain. Then HubChat-only
# rows (storms, ping-pong, scaling, memory per client). Takes about 15
# minutes with RUNS=3.
#
# Each hubchat-server started here keeps its certificate and database in a
# fresh folder under the bench's temporary folder (HUBCHAT_CONFIG_DIR), so
# the owner's own names and bans are never touched and every run starts
# from an empty database on the same disk. Where /dev/shm exists the
# 1,000 TLS joins are also run with the database there (tmpfs: its fsync
# costs nothing), which shows what the database's fsync per join costs.
#
#   bash scripts/bench.sh             # build, then measure
#   RUNS=5 bash scripts/bench.sh
#   SIDE_BY_SIDE_ONLY=1 bash scripts/bench.sh   # only the table with ngIRCd
#   BENCH_10K=1 bash scripts/bench.sh # also 10,000 clients (RUNS10K runs, default 1;
#                                     # on Linux raise vm.max_map_count first, see README)
#   BENCH_BUILD_FLAGS=--no-default-features bash scripts/bench.sh
#                                     # build without the windows (no FLTK)
#
# ngIRCd comes from `scripts/install-deps.sh --bench` (Debian's ngircd);
# without it the ngIRCd column says n/a. Only loopback is used. Linux only
# (reads /proc for CPU and memory).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
# shellcheck disable=SC2086
cargo build --release --quiet ${BENCH_BUILD_FLAGS:-} --bin hubchat-server --bin hubchat-load
SERVER="$TARGET/release/hubchat-server"
LOAD="$TARGET/release/hubchat-load"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
# ngIRCd drops to user nobody when started as root: it must read its config.
chmod 755 "$WORK"
NGIRCD=$(command -v ngircd || ls /usr/sbin/ngircd 2>/dev/null || true)
SP=""
cleanup() {
    [ -n "$SP" ] && kill "$SP" 2>/dev/null; wait 2>/dev/null
    [ "${CONFIG_ROOT:-$WORK}" != "$WORK" ] && rm -rf "$CONFIG_ROOT"
    rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh settings folder for each server started (see the top).
CONFIG_ROOT="$WORK"
start_server() {
    rm -rf "$CONFIG_ROOT/config"
    HUBCHAT_CONFIG_DIR="$CONFIG_ROOT/config" "$SERVER" --headless --bind 127.0.0.1 --port 0 --max-per-address 0 --message-rate 0 > "$WORK/server.log" 2>&1 &
    SP=$!
    for _ in $(seq 100); do
        ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/server.log")
        [ -n "$ADDR" ] && return
        sleep 0.05
    done
    echo "bench: the server did not start" >&2; exit 1
}
stop_server() { kill "$SP"; wait "$SP" 2>/dev/null || true; SP=""; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts ngIRCd in the foreground on a free 127.0.0.1 port with a config
# that measures the relay, not its flood protection (README, "Figures").
start_ngircd() {
    local port dir="$WORK/ngircd"
    port=$(free_port)
    mkdir -p "$dir/include"
    cat > "$dir/ngircd.conf" <<CONF
[Global]
Name = bench.hubchat.local
Info = HubChat bench peer
AdminInfo1 = HubChat bench
AdminInfo2 = loopback only
AdminEMail = bench@localhost
Listen = 127.0.0.1
Ports = $port
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
IncludeDir = $dir/include
CONF
    chmod -R a+rX "$dir"
    "$NGIRCD" -n -f "$dir/ngircd.conf" > "$WORK/server.log" 2>&1 &
    SP=$!
    for _ in $(seq 100); do
        if grep -q "Now listening on" "$WORK/server.log"; then ADDR="127.0.0.1:$port"; return; fi
        sleep 0.05
    done
    cat "$WORK/server.log" >&2
    echo "bench: ngIRCd did not start" >&2; exit 1
}

# The side being measured: hubchat or ngircd. PROTO holds its load tool flags.
start_side() {
    if [ "$1" = ngircd ]; then start_ngircd; PROTO=(--proto irc); else start_server; PROTO=(); fi
}
# CPU seconds the server has used (user + system).
server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$SP/stat"; }
server_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SP/status"; }

# Says which run failed and what the tool said was wrong.
failed_run() {
    echo "bench: run failed: $1" >&2
    grep -E "connected|first error|told twice|lost|duplicated|encryption" "$WORK/out" | sed 's/^/bench:   /' >&2 || true
}

# Runs the load tool once with "$@"; appends its JSON line, plus the
# server's CPU seconds during the run, to $WORK/$NAME.
measure() {
    local before after
    before=$(server_cpu)
    "$LOAD" -s "$ADDR" "${PROTO[@]}" -q "$@" > "$WORK/out" || failed_run "hubchat-load ${PROTO[*]} $*"
    after=$(server_cpu)
    tail -n 1 "$WORK/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); r["server_cpu_s"] = float(sys.argv[1])
print(json.dumps(r))' "$(echo "$after - $before" | bc)" >> "$WORK/$NAME"
}

server_peak_kb() { awk '/^VmHWM/ {print $2}' "/proc/$SP/status"; }
server_fds() { ls "/proc/$SP/fd" | wc -l; }

# Holds N clients for 3 s on a fresh server of side $2 (default hubchat);
# records server RSS (kB) before the clients connected and while all of
# them were held: the last sample taken at the run's highest count of open
# descriptors (one per client in both servers), so neither the joins still
# arriving nor the departures at the end are counted; and the peak RSS.
# C (default 64) clients connect at once.
hold_rss() {
    local n=$1 base
    start_side "${2:-hubchat}"
    base=$(server_rss_kb)
    "$LOAD" -s "$ADDR" "${PROTO[@]}" -q -n "$n" -c "${C:-64}" --hold 3 --patience 120 > "$WORK/out" &
    local lp=$! held=0 most=0 fds
    while kill -0 "$lp" 2>/dev/null; do
        fds=$(server_fds)
        if [ "$fds" -ge "$most" ]; then most=$fds; held=$(server_rss_kb); fi
        sleep 0.5
    done
    wait "$lp" || failed_run "hold of $n: hubchat-load ${PROTO[*]} -n $n --hold 3"
    tail -n 1 "$WORK/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); r["rss_kb"] = int(sys.argv[1]); r["base_kb"] = int(sys.argv[2])
r["peak_kb"] = int(sys.argv[3])
print(json.dumps(r))' "$held" "$base" "$(server_peak_kb)" >> "$WORK/$NAME"
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
    python3 - "$WORK/${2:-}few$1" "$WORK/${2:-}many$1" <<'EOF2'
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
m = statistics.median(vals) if vals else None
print("n/a" if m is None else f"{m:,.0f}" if abs(m) >= 1000 else f"{m:.3g}")
EOF
}
allclean() { [ -s "$WORK/$1" ] || { echo n/a; return; }; python3 -c '
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("yes" if all(r["clean"] for r in runs) else "NO")' "$WORK/$1"; }

row() { printf '| %s | %s | %s | `%s` |\n' "$1" "$2" "$3" "$4"; }

# One round of the side-by-side scenarios against side $1. Every run
# connects 8 clients at a time: ngIRCd listens with a backlog of 10, and
# more connecting at once make the kernel drop SYNs and the clients wait
# a second to retry, which would time the kernel, not the server.
side_round() {
    local side=$1
    start_side "$side"
    for spec in "10 1000" "100 200" "1000 20"; do
        set -- $spec
        NAME="$side-tp$1"; measure -c 8 -n "$1" -m "$2" -w 32 --patience 60
    done
    NAME="$side-rate"; measure -c 8 -n 100 -m 100 -r 10
    NAME="$side-join"; measure -c 8 -n 1000 --hold 0 --patience 60
    NAME="$side-few100"; measure -c 8 -n 100 -m 100 -w 32
    NAME="$side-many100"; measure -c 8 -n 100 -m 2100 -w 32
    if [ "$side" = hubchat ]; then tls_round; fi
    stop_server
    NAME="$side-hold1000"; C=8 hold_rss 1000 "$side"
}

# The encrypted runs, on the HubChat server of the round, each beside the
# plain run it is compared with (measured just before it).
tls_round() {
    NAME=plain-tp100; measure -c 8 -n 100 -m 200 -w 32 --patience 60
    NAME=tls-tp100; measure --tls -c 8 -n 100 -m 200 -w 32 --patience 60
    # The same relay for ten times as long, and the server's CPU per
    # relayed message with the joins taken out (as for ngIRCd above).
    NAME=plain-few100; measure -c 8 -n 100 -m 100 -w 32
    NAME=plain-many100; measure -c 8 -n 100 -m 2100 -w 32
    NAME=tls-few100; measure --tls -c 8 -n 100 -m 100 -w 32
    NAME=tls-many100; measure --tls -c 8 -n 100 -m 2100 -w 32
    NAME=plain-join; measure -c 8 -n 1000 --hold 0 --patience 60
    NAME=tls-join; measure --tls -c 8 -n 1000 --hold 0 --patience 60
    NAME=plain-join64; measure -n 1000 --hold 0 --patience 60
    NAME=tls-join64; measure --tls -n 1000 --hold 0 --patience 60
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        stop_server
        CONFIG_ROOT=$(mktemp -d /dev/shm/hubchat-bench.XXXXXX)
        start_server
        NAME=tls-join64-shm; measure --tls -n 1000 --hold 0 --patience 60
        stop_server
        rm -rf "$CONFIG_ROOT"; CONFIG_ROOT="$WORK"
        start_server
    fi
}

# ratio A B: A / B, or n/a.
ratio() { python3 -c '
import sys
try:
    a, b = (float(v.replace(",", "")) for v in sys.argv[1:3])
    print(f"{a / b:.2f}" if b else "n/a")
except ValueError:
    print("n/a")' "$1" "$2"; }
# sxs LABEL EXPRESSION HIGHER_IS_BETTER COMMAND NAME: one side-by-side row.
sxs() {
    local h n r ahead=""
    h=$(median "hubchat-$5" "$2"); n=$(median "ngircd-$5" "$2"); r=$(ratio "$h" "$n")
    if [ "$r" != n/a ]; then
        ahead=$(python3 -c '
import sys
r, up = float(sys.argv[1]), sys.argv[2] == "1"
print("even" if r == 1 else "HubChat" if (r > 1) == up else "ngIRCd")' "$r" "$3")
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$h" "$n" "$r" "$ahead" \
        "$(allclean "hubchat-$5") / $(allclean "ngircd-$5")" "${4:+\`$4\`}"
}

echo "bench: $RUNS rounds; server $SERVER, tool $LOAD, peer ${NGIRCD:-none}" >&2
for _ in $(seq "$RUNS"); do
    side_round hubchat
    if [ -n "$NGIRCD" ]; then side_round ngircd; fi
done
us_per_msg='r["server_cpu_s"] * 1e6 / r["delivered"]'
echo
if [ -n "$NGIRCD" ]; then
    echo "HubChat and $("$NGIRCD" --version 2>/dev/null | head -n 1 | cut -d' ' -f1,2 | cut -d- -f1) side by side, $(date -u '+%Y-%m-%d %H:%M UTC'): medians of $RUNS rounds, run alternately;"
else
    echo "HubChat alone (ngircd is not installed: scripts/install-deps.sh --bench), $(date -u '+%Y-%m-%d %H:%M UTC'): medians of $RUNS runs;"
fi
echo "servers on 127.0.0.1, load tool on this machine, 64-byte messages, 8 clients connecting at once;"
echo "ratio = HubChat / ngIRCd, the same hubchat-load command (with --proto irc for ngIRCd)."
echo
echo "| what | HubChat | ngIRCd | ratio | ahead | all clean (H / n) | command |"
echo "|---|---|---|---|---|---|---|"
for spec in "10 1000" "100 200" "1000 20"; do
    set -- $spec
    sxs "relay, $1 x $2, window 32 (msg/s)" 'r["msg_per_s"]' 1 "hubchat-load -c 8 -n $1 -m $2 -w 32" "tp$1"
done
sxs "100 clients x 10 msg/s: p50 (us)" 'r["latency_us"]["p50"]' 0 "hubchat-load -c 8 -n 100 -m 100 -r 10" rate
sxs "100 clients x 10 msg/s: p99 (us)" 'r["latency_us"]["p99"]' 0 "" rate
sxs "1,000 clients: every one in every roster (ms)" 'r["join_ms"]' 0 "hubchat-load -c 8 -n 1000 --hold 0" join
sxs "1,000 clients: the last one joined (ms)" 'r["connect_ms"]' 0 "" join
sxs "server RSS, 1,000 clients held (MB)" 'r["rss_kb"] / 1024' 0 "hubchat-load -c 8 -n 1000 --hold 3" hold1000
sxs "  server peak RSS in that run (MB)" 'r["peak_kb"] / 1024' 0 "" hold1000
sxs "server CPU per message, 100 x 200, joins included (us)" "$us_per_msg" 0 "hubchat-load -c 8 -n 100 -m 200 -w 32" tp100
h=$(marginal_us 100 hubchat-)
n=n/a; [ -n "$NGIRCD" ] && n=$(marginal_us 100 ngircd-)
r=$(ratio "$h" "$n"); ahead=""
[ "$r" != n/a ] && ahead=$(python3 -c 'import sys; r = float(sys.argv[1]); print("even" if r == 1 else "HubChat" if r < 1 else "ngIRCd")' "$r")
printf '| %s | %s | %s | %s | %s | %s | `%s` |\n' "server CPU per relayed message, 100 clients, joins taken out (us)" \
    "$h" "$n" "$r" "$ahead" "$(allclean hubchat-many100) / $(allclean ngircd-many100)" "hubchat-load -c 8 -n 100 -m 100, then -m 2100"

# pt LABEL EXPRESSION COMMAND NAME [GOAL]: one row of plain beside TLS.
pt() {
    local p t
    p=$(median "plain-$4" "$2"); t=$(median "tls-$4" "$2")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$p" "$t" "$(ratio "$t" "$p")" "${5:-}" \
        "$(allclean "plain-$4") / $(allclean "tls-$4")" "${3:+\`$3\`}"
}
echo
echo "HubChat plain and encrypted, the same rounds: medians of $RUNS runs, each TLS run right after its"
echo "plain twin on the same server; TLS = hubchat-load --tls (TLS 1.3 after STARTTLS, a certificate per"
echo "client made before the clock starts); ratio = TLS / plain."
echo
echo "| what | plain | TLS | ratio | goal | all clean (p / t) | command |"
echo "|---|---|---|---|---|---|---|"
pt "relay, 100 x 200, window 32 (msg/s)" 'r["msg_per_s"]' "hubchat-load [--tls] -c 8 -n 100 -m 200 -w 32" tp100 "TLS >= 0.60 of plain"
pt "  server CPU per message, joins included (us)" "$us_per_msg" "" tp100
pt "  tool CPU per message (us)" 'r["tool_cpu_s"] * 1e6 / r["delivered"]' "" tp100
pt "relay, 100 x 2100, window 32 (msg/s)" 'r["msg_per_s"]' "hubchat-load [--tls] -c 8 -n 100 -m 2100 -w 32" many100 "TLS >= 0.60 of plain"
p=$(marginal_us 100 plain-); t=$(marginal_us 100 tls-)
printf '| %s | %s | %s | %s | | %s | %s |\n' "server CPU per relayed message, 100 clients, joins taken out (us)" "$p" "$t" \
    "$(ratio "$t" "$p")" "$(allclean plain-many100) / $(allclean tls-many100)" "\`hubchat-load [--tls] -c 8 -n 100 -m 100, then -m 2100\`"
pt "1,000 joins, 8 at once: the last one joined (ms)" 'r["connect_ms"]' "hubchat-load [--tls] -c 8 -n 1000 --hold 0" join "TLS <= 2,000 ms"
pt "  every one in every roster (ms)" 'r["join_ms"]' "" join
pt "1,000 joins, 64 at once: the last one joined (ms)" 'r["connect_ms"]' "hubchat-load [--tls] -n 1000 --hold 0" join64 "TLS <= 2,000 ms"
pt "  every one in every roster (ms)" 'r["join_ms"]' "" join64
pt "  server CPU per join (ms)" 'r["server_cpu_s"] * 1000 / r["connected"]' "" join64
pt "  tool CPU per join (ms)" 'r["tool_cpu_s"] * 1000 / r["connected"]' "" join64
printf '| %s | | %s | | | %s | |\n' "  1,000 client certificates made before the clock (ms)" \
    "$(median tls-join64 'r["identities_ms"]')" "$(allclean tls-join64)"
if [ -s "$WORK/tls-join64-shm" ]; then
    printf '| %s | | %s | | | %s | %s |\n' "1,000 TLS joins, 64 at once, database on tmpfs: the last one joined (ms)" \
        "$(median tls-join64-shm 'r["connect_ms"]')" "$(allclean tls-join64-shm)" \
        "\`hubchat-load --tls -n 1000 --hold 0\`, HUBCHAT_CONFIG_DIR in /dev/shm"
fi
[ "${SIDE_BY_SIDE_ONLY:-0}" = 1 ] && exit 0

echo
echo "bench: HubChat-only rows" >&2
PROTO=()
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

tool_per_msg='r["tool_cpu_s"] * 1e6 / r["delivered"]'
echo
echo "HubChat alone: medians of $RUNS runs. Server headless on 127.0.0.1; tool and server on this machine."
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
