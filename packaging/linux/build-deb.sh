#!/usr/bin/env bash
# Build the Linux bundle (PyInstaller, onedir) and the .deb:  packaging/linux/build-deb.sh
#
#   OUT=dist/          where the .deb goes (default: build/deb/)
#   SKIP_FREEZE=1      reuse build/pyi/dist/sealmail from a previous run (packaging changes only)
#   PYTHON=.venv/bin/python   the venv that has the project and pyinstaller installed
#   COMPRESS=xz        xz (default: smallest, ~45 MB, minutes) or zstd (~58 MB, seconds;
#                      dpkg >= 1.21.18, i.e. Debian 12 / Ubuntu 21.10 on; the test uses it)
#
# Layout: /opt/sealmail/ (the bundle: sealmail, sealmail-gui, _internal/), /usr/bin symlinks,
# desktop file, hicolor icons, AppStream metainfo, shared-mime-info XML, /etc/sealmail/README.
# Depends: computed from the shared libraries the bundle links that it does not carry
# (dpkg -S of each), plus gnupg (the GnuPG backend) -- printed at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${OUT:-$ROOT/build/deb}
WORK=$ROOT/build/pyi
HERE=$ROOT/packaging/linux
VERSION=$("$PYTHON" -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
ARCH=$(dpkg --print-architecture)
PKG=sealmail
for tool in dpkg-deb dpkg-query; do command -v $tool >/dev/null || { echo "needs $tool"; exit 2; }; done

t0=$(date +%s)
if [ -z "${SKIP_FREEZE:-}" ] || [ ! -x "$WORK/dist/sealmail/sealmail" ]; then
  "$PYTHON" -m pip show pyinstaller >/dev/null 2>&1 || "$PYTHON" -m pip install -q 'pyinstaller>=6.10'
  rm -rf "$WORK/dist"
  "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/work" "$HERE/sealmail.spec"
fi
t1=$(date +%s)

STAGE=$ROOT/build/deb-root
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/metainfo" "$STAGE/usr/share/mime/packages" "$STAGE/etc/sealmail" \
  "$STAGE/usr/share/doc/$PKG/examples"
cp -a "$WORK/dist/sealmail" "$STAGE/opt/sealmail"
ln -s /opt/sealmail/sealmail "$STAGE/usr/bin/sealmail"
ln -s /opt/sealmail/sealmail-gui "$STAGE/usr/bin/sealmail-gui"
install -m644 "$HERE/share/org.sealmail.Sealmail.desktop" "$STAGE/usr/share/applications/"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -u +%F)/" \
  "$HERE/share/org.sealmail.Sealmail.metainfo.xml" > "$STAGE/usr/share/metainfo/org.sealmail.Sealmail.metainfo.xml"
install -m644 "$HERE/share/sealmail.xml" "$STAGE/usr/share/mime/packages/sealmail.xml"
install -Dm644 "$ROOT/packaging/common/sealmail.svg" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps/org.sealmail.Sealmail.svg"
ICONS=$ROOT/build/icons
"$PYTHON" "$ROOT/packaging/common/render_icons.py" "$ICONS" 16 32 48 64 128 256
for s in 16 32 48 64 128 256; do
  install -Dm644 "$ICONS/$s.png" "$STAGE/usr/share/icons/hicolor/${s}x${s}/apps/org.sealmail.Sealmail.png"
done
install -m644 "$HERE/etc-README" "$STAGE/etc/sealmail/README"
install -m644 "$ROOT/client/policy/policy.schema.json" "$STAGE/usr/share/doc/$PKG/"
install -m644 "$ROOT/packaging/policy/example-clinic.json" "$STAGE/usr/share/doc/$PKG/examples/policy.json"
[ -f "$ROOT/CHANGELOG.md" ] && install -m644 "$ROOT/CHANGELOG.md" "$STAGE/usr/share/doc/$PKG/"
[ -f "$ROOT/packaging/README.md" ] && install -m644 "$ROOT/packaging/README.md" "$STAGE/usr/share/doc/$PKG/IT-GUIDE.md"
printf 'Sealmail %s. Proprietary; see the vendor agreement.\nBundled third-party components (Qt/PySide6: LGPL-3.0; Python: PSF; pysequoia/Sequoia: LGPL-2.0+; cryptography: Apache-2.0/BSD) keep their own licences, shipped under /opt/sealmail/_internal.\n' \
  "$VERSION" > "$STAGE/usr/share/doc/$PKG/copyright"

# Depends: the packages owning every system library the bundle's ELF files link
deps=$(
  find "$STAGE/opt/sealmail" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
  xargs -0 file -N --mime-type | awk -F': ' '$2 ~ /x-(sharedlib|executable|pie-executable)/ {print $1}' |
  while read -r f; do ldd "$f" 2>/dev/null || true; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v "^$STAGE" | sort -u |
  while read -r lib; do
    real=$(readlink -f "$lib")
    dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$real" 2>/dev/null ||
      dpkg-query -S "/usr$lib" 2>/dev/null || dpkg-query -S "/usr$real" 2>/dev/null ||
      echo "warning: no package owns $lib" >&2
  done | cut -d: -f1 | tr ', ' '\n\n' | grep -v '^$' | sort -u | paste -sd, | sed 's/,/, /g'
)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: Sealmail IT packaging <it@sealmail.invalid>
Section: mail
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Depends: ${deps}, gnupg
Suggests: dovecot-imapd, dovecot-lmtpd
Homepage: https://sealmail.invalid/
Description: secure mail for people who handle health data
 Sealmail reads and sends S/MIME and OpenPGP mail and password-protected
 envelopes, under an organisation policy (/etc/sealmail/policy.json).
 Self-contained: no Python is needed on the machine (installed in /opt/sealmail).
CONTROL
echo /etc/sealmail/README > "$STAGE/DEBIAN/conffiles"
# desktop, MIME and icon caches are refreshed by dpkg triggers of desktop-file-utils,
# shared-mime-info and hicolor-icon-theme: no maintainer scripts are needed.

mkdir -p "$OUT"
DEB=$OUT/${PKG}_${VERSION}_${ARCH}.deb
case "${COMPRESS:-xz}" in
  xz) zopts=(-Zxz -z6) ;;
  zstd) zopts=(-Zzstd -z9) ;;
  *) echo "COMPRESS must be xz or zstd"; exit 2 ;;
esac
dpkg-deb --root-owner-group "${zopts[@]}" --build "$STAGE" "$DEB" >/dev/null
t2=$(date +%s)
echo "bundle: $(du -sh "$STAGE/opt/sealmail" | cut -f1)  deb: $(du -h "$DEB" | cut -f1)  freeze: $((t1 - t0))s  package: $((t2 - t1))s"
echo "Depends: ${deps}, gnupg"
echo "$DEB"
