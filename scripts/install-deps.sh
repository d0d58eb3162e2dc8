#!/usr/bin/env bash
# Installs what HubChat needs to build and test on a fresh Debian or Ubuntu
# machine. Idempotent: when everything is already present it only checks and
# returns in well under a second.
#
#   scripts/install-deps.sh          build dependencies (FLTK's C/C++ side, cmake)
#   scripts/install-deps.sh --test   also the tools the GUI tests use (Xvfb, ...)
#   scripts/install-deps.sh --windows   also the Windows cross toolchain: the
#        x86_64-pc-windows-gnu Rust target, mingw's gcc, g++ and windres,
#        and wine to run the .exe in the checks
#   scripts/install-deps.sh --bench  also ngIRCd, the peer scripts/bench.sh measures beside HubChat
# The flags combine: --test --windows --bench.
set -euo pipefail

build_pkgs=(gcc g++ make libc6-dev pkg-config libx11-dev libxext-dev libxft-dev
  libxinerama-dev libxcursor-dev libxfixes-dev libpango1.0-dev python3-pip)
test_pkgs=(xvfb xauth xdotool xclip imagemagick openbox x11-utils fonts-dejavu-core
  fonts-noto-color-emoji fonts-noto-cjk)

windows_pkgs=(gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine wine64)

want=("${build_pkgs[@]}")
windows=false
for flag in "$@"; do
  case "$flag" in
    --test) want+=("${test_pkgs[@]}") ;;
    --windows) want+=("${windows_pkgs[@]}"); windows=true ;;
    # ngIRCd (about 0.3 MB) for the side-by-side bench; Debian enables its
    # system service, which bench.sh does not use (it starts its own).
    --bench) want+=(ngircd) ;;
    *) echo "install-deps: unknown option $flag (use --test, --windows, --bench)" >&2; exit 2 ;;
  esac
done

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# fltk-sys needs cmake 3.28 or newer; Debian 12 ships 3.25, so take it from
# PyPI. pip --user puts it in ~/.local/bin, which may not be on PATH yet.
export PATH="$HOME/.local/bin:$PATH"
cmake_ok() {
  command -v cmake >/dev/null 2>&1 || return 1
  local v
  v=$(cmake --version | head -n1 | awk '{print $3}')
  [[ "$(printf '%s\n3.28\n' "$v" | sort -V | head -n1)" == "3.28" ]]
}
if ! cmake_ok; then
  echo "install-deps: installing cmake from PyPI"
  python3 -m pip install --quiet --user cmake 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages cmake \
    || python3 -m pip install --quiet cmake
  cmake_ok || { echo "install-deps: cmake 3.28+ is still not on PATH (try adding ~/.local/bin)" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found. Install Rust from https://rustup.rs and run this again." >&2
  exit 1
fi

# The Rust standard library for Windows, which the mingw tools link.
if $windows && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
  echo "install-deps: adding the x86_64-pc-windows-gnu Rust target"
  rustup target add x86_64-pc-windows-gnu
fi
