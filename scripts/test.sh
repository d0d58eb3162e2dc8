#!/usr/bin/env bash
# Runs every check CI runs: installs what is missing, builds the release
# binaries, runs all tests, clippy with warnings as errors, and rustfmt.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
export PATH="$HOME/.local/bin:$PATH"
# CI builds once, from a clean checkout, on a machine with little disk: the
# incremental caches and full debug info of some forty test binaries were
# most of the build's size (the fuzz build ran out of space after them).
# Line tables keep file and line in a failing test's backtrace.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
cargo build --release --locked
cargo clippy --all-targets --locked -- -D warnings
# Everything that draws nothing must build (and stay lint-clean) without FLTK.
cargo clippy --no-default-features --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The window tests need an X display: Xvfb provides one without a screen.
# The end-to-end test starts its own Xvfb and openbox; here it must not skip.
HUBCHAT_REQUIRE_E2E=1 xvfb-run -a -s "-screen 0 1280x800x24" cargo test --locked 2>&1 | tee "$log"
# Every decoder of untrusted bytes, fuzzed briefly (nightly, no FLTK).
scripts/fuzz.sh 60 2>&1 | tee -a "$log"
# The Windows .exe: cross build, imports, and a run under wine.
scripts/windows-check.sh
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
