#!/usr/bin/env bash
# Checks the Windows build, as CI does (scripts/test.sh calls it):
#   1. cross-builds the three .exe files (x86_64-pc-windows-gnu, mingw);
#   2. each imports only Windows' own DLLs (objdump -p against an allow-list);
#   3. the server and client are windowed programs (PE subsystem "Windows
#      GUI": no console window on double-click), the load tool a console one;
#   4. each carries HubChat's icon and version information;
#   5. under wine, in a throwaway prefix: --help and --version print, also
#      into a file; the client finds a Downloads folder the user moved;
#      the headless server relays a Linux hubchat-load run over 127.0.0.1
#      with zero loss; both windows map on an Xvfb display, and the
#      server window keeps its settings in %APPDATA%\HubChat.
#
#   scripts/windows-check.sh [--screenshots DIR]
#
# With --screenshots it also saves both windows as they look under wine
# (DIR/windows-server.png, DIR/windows-client.png; the README shows them).
# Installs what it needs (scripts/install-deps.sh --test --windows). Wine 8 lacks
# bcryptprimitives.dll's ProcessPrng, which Rust's standard library calls
# (Windows 10 and later have it): a ten-line stand-in is built here and put
# into the throwaway prefix only. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

shots=""
if [[ "${1:-}" == "--screenshots" ]]; then
  shots=$(realpath -m "${2:?--screenshots needs a folder}")
  mkdir -p "$shots"
fi

scripts/install-deps.sh --test --windows
export PATH="$HOME/.local/bin:$PATH"
target=x86_64-pc-windows-gnu
out="${CARGO_TARGET_DIR:-target}"
win="$out/$target/release"
load="$out/release/hubchat-load"
version=$(cargo metadata --no-deps --format-version 1 --locked |
  sed -n 's/.*"name":"hubchat","version":"\([^"]*\)".*/\1/p')

step() { printf '\nwindows-check: %s\n' "$*"; }
fail() {
  echo "windows-check: FAILED: $*" >&2
  exit 1
}

step "cross-building the .exe files (cold: about 8 minutes on 2 cores)"
cargo build --release --locked --target "$target" --bins
cargo build --release --locked --bin hubchat-load

# Windows' own DLLs (and its api-ms-win-* API sets): present on every
# Windows 10 or later. Anything else (libgcc_s, libstdc++, libwinpthread)
# would have to ship beside the .exe, which a single-file program must not.
allowed='^(advapi32|bcrypt|bcryptprimitives|combase|comctl32|comdlg32|gdi32|gdiplus|imm32|iphlpapi|kernel32|msimg32|msvcrt|ntdll|ole32|oleaut32|shell32|user32|userenv|uxtheme|winspool\.drv|ws2_32|api-ms-win-[a-z0-9-]+)(\.dll)?$'

step "imports, subsystem, icon and version information"
for name in hubchat-server hubchat-client hubchat-load; do
  exe="$win/$name.exe"
  [[ -f "$exe" ]] || fail "$exe was not built"
  dlls=$(objdump -p "$exe" | awk '/DLL Name:/ { print tolower($3) }' | sort -u)
  strays=$(grep -Ev "$allowed" <<<"$dlls" || true)
  [[ -z "$strays" ]] || fail "$name.exe imports DLLs that are not part of Windows: $strays"
  subsystem=$(objdump -p "$exe" | awk '/^Subsystem/ { $1 = $2 = ""; print substr($0, 3) }')
  want="(Windows GUI)"
  [[ "$name" == hubchat-load ]] && want="(Windows CUI)"
  [[ "$subsystem" == "$want" ]] || fail "$name.exe has subsystem $subsystem, not $want"
  resources=$(x86_64-w64-mingw32-windres -J coff -O rc -i "$exe")
  grep -q 'RT_GROUP_ICON' <<<"$resources" || fail "$name.exe carries no icon"
  grep -q "VALUE \"FileVersion\", \"$version\"" <<<"$resources" ||
    fail "$name.exe carries no version information for $version"
  printf '  %-15s %5d KiB  %s  imports: %s\n' "$name.exe" $(($(stat -c %s "$exe") / 1024)) \
    "$subsystem" "$(tr '\n' ' ' <<<"$dlls")"
done

work=$(mktemp -d)
export WINEPREFIX="$work/prefix" WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Ends the wine processes of this throwaway prefix only.
  wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# One display for every wine process of this prefix: wine's desktop
# process starts with the first program and keeps the display it found.
n=$(for i in $(seq 150 300); do [ -e /tmp/.X11-unix/X$i ] || [ -e /tmp/.X$i-lock ] || { echo $i; break; }; done)
export DISPLAY=:$n
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
openbox --sm-disable 2>/dev/null &
pids+=($!)
sleep 0.5

step "a throwaway wine prefix with the ProcessPrng stand-in"
cat >"$work/shim.c" <<'EOF'
/* Test-only stand-in for Windows 10's bcryptprimitives.dll, which wine 8
   lacks: Rust's std seeds its hash maps from ProcessPrng. RtlGenRandom
   (advapi32's SystemFunction036) gives the same random bytes. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG part = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, part)) return FALSE;
        data += part;
        length -= part;
    }
    return TRUE;
}
EOF
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$work/bcryptprimitives.dll" "$work/shim.c" -ladvapi32
wineboot -i >/dev/null 2>&1 || true
system32="$WINEPREFIX/drive_c/windows/system32"
[[ -d "$system32" ]] || fail "wineboot made no prefix in $WINEPREFIX"
cp "$work/bcryptprimitives.dll" "$system32/"
cp "$win"/*.exe "$WINEPREFIX/drive_c/"
server="$WINEPREFIX/drive_c/hubchat-server.exe"
client="$WINEPREFIX/drive_c/hubchat-client.exe"

step "--help and --version under wine"
wine "$server" --help >"$work/help.txt" 2>"$work/help.err" || fail "hubchat-server.exe --help failed: $(cat "$work/help.err")"
grep -q '^Usage: hubchat-server' "$work/help.txt" || fail "hubchat-server.exe --help > file wrote: $(head -c 300 "$work/help.txt")"
echo "  hubchat-server.exe --help > file: $(wc -l <"$work/help.txt") lines, starting \"$(head -n1 "$work/help.txt" | cut -c1-40)...\""
got=$(wine "$server" --version 2>&1 | tr -d '\r')
[[ "$got" == "hubchat-server $version" ]] || fail "hubchat-server.exe --version printed \"$got\""
echo "  hubchat-server.exe --version: $got"
wine "$client" --help 2>&1 | tr -d '\r' | grep -q '^Usage: hubchat-client' || fail "hubchat-client.exe --help printed no usage"
# Files are saved in the Downloads folder Windows names, also when the user
# moved it (Properties > Location writes this value; so does an office's
# folder redirection), not in %USERPROFILE%\Downloads regardless.
wine reg add 'HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer\User Shell Folders' \
  /v '{374DE290-123F-4565-9164-39C4925E467B}' /t REG_EXPAND_SZ /d 'D:\Moved Downloads' /f >/dev/null 2>&1 ||
  fail "wine reg could not move the Downloads folder"
got=$(wine "$client" --help 2>&1 | tr -d '\r' | grep '^Files you accept' || true)
[[ "$got" == 'Files you accept are saved in D:\Moved Downloads.' ]] ||
  fail "with Downloads moved to D:\Moved Downloads, hubchat-client.exe --help said \"$got\""
echo "  hubchat-client.exe --help, Downloads moved: $got"
# Through wine's cmd, as a user in a console would start it.
got=$(wine cmd /c 'C:\hubchat-server.exe --version' 2>&1 | tr -d '\r')
[[ "$got" == "hubchat-server $version" ]] || fail "cmd /c hubchat-server.exe --version printed \"$got\""
if wine "$server" --no-such-option >/dev/null 2>"$work/usage.err"; then
  fail "hubchat-server.exe accepted an unknown option"
fi
grep -q 'unknown option "--no-such-option"' "$work/usage.err" || fail "a usage error printed: $(cat "$work/usage.err")"
echo "  errors reach standard error: $(head -n1 "$work/usage.err" | tr -d '\r')"

# The address "listening on ADDRESS" in file $1, waiting up to 60 s.
listening_address() {
  for _ in $(seq 600); do
    address=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$1" | head -n1)
    [[ -n "$address" ]] && { echo "$address"; return; }
    sleep 0.1
  done
  fail "the server under wine did not start listening; it wrote: $(cat "$1")"
}

step "the headless server under wine relays hubchat-load from Linux"
# No per-sender rate limit: this measures the relay, not the flood brake.
wine "$server" --headless --bind 127.0.0.1 --port 0 --message-rate 0 >"$work/headless.log" 2>&1 &
headless=$!
pids+=("$headless")
address=$(listening_address "$work/headless.log")
"$load" --server "$address" --clients 10 --messages 1000 --quiet >"$work/load.txt" ||
  fail "hubchat-load reported a problem: $(cat "$work/load.txt")"
report=$(tail -n1 "$work/load.txt")
for want in '"lost":0' '"duplicated":0' '"failed":0' '"delivered":10000'; do
  grep -qF "$want" <<<"$report" || fail "relay under wine: $want expected in $report"
done
grep -E '^ +(delivered|lost|duplicated|time) ' "$work/load.txt"
kill "$headless" 2>/dev/null || true
wait "$headless" 2>/dev/null || true

step "both windows map under wine on Xvfb"

# The visible window titled as the extended regular expression $1, waiting
# up to 60 s (wine's first window in a fresh prefix is slow to come).
find_window() {
  local w=""
  for _ in $(seq 600); do
    w=$(xdotool search --onlyvisible --name "$1" 2>/dev/null | head -n1) || true
    [[ -n "$w" ]] && { echo "$w"; return; }
    sleep 0.1
  done
  fail "no window titled $1 appeared"
}
# Saves window $1 with its frame as $2, if screenshots were asked for.
shoot() {
  [[ -n "$shots" ]] || return 0
  sleep 1.5 # wine draws after mapping
  local frame
  frame=$(xdotool getwindowgeometry "$1" >/dev/null && xwininfo -id "$1" -children |
    sed -n 's/.*Parent window id: \(0x[0-9a-f]*\).*/\1/p')
  [[ -n "$frame" && "$frame" != "$(xwininfo -root | sed -n 's/.*Window id: \(0x[0-9a-f]*\).*/\1/p')" ]] || frame=$1
  import -window "$frame" "$2"
  echo "  saved $2"
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
wine "$server" --start --bind 127.0.0.1 --port "$port" >"$work/window.log" 2>&1 &
pids+=($!)
w=$(find_window '^HubChat Server - ')
# Started, the window remembers its address and port in %APPDATA%\HubChat.
settings="$WINEPREFIX/drive_c/users/$(id -un)/AppData/Roaming/HubChat/server.json"
for _ in $(seq 100); do [[ -f "$settings" ]] && break; sleep 0.1; done
[[ -f "$settings" ]] || fail "the server window kept no settings in %APPDATA%\\HubChat ($settings)"
grep -q "\"port\": $port\b" "$settings" || fail "$settings does not hold the port in use, $port: $(cat "$settings")"
address="127.0.0.1:$port"
echo "  server window: \"$(xdotool getwindowname "$w")\", settings in C:\\users\\$(id -un)\\AppData\\Roaming\\HubChat\\server.json"
# A few clients chatting while the window is looked at, so it shows a
# running server; they must lose nothing either.
"$load" --server "$address" --clients 4 --messages 12 --rate 2 --size 24 --quiet >"$work/window-load.txt" &
chatting=$!
sleep 3
shoot "$w" "${shots:-/nonexistent}/windows-server.png"
wait "$chatting" || fail "hubchat-load against the server window: $(cat "$work/window-load.txt")"

wine "$client" >"$work/client.log" 2>&1 &
pids+=($!)
w=$(find_window '^HubChat$')
echo "  client window: $(xdotool getwindowname "$w")"
shoot "$w" "${shots:-/nonexistent}/windows-client.png"

step "all Windows checks passed"
