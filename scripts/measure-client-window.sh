#!/usr/bin/env bash
# Measures the client window on this machine and prints the figures the
# README records: start-up to a mapped window, memory before connecting and
# with 100 other clients listed, and CPU while connected and idle for a
# minute. Needs Xvfb and xdotool (scripts/install-deps.sh --test). Talks
# only to 127.0.0.1.
#
#   scripts/measure-client-window.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
cargo build --release --locked --quiet --bin hubchat-server --bin hubchat-client --bin hubchat-load
port=${1:-5598}
server=target/release/hubchat-server
client=target/release/hubchat-client
load=target/release/hubchat-load
export HUBCHAT_CONFIG_DIR; HUBCHAT_CONFIG_DIR=$(mktemp -d)
printf '{"host": "127.0.0.1", "port": %d, "name": "measure", "color": "blue", "image_name": "image_5.png"}\n' \
  "$port" > "$HUBCHAT_CONFIG_DIR/client.json"

# shellcheck source=scripts/measure-lib.sh
. scripts/measure-lib.sh

echo "== start-up to a mapped window (5 runs)"
for _ in 1 2 3 4 5; do
  t0=$(now_ms)
  "$client" >/dev/null 2>&1 &
  pid=$!
  wait_window '^HubChat$'
  echo $(( $(now_ms) - t0 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done | median | sed 's/^/median ms: /'

"$server" --headless --bind 127.0.0.1 --port "$port" --max-per-address 0 > "$HUBCHAT_CONFIG_DIR/server.log" 2>&1 &
srv=$!
sleep 0.5
"$load" --server "127.0.0.1:$port" --clients 100 --hold 100 --quiet >/dev/null &
holder=$!
sleep 2

"$client" >/dev/null 2>&1 &
pid=$!
wait_window '^HubChat$'
sleep 1
echo "== memory (VmRSS)"
echo "not connected: $(rss_kb "$pid") kB"
# The Connect button, in the window's own coordinates (no window manager).
window=$(xdotool search --onlyvisible --name '^HubChat$' | head -n 1)
xdotool mousemove --window "$window" 393 161 click 1
for _ in $(seq 100); do grep -q 'measure (client100) joined' "$HUBCHAT_CONFIG_DIR/server.log" && break; sleep 0.05; done
grep -q 'measure (client100) joined' "$HUBCHAT_CONFIG_DIR/server.log" || { echo "the client did not join" >&2; exit 1; }
sleep 2
echo "connected, 100 other clients listed: $(rss_kb "$pid") kB"

echo "== CPU while connected and idle for 60 s"
before=$(cpu_ticks "$pid"); sleep 60; after=$(cpu_ticks "$pid")
echo "CPU: $(( (after - before) * 10 )) ms in 60 s"
