#!/usr/bin/env bash
# Takes the README's screenshots of sending files: an offer with its
# thumbnail, a transfer under way on both sides, a finished one, and
# "Send file..." greyed for an original partner. They are drawn by the
# window test tests/files_window.rs (each window drawn offscreen as FLTK
# draws it on screen), on a display of its own.
#
#   scripts/screenshot-files.sh [OUT_DIR]     (default: docs/screenshots)
#
# Needs the GUI test tools (scripts/install-deps.sh --test). Talks only to
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/screenshots}")
mkdir -p "$out"
HUBCHAT_SCREENSHOTS="$out" xvfb-run -a -s "-screen 0 1700x900x24" \
  cargo test --test files_window
echo "screenshots in $out"
