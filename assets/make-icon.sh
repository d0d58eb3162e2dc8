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
convert "$big" -define icon:auto-resize=256,64,48,32,24,16 -depth 8 -strip hubchat.ico
