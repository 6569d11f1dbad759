#!/usr/bin/env bash
# Renders icons/ruwad.svg (and tray.svg) into every file Tauri's bundler reads, as RGBA PNGs,
# plus icon.ico and icon.icns. The outputs are committed, so builds need none of these tools;
# run this again after changing an SVG.
#
# Needs: rsvg-convert (librsvg2-bin) to rasterise (it renders SVG better than ImageMagick's
# own delegate), ImageMagick's /usr/bin/convert for the .ico (/usr/local/bin/convert on these
# machines is not ImageMagick), and python3 for the .icns container.
#   apt-get install -y librsvg2-bin imagemagick
set -euo pipefail
cd "$(dirname "$0")"

CONVERT=/usr/bin/convert
for tool in rsvg-convert "$CONVERT" python3; do
  command -v "$tool" >/dev/null || { echo "generate.sh: $tool is missing (apt-get install -y librsvg2-bin imagemagick)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# png SVG SIZE OUT: a square RGBA PNG (PNG32 forces the alpha channel even where all pixels are opaque).
png() {
  rsvg-convert --width "$2" --height "$2" --keep-aspect-ratio "$1" --output "$tmp/raw.png"
  "$CONVERT" "$tmp/raw.png" -background none -strip "PNG32:$3"
}

png ruwad.svg 32 32x32.png
png ruwad.svg 128 128x128.png
png ruwad.svg 256 128x128@2x.png
png ruwad.svg 512 icon.png
for size in 30 44 71 89 107 142 150 284 310; do
  png ruwad.svg "$size" "Square${size}x${size}Logo.png"
done
png ruwad.svg 50 StoreLogo.png
png tray.svg 32 tray.png

# Windows: one .ico holding 16…256 (Explorer picks the size it needs).
ico=()
for size in 16 24 32 48 64 128 256; do
  png ruwad.svg "$size" "$tmp/ico-$size.png"
  ico+=("$tmp/ico-$size.png")
done
"$CONVERT" "${ico[@]}" icon.ico

# macOS: the icns container is 'icns' + total length, then entries of type + length + PNG data.
for size in 32 64 128 256 512 1024; do png ruwad.svg "$size" "$tmp/icns-$size.png"; done
python3 - "$tmp" <<'PY'
import struct, sys
tmp = sys.argv[1]
# The types that hold PNG data (macOS 10.8+): ic07 128, ic08 256, ic09 512, ic10 1024
# (512@2x), ic11 32 (16@2x), ic12 64 (32@2x), ic13 256 (128@2x), ic14 512 (256@2x).
entries = [("ic11", 32), ("ic12", 64), ("ic07", 128), ("ic13", 256),
           ("ic08", 256), ("ic14", 512), ("ic09", 512), ("ic10", 1024)]
body = b""
for kind, size in entries:
    data = open(f"{tmp}/icns-{size}.png", "rb").read()
    body += kind.encode() + struct.pack(">I", 8 + len(data)) + data
open("icon.icns", "wb").write(b"icns" + struct.pack(">I", 8 + len(body)) + body)
PY

# The UI shows the mark in its rail and sign-in screen.
cp ruwad.svg ../ui/public/ruwad.svg

# Every PNG must be RGBA (Tauri refuses others).
for f in *.png; do
  [[ "$("$CONVERT" "$f" -format '%[channels]' info:)" == srgba* ]] || { echo "generate.sh: $f is not RGBA" >&2; exit 1; }
done
echo "icons: $(ls *.png | wc -l) PNGs, icon.ico, icon.icns"
