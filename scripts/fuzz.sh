#!/usr/bin/env bash
# Fuzzes every decoder of untrusted bytes and the server's handshake
# (fuzz/fuzz_targets/: packets from clients and from servers, the frame
# reader, avatar pictures, names, the handshake's state machine) for
# SECONDS each (default 60) with cargo-fuzz on the nightly toolchain, which
# it installs when missing; where neither can be had it says so and stops
# without failing (tests/randomized.rs checks the same promises on stable
# in every `cargo test`). The crate is built without its windows
# (`default-features = false`), so no FLTK is compiled. Each target starts
# from fuzz/seeds/<target>/; the picture target also from the built-in
# avatars and tests/fuzz-cases/. A crash stops the script with the input
# saved under fuzz/artifacts/.
#
#   scripts/fuzz.sh                       # 60 s per target
#   scripts/fuzz.sh 600 name              # ten minutes on one target
#   FUZZ_ARGS=-runs=10000000 scripts/fuzz.sh 0 handshake   # a count instead
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(client_packet server_packet frames picture name handshake)

unavailable() {
    echo "fuzz: SKIPPED, $1; tests/randomized.rs covers the same entry points" >&2
    exit 0
}
rustup toolchain list | grep -q '^nightly' ||
    rustup toolchain install nightly --profile minimal || unavailable "no nightly toolchain"
command -v cargo-fuzz > /dev/null ||
    cargo install cargo-fuzz --locked || unavailable "cargo-fuzz cannot be installed"

for seeds in fuzz/seeds/*/; do
    t=$(basename "$seeds")
    mkdir -p "fuzz/corpus/$t"
    cp "$seeds"* "fuzz/corpus/$t/"
done
mkdir -p fuzz/corpus/picture
cp avatars/*.png tests/fuzz-cases/*.png fuzz/corpus/picture/

cd fuzz
cargo +nightly fuzz build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${TARGETS[@]}"; do
    echo "fuzz: $t for ${SECONDS_EACH}s ${FUZZ_ARGS:-}"
    # libFuzzer exits non-zero on a crash and saves the input. FUZZ_ARGS is
    # split into words on purpose: it holds libFuzzer options.
    # shellcheck disable=SC2086
    if ! cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" ${FUZZ_ARGS:-} > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $t found a crash (the input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    grep -E '^(Done|#[0-9]+ +DONE)' "$log" || true
done
echo "fuzz: no crash in ${#TARGETS[@]} targets, ${SECONDS_EACH}s each"
