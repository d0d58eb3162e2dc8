#!/usr/bin/env bash
# Runs every attack of issue 10 ("Hold against a hostile LAN user") against
# a fresh release hubchat-server on 127.0.0.1, one server per attack, while
# a pair of normal clients chats, and prints each report and a summary
# table (README, "Limits and abuse"). Only loopback is used; every attack is
# bounded in connections and time (about 3 minutes in all). Linux only
# (reads /proc for the server's memory).
#
#   bash scripts/attack.sh                      # all attacks, default scale
#   bash scripts/attack.sh flood --seconds 20   # one attack, longer
#   bash scripts/attack.sh all --check-goals    # exit 1 if a goal was missed
#
# Any arguments replace "all" and are passed to `hubchat-load attack`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin hubchat-server --bin hubchat-load
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ $# -eq 0 ]; then set -- all; fi
exec "$TARGET/release/hubchat-load" attack "$@"
