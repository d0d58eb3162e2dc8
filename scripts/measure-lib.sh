# Shared by the measure-*-window.sh scripts (sourced, not run): starts an
# Xvfb display of its own, and the helpers both scripts time things with.
# Processes the script stores in $pid, $srv or $holder are stopped at exit,
# and $HUBCHAT_CONFIG_DIR (a temporary folder) is removed.

# A display of our own: the first free number whose Xvfb stays up (a
# display just given up by another Xvfb can look free while it exits).
n=90
while :; do
  while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
  Xvfb ":$n" -screen 0 1280x800x24 >/dev/null 2>&1 &
  xvfb=$!
  for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.05; done
  sleep 0.2
  kill -0 "$xvfb" 2>/dev/null && break
  n=$((n + 1))
done
export DISPLAY=:$n
pid="" srv="" holder=""
cleanup() {
  for p in $pid $holder $srv; do kill "$p" 2>/dev/null || true; done
  # Wait for Xvfb to go, so the next run cannot meet it on its way out.
  kill "$xvfb" 2>/dev/null; wait "$xvfb" 2>/dev/null || true
  rm -rf "$HUBCHAT_CONFIG_DIR"
}
trap cleanup EXIT

# Waits (up to 10 s) for a visible window whose title matches $1.
wait_window() {
  local deadline=$(( $(date +%s) + 10 ))
  until xdotool search --onlyvisible --name "$1" >/dev/null 2>&1; do
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "no window '$1' appeared" >&2; exit 1; fi
  done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
