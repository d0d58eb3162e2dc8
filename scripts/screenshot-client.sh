#!/usr/bin/env bash
# Takes the README's client screenshots on a display of its own (Xvfb with
# openbox): a headless server, three clients that connect and chat, then
# the server stopped, to show the banner counting down to the next try to
# reconnect; last, two servers found by a new client's search, its Server
# list open.
#
#   scripts/screenshot-client.sh [OUT_DIR]     (default: docs/screenshots)
#
# Needs the release binaries (cargo build --release) and the GUI test tools
# (scripts/install-deps.sh --test). Talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
bin=${CARGO_TARGET_DIR:-target}/release
port=${PORT:-6201}
work=$(mktemp -d)
pids=()
clients=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Every client's search for servers stays on loopback.
export HUBCHAT_DISCOVERY_TARGETS=127.255.255.255

n=$(for i in $(seq 150 300); do [ -e /tmp/.X11-unix/X$i ] || { echo $i; break; }; done)
export DISPLAY=:$n
Xvfb "$DISPLAY" -screen 0 1800x760x24 -nolisten tcp 2>/dev/null & pids+=($!)
for _ in $(seq 200); do [ -e /tmp/.X11-unix/X$n ] && break; sleep 0.1; done
openbox --sm-disable 2>/dev/null & pids+=($!)
sleep 0.5

# Each server keeps its key in a settings folder of its own.
mkdir -p "$work/server"
HUBCHAT_CONFIG_DIR="$work/server" "$bin/hubchat-server" --headless --bind 127.0.0.1 --port "$port" > "$work/server.log" & server=$!
pids+=($server)
sleep 0.3

# The visible window titled exactly $1, waiting for it to appear.
find_window() {
  local w=""
  for _ in $(seq 200); do
    w=$(xdotool search --onlyvisible --name "^$1\$" 2>/dev/null | head -n1) || true
    [ -n "$w" ] && break
    sleep 0.1
  done
  [ -n "$w" ] || { echo "no window \"$1\"; the server logged:" >&2; cat "$work/server.log" >&2; exit 1; }
  echo "$w"
}
# Starts a client, connects it with Enter in its form; its window is left
# in $win (no command substitution: the client must stay in this shell).
client() { # name colour image x y
  mkdir -p "$work/$1"
  printf '{"host":"127.0.0.1","port":%s,"name":"%s","color":"%s","image_name":"%s"}' \
    "$port" "$1" "$2" "$3" > "$work/$1/client.json"
  local before w=""
  before=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null || true)
  HUBCHAT_CONFIG_DIR="$work/$1" "$bin/hubchat-client" & pids+=($!); clients+=($!)
  for _ in $(seq 200); do
    w=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null | grep -vxF "${before:-none}" | head -n1) || true
    [ -n "$w" ] && break
    sleep 0.1
  done
  sleep 0.5   # let openbox place it first
  xdotool windowmove --sync "$w" "$4" "$5" windowactivate --sync "$w"
  xdotool mousemove --window "$w" 200 40 click 1
  sleep 0.2
  xdotool key Return
  sleep 0.4
  win=$w
}
client bob darkcyan image_13.png 1040 0
client "Zoë 陈" "#2e7d32" image_20.png 1300 40
client alice blue image_1.png 0 24
alice=$win
sleep 0.5
xdotool mousemove --window "$alice" 200 521 click 1   # bob's row (after the Everyone row)
sleep 0.6
chat=$(find_window "bob - HubChat")
xdotool windowmove --sync "$chat" 475 84
sleep 0.3
say() { xdotool type --delay 10 "$1"; xdotool key Return; sleep 0.2; }
say "Hi Bob! Lunch at 12:00 at the café? 🍕"
bobchat=$(find_window "alice - HubChat")
xdotool windowactivate --sync "$bobchat"
xdotool mousemove --window "$bobchat" 200 420 click 1
say "Great, Zoe is coming too"
xdotool windowmove --sync "$bobchat" 1040 300
xdotool windowactivate --sync "$chat"
xdotool mousemove --window "$chat" 200 420 click 1
say "Perfect. See you there 🙂"
sleep 0.5
# alice's two windows, as she sees them (the others are off to the right).
shot() { # file
  import -window root -crop 1000x730+0+0 +repage "$1"
}
shot "$out/client-windows.png"

kill "$server"
# Tries after 1 and 3 s fail; the banner then counts down from 4 s.
sleep 3.6
shot "$out/client-reconnecting.png"
# They would reconnect to the servers below by themselves.
kill "${clients[@]}"
sleep 0.3

# Two servers that answer searches, one port, two addresses; a new client
# with nothing remembered but the port finds both.
mkdir -p "$work/office" "$work/lab"
HUBCHAT_CONFIG_DIR="$work/office" "$bin/hubchat-server" --headless --bind 127.0.0.1 --port "$port" --name Office \
  > "$work/office.log" & pids+=($!)
HUBCHAT_CONFIG_DIR="$work/lab" "$bin/hubchat-server" --headless --bind 127.0.0.2 --port "$port" --name "Lab (2nd floor)" \
  > "$work/lab.log" & pids+=($!)
sleep 0.3
mkdir -p "$work/new"
printf '{"port":%s}' "$port" > "$work/new/client.json"
before=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null || true)
HUBCHAT_CONFIG_DIR="$work/new" "$bin/hubchat-client" & pids+=($!)
for _ in $(seq 200); do
  w=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null | grep -vxF "${before:-none}" | head -n1) || true
  [ -n "$w" ] && break
  sleep 0.1
done
sleep 0.5
xdotool windowmove --sync "$w" 1300 0 windowactivate --sync "$w"
sleep 2.5   # the search lasts 2 s
xdotool mousemove --window "$w" 288 27 click 1   # the Server list's button
sleep 0.5
import -window root -crop 480x300+1295+0 +repage "$out/client-find-server.png"

echo "screenshots in $out"
