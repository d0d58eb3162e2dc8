#!/usr/bin/env bash
# Takes the README's screenshots of conversations that last, on a display of
# its own (Xvfb with openbox): the Everyone room, someone away (greyed, with
# a message kept for him), and the marks on sent messages; then a search of
# the history and the line it found.
#
#   scripts/screenshot-conversations.sh [OUT_DIR]   (default: docs/screenshots)
#
# Needs the release binaries (cargo build --release) and the GUI test tools
# (scripts/install-deps.sh --test). Talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
bin=target/release
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
Xvfb "$DISPLAY" -screen 0 1800x1000x24 -nolisten tcp 2>/dev/null & pids+=($!)
for _ in $(seq 200); do [ -e /tmp/.X11-unix/X$n ] && break; sleep 0.1; done
openbox --sm-disable 2>/dev/null & pids+=($!)
sleep 0.5

mkdir -p "$work/server"
HUBCHAT_CONFIG_DIR="$work/server" "$bin/hubchat-server" --headless --bind 127.0.0.1 --port "$port" > "$work/server.log" & server=$!
pids+=($server)
sleep 0.3

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
# Starts a client and connects it with Enter in its form; its window is
# left in $win and its process in $cpid.
client() { # name colour image x y
  mkdir -p "$work/$1"
  printf '{"host":"127.0.0.1","port":%s,"name":"%s","color":"%s","image_name":"%s"}' \
    "$port" "$1" "$2" "$3" > "$work/$1/client.json"
  local before w=""
  before=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null || true)
  HUBCHAT_CONFIG_DIR="$work/$1" "$bin/hubchat-client" & cpid=$!
  pids+=($cpid)
  for _ in $(seq 200); do
    w=$(xdotool search --onlyvisible --name '^HubChat$' 2>/dev/null | grep -vxF "${before:-none}" | head -n1) || true
    [ -n "$w" ] && break
    sleep 0.1
  done
  sleep 0.5
  xdotool windowmove --sync "$w" "$4" "$5" windowactivate --sync "$w"
  xdotool mousemove --window "$w" 200 40 click 1
  sleep 0.2
  xdotool key Return
  sleep 0.6
  win=$w
}
say() { xdotool type --delay 10 "$1"; xdotool key Return; sleep 0.3; }
# The centre of list row $1 in a client window (the list starts under the
# form and the status box; rows are 58 pixels high).
row() { echo $((463 + 58 * $1)); }

# bob has been here before, with his own key: his name is his. He leaves.
client bob darkcyan image_13.png 1300 0
bob=$win
bobpid=$cpid
kill "$bobpid"
sleep 0.5
client "Zoë" "#2e7d32" image_20.png 1300 260
zoe=$win
client alice blue image_1.png 0 24
alice=$win
sleep 0.5

# alice writes to bob, who is away: the server keeps it for him.
xdotool mousemove --window "$alice" 200 "$(row 3)" click 1
sleep 0.6
bobchat=$(find_window "bob - HubChat")
xdotool windowmove --sync "$bobchat" 475 0
say "Are you in tomorrow? The review moved to 10:00."

# The Everyone room.
xdotool mousemove --window "$alice" 200 "$(row 0)" click 1
sleep 0.6
room=$(find_window "Everyone - HubChat")
xdotool windowmove --sync "$room" 475 500
say "Cake in the kitchen 🎂"
sleep 0.6
zoeroom=$(find_window "Everyone - HubChat" | grep -vxF "$room" || true)
for w in $(xdotool search --onlyvisible --name "^Everyone - HubChat\$"); do
  [ "$w" != "$room" ] && zoeroom=$w
done
xdotool windowmove --sync "$zoeroom" 1300 500 windowactivate --sync "$zoeroom"
xdotool mousemove --window "$zoeroom" 200 420 click 1
say "On my way!"

# alice writes to Zoë, who reads it.
xdotool windowraise "$alice" windowactivate --sync "$alice"
sleep 0.4
xdotool mousemove --window "$alice" 200 "$(row 1)" click 1
sleep 0.6
xdotool search --onlyvisible --name "^Zo.* - HubChat\$" >/dev/null 2>&1 ||
  xdotool mousemove --window "$alice" 200 "$(row 1)" click 1
zoechat=$(find_window "Zo.* - HubChat")
xdotool windowmove --sync "$zoechat" 1000 250
say "Did you get the slides?"
sleep 0.6
alicechat=$(find_window "alice - HubChat")
xdotool windowmove --sync "$alicechat" 1300 0 windowactivate --sync "$alicechat"
xdotool mousemove --window "$alicechat" 200 420 click 1
say "Yes, thanks!"
sleep 0.5
xdotool windowactivate --sync "$zoechat"
xdotool mousemove --window "$zoechat" 200 420 click 1
xdotool type --delay 10 "Great"
sleep 0.3
import -window root -crop 1530x980+0+0 +repage "$out/client-conversations.png"

# Search: alice looks for the slides; the hit opens its conversation there.
xdotool windowraise "$alice" windowactivate --sync "$alice"
sleep 0.3
xdotool mousemove --window "$alice" 250 413 click 1
say "slides"
sleep 0.8
search=$(find_window "Search history - HubChat")
xdotool windowmove --sync "$search" 0 480
sleep 0.3
xdotool key Return   # the first (newest) result, selected
sleep 0.8
xdotool windowmove --sync "$zoechat" 610 480 windowraise "$search"
sleep 0.5
import -window root -crop 1140x520+0+470 +repage "$out/client-search.png"
echo "screenshots in $out"
