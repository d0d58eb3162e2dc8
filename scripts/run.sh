#!/usr/bin/env bash
# Installs what HubChat needs (first run only), builds the release binaries
# and starts the server. Arguments go to hubchat-server, e.g.
#   scripts/run.sh --headless --port 6000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.local/bin:$PATH"
cargo build --release --locked --bin hubchat-server
exec "${CARGO_TARGET_DIR:-target}/release/hubchat-server" "$@"
