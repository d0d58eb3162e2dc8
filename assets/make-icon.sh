#!/usr/bin/env bash
# Draws HubChat's icon, a blue speech bubble with three white dots, with
# ImageMagick: assets/hubchat.png (256 px, for Linux windows and the
# .desktop file) and assets/hubchat.ico (16 to 256 px, for the .exe files).
# The results are committed; run this again only to change the design.
set -euo pipefail
cd "$(dirname "$0")"

big=$(mktemp --suffix=.png)
trap 'rm -f "$big"' EXIT
# Drawn at 1024 px and scaled down, so the edges come out smooth.
convert -size 1024x1024 xc:none \
  -fill '#1f5fbf' -draw 'roundrectangle 64,112 960,760 176,176' \
  -draw 'polygon 224,700 176,944 456,736' \
  -fill white \
  -draw 'circle 304,436 304,516' \
  -draw 'circle 512,436 512,516' \
  -draw 'circle 720,436 720,516' \
  "$big"
convert "$big" -resize 256x256 -depth 8 -strip hubchat.png
# Every size of the .ico as a PNG (Windows Vista and later read them; the
# programs need Windows 10 anyway): 10 KB instead of 40 KB of bitmaps in
# each .exe.
sizes=(256 64 48 32 24 16)
pngs=()
for s in "${sizes[@]}"; do
    p=$(mktemp --suffix=.png)
    convert "$big" -resize "${s}x${s}" -depth 8 -strip "PNG32:$p"
    pngs+=("$p")
done
python3 - hubchat.ico "${pngs[@]}" <<'PY'
import struct, sys
out, files = sys.argv[1], sys.argv[2:]
blobs = [open(f, "rb").read() for f in files]
head = struct.pack("<HHH", 0, 1, len(blobs))
offset = len(head) + 16 * len(blobs)
entries = b""
for blob in blobs:
    w, h = struct.unpack(">II", blob[16:24])
    entries += struct.pack("<BBBBHHII", w % 256, h % 256, 0, 0, 1, 32, len(blob), offset)
    offset += len(blob)
open(out, "wb").write(head + entries + b"".join(blobs))
PY
rm -f "${pngs[@]}"
