#!/usr/bin/env bash
# Takes the README's screenshot of the client refusing a server whose key
# changed: a client joins a headless server (and pins its key), that server
# stops, another one with another key answers on the same port, and the
# client's next try to reconnect (by itself) raises the warning.
#
#   scripts/screenshot-key-changed.sh [OUT_DIR]     (default: docs/screenshots)
#
# Needs the release binaries and the GUI test tools, as
# scripts/screenshot-client.sh does. Talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/screenshots}")
bin=${CARGO_TARGET_DIR:-target}/release
port=${PORT:-6203}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export HUBCHAT_DISCOVERY_TARGETS=127.255.255.255

n=$(for i in $(seq 150 300); do [ -e /tmp/.X11-unix/X$i ] || { echo $i; break; }; done)
export DISPLAY=:$n
Xvfb "$DISPLAY" -screen 0 900x700x24 -nolisten tcp 2>/dev/null & pids+=($!)
for _ in $(seq 50); do [ -e /tmp/.X11-unix/X$n ] && break; sleep 0.1; done
openbox --sm-disable 2>/dev/null & pids+=($!)
sleep 0.5

serve() { # settings folder
  mkdir -p "$work/$1"
  HUBCHAT_CONFIG_DIR="$work/$1" "$bin/hubchat-server" --headless --bind 127.0.0.1 \
    --port "$port" > "$work/$1.log" & server=$!
  pids+=($server)
  for _ in $(seq 100); do grep -q "listening on" "$work/$1.log" 2>/dev/null && return; sleep 0.1; done
  echo "the server did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}
# Clicks the client's Connect button until the command given holds; a
# busy machine may lose the first click.
press_connect() { # what to wait for (a command)
  for _ in 1 2 3 4 5; do
    xdotool windowactivate --sync "$win" 2>/dev/null || true
    xdotool mousemove --window "$win" 395 183 click 1   # Connect
    for _ in $(seq 50); do "$@" && return; sleep 0.1; done
  done
  echo "gave up waiting for: $*" >&2; exit 1
}

serve first
mkdir -p "$work/erin"
printf '{"host":"127.0.0.1","port":%s,"name":"erin","color":"#2e7d32","image_name":"image_7.png"}' \
  "$port" > "$work/erin/client.json"
HUBCHAT_CONFIG_DIR="$work/erin" "$bin/hubchat-client" & pids+=($!)
win=""
for _ in $(seq 200); do
  win=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null | head -n1) || true
  [ -n "$win" ] && break
  sleep 0.1
done
[ -n "$win" ] || { echo "no client window" >&2; exit 1; }
sleep 0.5
xdotool windowmove --sync "$win" 10 34
press_connect grep -q "joined" "$work/first.log"
sleep 0.5

kill "$server"
sleep 0.5
serve other
warned() {
  xdotool search --onlyvisible --name '^Warning: the server changed$' 2>/dev/null | head -n1 | grep -q .
}
# The client reconnects by itself within a second or two.
for _ in $(seq 100); do warned && break; sleep 0.1; done
warned || { echo "no warning" >&2; exit 1; }
warning=$(xdotool search --onlyvisible --name '^Warning: the server changed$' | head -n1)
xdotool windowmove --sync "$warning" 20 280
sleep 0.5
import -window root -crop 490x660+0+0 +repage "$out/client-key-changed.png"
echo "screenshot in $out/client-key-changed.png"
