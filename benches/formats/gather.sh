#!/usr/bin/env bash
# Builds a folder of real documents for `./dev bench formats`: the HTML and Markdown manuals
# of Debian's installed documentation packages, converted by pandoc to Word, OpenDocument and
# EPUB (and some kept as they are), and scanned pages: the text of ten of them rendered to a
# 200 dpi image per page and wrapped in a PDF without a text layer (Pillow), with the source
# text kept beside it for the OCR word accuracy.
#
#   benches/formats/gather.sh DEST [COUNT]   # DEST/docs, DEST/truth; COUNT documents (48)
set -euo pipefail
dest=${1:?usage: gather.sh DEST [COUNT]}
count=${2:-48}
command -v pandoc >/dev/null || { echo "gather.sh needs pandoc (apt install pandoc)" >&2; exit 2; }
python3 -c 'import PIL' 2>/dev/null || { echo "gather.sh needs Pillow (pip install pillow)" >&2; exit 2; }
font=$(fc-match -f '%{file}' 'DejaVu Sans' 2>/dev/null || true)
[ -f "$font" ] || { echo "gather.sh needs a TrueType font (fonts-dejavu-core)" >&2; exit 2; }

mkdir -p "$dest/docs" "$dest/truth" "$dest/plain"
formats=(docx odt epub docx odt epub html md)
n=0
# Manuals of 8 to 120 KB (real structure: headings, lists, tables), in path order.
while IFS= read -r src && [ "$n" -lt "$count" ]; do
  base=$(basename "$src")
  base=${base%.gz}
  from=html
  case "$base" in *.md | *.markdown) from=markdown ;; esac
  name="$(basename "$(dirname "$src")")-${base%.*}"
  fmt=${formats[$((n % ${#formats[@]}))]}
  out="$dest/docs/$name.$fmt"
  text=$( (zcat -f "$src") 2>/dev/null) || continue
  case "$fmt" in
    html | md)
      if [ "$fmt" = md ] && [ "$from" = html ]; then
        printf '%s' "$text" | pandoc -f html -t gfm -o "$out" 2>/dev/null || continue
      elif [ "$fmt" = html ] && [ "$from" = markdown ]; then
        printf '%s' "$text" | pandoc -f markdown -t html -s -o "$out" 2>/dev/null || continue
      else
        printf '%s' "$text" >"$out"
      fi
      ;;
    *)
      printf '%s' "$text" | timeout 60 pandoc -f "$from" -o "$out" 2>/dev/null || continue
      ;;
  esac
  printf '%s' "$text" | pandoc -f "$from" -t plain --wrap=none -o "$dest/plain/$n.txt" 2>/dev/null || true
  n=$((n + 1))
done < <(find /usr/share/doc -type f \( -name '*.html' -o -name '*.html.gz' -o -name '*.md' -o -name '*.md.gz' \) \
           -size +8k -size -120k | sort)
echo "gather.sh: $n documents in $dest/docs"

# Ten scanned pages: the first paragraphs of ten of the documents, one page each.
python3 - "$dest" "$font" <<'EOF'
import os, sys, textwrap
from PIL import Image, ImageDraw, ImageFont
dest, font_path = sys.argv[1], sys.argv[2]
plain = sorted(os.listdir(os.path.join(dest, "plain")), key=lambda s: int(s.split(".")[0]))
font = ImageFont.truetype(font_path, 30)  # 11 pt at 200 dpi
made = 0
for name in plain:
    if made == 10:
        break
    words = open(os.path.join(dest, "plain", name), encoding="utf-8", errors="replace").read().split()
    words = [w for w in words if w.isprintable()][:330]
    if len(words) < 150:
        continue
    lines = textwrap.wrap(" ".join(words), width=80)[:58]
    page = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((150, 150 + i * 33), line, fill=0, font=font)
    page.save(os.path.join(dest, "docs", f"scan-{made}.pdf"), "PDF", resolution=200.0)
    with open(os.path.join(dest, "truth", f"scan-{made}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    made += 1
print(f"gather.sh: {made} scanned pages in {dest}/docs, their text in {dest}/truth")
EOF
