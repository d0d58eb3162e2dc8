#!/usr/bin/env bash
# Builds everything a user downloads into dist/, from a fresh clone:
#   dist/hubchat-server.exe, hubchat-client.exe, hubchat-load.exe   (Windows 10+)
#   dist/hubchat-server, hubchat-client, hubchat-load                (Linux x86_64)
#   dist/hubchat.desktop, dist/hubchat.png                           (Linux menu entry)
#   dist/SHA256SUMS
# Installs the cross toolchain first (scripts/install-deps.sh --windows).
# A cold Windows build takes about 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --windows
export PATH="$HOME/.local/bin:$PATH"
out="${CARGO_TARGET_DIR:-target}"
target=x86_64-pc-windows-gnu

cargo build --release --locked --bins
cargo build --release --locked --bins --target "$target"

rm -rf dist
mkdir -p dist
for name in hubchat-server hubchat-client hubchat-load; do
  cp "$out/release/$name" dist/
  cp "$out/$target/release/$name.exe" dist/
done
cp assets/hubchat.png assets/hubchat.desktop dist/
(cd dist && sha256sum -- * > SHA256SUMS)
ls -l dist
