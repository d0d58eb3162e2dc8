#!/usr/bin/env bash
# Fuzzes every decoder of untrusted bytes (fuzz/fuzz_targets/: packets from
# clients and from servers, the frame reader, avatar pictures, names) for
# SECONDS each (default 60) with cargo-fuzz on the nightly toolchain, which
# it installs when missing. The crate is built without its windows
# (`default-features = false`), so no FLTK is compiled. The picture target
# starts from the built-in avatars and tests/fuzz-cases/. A crash stops the
# script with the input saved under fuzz/artifacts/.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600 name   # ten minutes on one target
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(client_packet server_packet frames picture name)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked

mkdir -p fuzz/corpus/picture
cp avatars/*.png tests/fuzz-cases/*.png fuzz/corpus/picture/

cd fuzz
cargo +nightly fuzz build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${TARGETS[@]}"; do
    echo "fuzz: $t for ${SECONDS_EACH}s"
    # libFuzzer exits non-zero on a crash and saves the input.
    if ! cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $t found a crash (the input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    grep -E '^Done' "$log" || true
done
echo "fuzz: no crash in ${#TARGETS[@]} targets, ${SECONDS_EACH}s each"
