#!/usr/bin/env bash
# gather.sh - rebuild the folio development QA corpus from Debian bookworm packages.
#
# Usage:  sudo ./gather.sh TARGET_DIR
#
# Downloads the Debian packages listed below with `apt-get download`, unpacks them
# with `dpkg-deb -x` into a temporary directory, copies (gunzipping where needed) the
# chosen documents into TARGET_DIR under stable names, and prints a sha256 of each file.
#
# Reproducibility: every package is pinned to the version the corpus was built from.
# If the Debian mirror no longer carries that exact version (bookworm point releases /
# security updates replace old versions), the script falls back to the current candidate
# and prints a WARNING; the sha256 check at the end then shows which files changed.
# Exit status: 0 = corpus complete and every file matches the recorded sha256,
#              2 = corpus complete but some file differs from the recorded sha256,
#              1 = error.
# Idempotent: re-running overwrites the same files with the same content; it never
# deletes anything in TARGET_DIR (it only warns about files it does not manage).
# Needs: root (or a user able to run apt-get), Debian bookworm, apt, dpkg-deb, gzip,
# sha256sum. Depends on nothing else.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 TARGET_DIR" >&2
    exit 1
fi
TARGET=$1
mkdir -p "$TARGET"
TARGET=$(cd "$TARGET" && pwd)

# package  pinned-version
PACKAGES="
doc-debian 11.3+nmu1
debian-policy 4.6.2.0
developers-reference 12.18
debian-faq 11.1
popularity-contest 1.76
openssh-client 1:9.2p1-2+deb12u10
git-doc 1:2.39.5-0+deb12u3
sqlite3-doc 3.40.1-2+deb12u2
postgresql-doc-15 15.20-0+deb12u1
"

# target-name  package  path-inside-package (".gz" paths are gunzipped)  doc-kind
FILES="
debian-constitution.txt            doc-debian           usr/share/doc/debian/constitution.txt.gz          legal
debian-social-contract.txt         doc-debian           usr/share/doc/debian/social-contract.txt.gz       legal
debian-mailing-lists.txt           doc-debian           usr/share/doc/debian/mailing-lists.txt.gz         manual
debian-bug-reporting.txt           doc-debian           usr/share/doc/debian/bug-reporting.txt.gz         manual
debian-bug-control-server.txt      doc-debian           usr/share/doc/debian/bug-maint-mailcontrol.txt.gz manual
debian-copyright-format-1.0.txt    debian-policy        usr/share/doc/debian-policy/copyright-format-1.0.txt.gz spec
debian-autopkgtest.md              debian-policy        usr/share/doc/debian-policy/autopkgtest.txt.gz    spec
filesystem-hierarchy-standard-3.0.pdf debian-policy     usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz    spec
debian-policy-control-fields.html  debian-policy        usr/share/doc/debian-policy/policy.html/ch-controlfields.html spec
debian-policy-binary-packages.html debian-policy        usr/share/doc/debian-policy/policy.html/ch-binary.html spec
developers-reference-duties.html   developers-reference usr/share/developers-reference/developer-duties.html legal
developers-reference-packages.html developers-reference usr/share/developers-reference/pkgs.html         manual
debian-faq.pdf                     debian-faq           usr/share/doc/debian/FAQ/debian-faq.en.pdf.gz     manual
popularity-contest-faq.txt         popularity-contest   usr/share/doc/popularity-contest/FAQ.gz           legal
openssh-client-readme-debian.txt   openssh-client       usr/share/doc/openssh-client/README.Debian.gz     manual
git-protocol-v2.txt                git-doc              usr/share/doc/git-doc/gitprotocol-v2.txt          spec
git-pack-format.txt                git-doc              usr/share/doc/git-doc/gitformat-pack.txt          spec
git-submitting-patches.txt         git-doc              usr/share/doc/git-doc/SubmittingPatches.txt       manual
git-embargoed-releases.txt         git-doc              usr/share/doc/git-doc/howto/coordinate-embargoed-releases.txt legal
sqlite-file-format.html            sqlite3-doc          usr/share/doc/sqlite3/fileformat2.html            spec
sqlite-limits.html                 sqlite3-doc          usr/share/doc/sqlite3/limits.html                 spec
sqlite-write-ahead-log.html        sqlite3-doc          usr/share/doc/sqlite3/wal.html                    manual
sqlite-code-of-ethics.html         sqlite3-doc          usr/share/doc/sqlite3/codeofethics.html           legal
sqlite-consortium-agreement.html   sqlite3-doc          usr/share/doc/sqlite3/consortium_agreement-20071201.html legal
sqlite-copyright-release.pdf       sqlite3-doc          usr/share/doc/sqlite3/copyright-release.pdf       legal
postgresql-autovacuum-settings.html postgresql-doc-15   usr/share/doc/postgresql-doc-15/html/runtime-config-autovacuum.html manual
postgresql-limits.html             postgresql-doc-15    usr/share/doc/postgresql-doc-15/html/limits.html  spec
postgresql-pg-hba-conf.html        postgresql-doc-15    usr/share/doc/postgresql-doc-15/html/auth-pg-hba-conf.html manual
"

# sha256 of every file as built from the pinned versions above
EXPECTED_SHA256="
9722b279df1539e4446581b4384d10ffb6540a535ec62f4ad1ce02b961a8f06e  debian-constitution.txt
be375fd14c0501fe8e9578ac399bbedcddb1b7e8f3863596014e718a3d0f25bc  debian-social-contract.txt
fbfc3dfe1e6cebd4963f3a8459bc306b421e3c5c525485dadf74954d18d350a2  debian-mailing-lists.txt
704c8115aee0242e8c4f2f417508bb35f210a655db5d2e89ce31e31cf90be956  debian-bug-reporting.txt
197ed20f6ad1b3f661834386602a544fbace569d1e073a450d55def0fb5198f3  debian-bug-control-server.txt
3f547bea8e3f947f106bf6cae64317baa8e4920af3759c66d1c13ccaa4d51b4e  debian-copyright-format-1.0.txt
10cbd5844669cb0ddeaf659cf358f932071b29741c65e093a30ea21465debc3e  debian-autopkgtest.md
53d239e569a2d7b31a74fa09d585368c0f5a164e4624723fa2894660dd10fd23  filesystem-hierarchy-standard-3.0.pdf
5d9df2b0f501515f4fe4552560d1cd854db8cd90e37fbaa3cb017ee37ab84845  debian-policy-control-fields.html
d0e6ffb5b783a6aa7c8e2b9ebe069f299cd25a815da97ecec26caadc71e95ecf  debian-policy-binary-packages.html
034baef37e43cb5f75f8c0fa01af154acdd413155e58db7b670589ce19e0cb1b  developers-reference-duties.html
0c7282c52c5b23875aa363b1fe6d9114277198c1f6110c12751c930c32998f2b  developers-reference-packages.html
ea67ca925863324d97a30b5c926aed95efc687c689aa16788c9bed54525c0b47  debian-faq.pdf
fc20544e92c6ab182b3e8ce788889e56930603c3dc05361a10e9c0d7ef879337  popularity-contest-faq.txt
3e848e05ac97359d04d582d519840dd94b31885a12d36e52f80ba988da0025d6  openssh-client-readme-debian.txt
06de47b776913fc701b0ec65ef8ddd3694ab0c4ad3b8ec3c4072177df43dd173  git-protocol-v2.txt
9e75b87c6c74f1d1e1c5eb9a57398d28974d8b9a6368844a836e300834f068a7  git-pack-format.txt
8f110903a87e926916d860ad92145b221ba20d3188ccb4450a93d97f5640d79a  git-submitting-patches.txt
2e224abe030e8448dc3f9c77de972c418cde7ba368bc38b80310c736a5bf583b  git-embargoed-releases.txt
e7a7b31f194b1d28e14f62dd4f0fb1e2d6e6d9d24a83a31ca905cb3cfe787c66  sqlite-file-format.html
c8ce36be3280ea10a22db68a99643f5b7eaa0f7064685f301e04b734f4b20cac  sqlite-limits.html
6de416a73b7754fd7a752ec04913eb6423d15b387fe6995f6a78bd148657f36f  sqlite-write-ahead-log.html
6015f4c951ca07ec4dcfe28627dd685dd83682b9b756f747b7b07033355d79d3  sqlite-code-of-ethics.html
0409c92efafb09ec69ea245d19b05b900e03dcaebfdba6d6c53fd3c194cd6eed  sqlite-consortium-agreement.html
a403fc07d4c4810555623f89bde45b41fb0d5e0c4d6db4250d9e30b0f0800a2d  sqlite-copyright-release.pdf
942565abae6f6f6ea80a6a4a53f85f5f0d726309826b2fb121e499bb6fd2ff9b  postgresql-autovacuum-settings.html
738d1a5917332963d863376d6aee99cfa4d6aecfda9256c7692bf9083a2fc52e  postgresql-limits.html
10d20d40f03e4537b114e69fc56c6eed6f9ac9ae479e9a4f57fc4815abfd5343  postgresql-pg-hba-conf.html
"

WORK=$(mktemp -d /tmp/folio-gather.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
mkdir -p "$WORK/debs" "$WORK/x"
# let apt's unprivileged _apt user write the downloads (avoids apt's sandbox warning)
chown _apt "$WORK/debs" 2>/dev/null || chmod 777 "$WORK/debs"

updated=0
apt_update_once() {
    if [ "$updated" -eq 0 ]; then
        echo "== apt-get update" >&2
        apt-get update -qq >&2
        updated=1
    fi
}

echo "== downloading packages"
cd "$WORK/debs"
echo "$PACKAGES" | while read -r pkg ver; do
    [ -n "$pkg" ] || continue
    if ! apt-get download -q "$pkg=$ver" >/dev/null 2>&1; then
        apt_update_once
        if ! apt-get download -q "$pkg=$ver" >/dev/null 2>&1; then
            echo "WARNING: $pkg=$ver is no longer available; using the current candidate" >&2
            apt-get download -q "$pkg" >/dev/null
        fi
    fi
done
for deb in "$WORK"/debs/*.deb; do
    pkg=$(dpkg-deb -f "$deb" Package)
    ver=$(dpkg-deb -f "$deb" Version)
    printf '  %-22s %s\n' "$pkg" "$ver"
    mkdir -p "$WORK/x/$pkg"
    dpkg-deb -x "$deb" "$WORK/x/$pkg"
done

echo "== copying documents into $TARGET"
echo "$FILES" | while read -r name pkg path kind; do
    [ -n "$name" ] || continue
    src="$WORK/x/$pkg/$path"
    if [ ! -f "$src" ]; then
        echo "ERROR: $pkg does not contain $path" >&2
        exit 1
    fi
    tmp="$TARGET/.$name.tmp"
    case "$path" in
        *.gz) gzip -dc "$src" > "$tmp" ;;
        *)    cat "$src" > "$tmp" ;;
    esac
    chmod 644 "$tmp"
    touch -r "$src" "$tmp"
    mv -f "$tmp" "$TARGET/$name"
done

# warn about files in TARGET that this script does not manage
managed=$(echo "$FILES" | awk 'NF {print $1}')
for f in "$TARGET"/* "$TARGET"/.[!.]*; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    if ! echo "$managed" | grep -qxF "$b"; then
        echo "WARNING: $TARGET/$b is not part of the corpus" >&2
    fi
done

echo "== sha256"
status=0
cd "$TARGET"
while read -r name; do
    sum=$(sha256sum "$name" | awk '{print $1}')
    size=$(stat -c %s "$name")
    exp=$(echo "$EXPECTED_SHA256" | awk -v n="$name" '$2 == n {print $1}')
    mark=""
    if [ -n "$exp" ] && [ "$exp" != "$sum" ]; then
        mark="  CHANGED (expected $exp)"
        status=2
    elif [ -z "$exp" ]; then
        mark="  (no recorded sha256)"
    fi
    printf '%s  %s  (%s bytes)%s\n' "$sum" "$name" "$size" "$mark"
done <<< "$managed"
total=$(echo "$managed" | xargs du -cb | tail -1 | awk '{print $1}')
echo "== $(echo "$managed" | wc -l) files, $total bytes"
if [ "$status" -ne 0 ]; then
    echo "WARNING: some files differ from the recorded corpus (see CHANGED above); questions may need re-checking" >&2
fi
exit $status
