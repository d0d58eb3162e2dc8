#!/usr/bin/env bash
# Measures the server window on this machine and prints the figures the
# README records: start-up to a mapped window, memory idle and with 100
# clients, CPU while idle, and how quickly the window answers a click while
# the server relays 100,000 messages a second. Needs Xvfb and xdotool
# (scripts/install-deps.sh --test). Talks only to 127.0.0.1.
#
#   scripts/measure-server-window.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
cargo build --release --locked --quiet --bin hubchat-server --bin hubchat-load
port=${1:-5599}
server=target/release/hubchat-server
load=target/release/hubchat-load
export HUBCHAT_CONFIG_DIR; HUBCHAT_CONFIG_DIR=$(mktemp -d)

# shellcheck source=scripts/measure-lib.sh
. scripts/measure-lib.sh

echo "== start-up to a mapped window (5 runs)"
for _ in 1 2 3 4 5; do
  t0=$(now_ms)
  "$server" --bind 127.0.0.1 --port "$port" >/dev/null 2>&1 &
  pid=$!
  wait_window '^HubChat Server'
  echo $(( $(now_ms) - t0 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done | median | sed 's/^/median ms: /'

"$server" --start --bind 127.0.0.1 --port "$port" --max-per-address 0 --message-rate 0 >/dev/null 2>&1 &
pid=$!
wait_window 'running on'
sleep 1
echo "== memory (VmRSS)"
echo "idle, running, no clients: $(rss_kb "$pid") kB"
"$load" --server "127.0.0.1:$port" --clients 100 --hold 4 --quiet >/dev/null &
holder=$!
sleep 3
echo "100 clients connected: $(rss_kb "$pid") kB"
wait "$holder"
sleep 1

echo "== CPU while idle for 30 s"
before=$(cpu_ticks "$pid"); sleep 30; after=$(cpu_ticks "$pid")
echo "CPU: $(( (after - before) * 10 )) ms in 30 s"

# Clicks the Sound box (its callback writes the settings file) ten times
# (at 740,29: the form is packed to the left from 822 px wide, so the box
# stays there however wide the window is)
# and prints the median and worst time from click to written file. xdotool
# runs in the background because it lingers 100 ms after clicking.
click_latency() {
  local window settings before t0 x
  window=$(xdotool search --onlyvisible --name 'running on' | head -n 1)
  settings="$HUBCHAT_CONFIG_DIR/server.json"
  xdotool mousemove --window "$window" 740 29
  sleep 0.2
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    before=$(cat "$settings" 2>/dev/null || true)
    t0=$(now_ms)
    xdotool click 1 &
    x=$!
    while [ "$(cat "$settings" 2>/dev/null || true)" = "$before" ]; do :; done
    echo $(( $(now_ms) - t0 ))
    wait "$x"
    sleep 0.3
  done | sort -n | awk '{ a[NR] = $1 } END { printf "median %d ms, worst %d ms\n", a[int((NR + 1) / 2)], a[NR] }'
}

echo "== click to callback (includes starting xdotool)"
echo "idle: $(click_latency)"
"$load" --server "127.0.0.1:$port" --clients 10 --messages 100000 --rate 10000 --quiet > /tmp/hubchat-measure-load.txt &
flood=$!
sleep 2
gui_before=$(awk '{ print $14 + $15 }' "/proc/$pid/task/$pid/stat")
echo "relaying 100,000 msg/s (10 clients x 10,000 msg/s): $(click_latency)"
gui_after=$(awk '{ print $14 + $15 }' "/proc/$pid/task/$pid/stat")
wait "$flood" || true
echo "GUI thread CPU during those clicks: $(( (gui_after - gui_before) * 10 )) ms"
grep -E 'lost|duplicated|time ' /tmp/hubchat-measure-load.txt | sed 's/^ */load: /'
