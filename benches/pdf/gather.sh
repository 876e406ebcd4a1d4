#!/usr/bin/env bash
# Gathers a corpus of real PDFs from Debian documentation packages, for `cargo bench --bench pdf`.
# Only this script is committed, never the files. Usage: benches/pdf/gather.sh DEST
# DEST/pdfs/ receives at most PER_PACKAGE PDFs of each package (LaTeX, groff, Texinfo,
# DocBook, ReportLab, ConTeXt and other producers), plus encrypted copies made with qpdf: one that
# opens without a password (owner restrictions only) and one that needs one, and PDFs that
# Debian's own converters make from the packages' documentation: LibreOffice, wkhtmltopdf (a web
# printer), groff, Ghostscript, and img2pdf from a rendered page (what a scanner gives: no text).
set -euo pipefail
dest=${1:?usage: gather.sh DEST}
per_package=${PER_PACKAGE:-8}
packages=(
  r-doc-pdf gnuplot-doc octave-doc asymptote-doc maxima-doc debian-reference-en
  python-reportlab-doc texlive-fonts-recommended-doc texlive-latex-base-doc
  texlive-latex-recommended-doc xfig-doc hplip-data libqpdf-dev tex-gyre pdfsandwich
  cups-filters-core-drivers sane-utils
)
mkdir -p "$dest/debs" "$dest/root" "$dest/pdfs"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
tools=(qpdf:qpdf soffice:libreoffice-writer-nogui wkhtmltopdf:wkhtmltopdf img2pdf:img2pdf
  ps2pdf:ghostscript groff:groff pdftoppm:poppler-utils)
for t in "${tools[@]}"; do
  command -v "${t%%:*}" >/dev/null || $SUDO apt-get install -y -q "${t#*:}" >/dev/null 2>&1 \
    || echo "gather: cannot install ${t#*:}" >&2
done
cd "$dest/debs"
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" >/dev/null 2>&1 || echo "gather: cannot download $p" >&2
done
for deb in *.deb; do
  pkg=${deb%%_*}
  mkdir -p "../root/$pkg"
  dpkg-deb -x "$deb" "../root/$pkg"
  # The first PER_PACKAGE by size order, smallest first, so that one package cannot dominate.
  find "../root/$pkg" -type f \( -name '*.pdf' -o -name '*.pdf.gz' \) -printf '%s %p\n' \
    | sort -n | head -n "$per_package" | cut -d' ' -f2- \
    | while read -r f; do
        name="$pkg--$(basename "$f")"
        case "$f" in
          *.gz) gunzip -c "$f" > "../pdfs/${name%.gz}" ;;
          *) cp "$f" "../pdfs/$name" ;;
        esac
      done
done
cd ../pdfs
# Encrypted variants of the two smallest files.
for f in $(ls -S -r | grep -v -- '--encrypted' | head -2); do
  qpdf --encrypt "" owner 256 --print=none -- "$f" "restricted--encrypted-${f}" || true
  qpdf --encrypt user owner 256 -- "$f" "password--encrypted-${f}" || true
done
# Made here from the packages' own documentation.
root=$dest/root
mapfile -t html < <(find "$root/debian-reference-en" -name '*.html' | sort | head -3)
for f in "${html[@]}"; do
  wkhtmltopdf -q "$f" "wkhtmltopdf--$(basename "$f" .html).pdf" 2>/dev/null || true
done
mapfile -t texts < <(find "$root" \( -name 'README*' -o -name '*.html' \) -size +2k -size -200k | sort | head -6)
for f in "${texts[@]}"; do
  out=$(mktemp -d)
  cp "$f" "$out/$(basename "$f").txt"
  soffice --headless --convert-to pdf --outdir "$out" "$out/$(basename "$f").txt" >/dev/null 2>&1 || true
  for pdf in "$out"/*.pdf; do [ -e "$pdf" ] && mv "$pdf" "libreoffice--$(basename "$pdf")"; done
  rm -rf "$out"
done
for man in ls grep tar; do
  page=$(find /usr/share/man/man1 -name "$man.1*" | head -1)
  [ -n "$page" ] || continue
  zcat -f "$page" | groff -man -Tpdf > "groff--$man.pdf" 2>/dev/null || true
  zcat -f "$page" | groff -man -Tps 2>/dev/null | ps2pdf - "ghostscript--$man.pdf" 2>/dev/null || true
done
first=$(ls | grep -- '^r-doc-pdf--' | head -1)
if [ -n "$first" ]; then
  pdftoppm -r 150 -f 1 -l 2 -png "$first" scan 2>/dev/null \
    && img2pdf scan-*.png -o "scanned--$first" 2>/dev/null || true
  rm -f scan-*.png
fi
find . -size 0 -delete
echo "gather: $(ls | wc -l) PDFs in $dest/pdfs"
