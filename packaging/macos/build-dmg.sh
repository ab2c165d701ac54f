#!/usr/bin/env bash
# Build, sign, notarise and staple Sealmail.app in a .dmg -- on a Mac (macOS 12+, Xcode
# command line tools, Python 3.11+). Not run in this repository's CI (Linux).
#
#   packaging/macos/build-dmg.sh                  unsigned .app + .dmg (for testing)
#   SIGN_ID="Developer ID Application: Example Clinic IT (TEAMID)" \
#   NOTARY_PROFILE=sealmail-notary \
#   packaging/macos/build-dmg.sh                  signed, notarised, stapled .dmg
#
# NOTARY_PROFILE is a keychain profile made once with:
#   xcrun notarytool store-credentials sealmail-notary --apple-id ID --team-id TEAMID
# For a .pkg instead (MDM deployment), see packaging/README.md (productbuild + notarytool).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
[ "$(uname -s)" = Darwin ] || { echo "build-dmg.sh runs on macOS"; exit 2; }
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { python3 -m venv .venv && PY=$ROOT/.venv/bin/python; }
"$PY" -m pip install -q -e . 'pyinstaller>=6.10'
VERSION=$("$PY" -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')

# icon: SVG -> PNGs -> .icns
ICONS=$ROOT/build/icons; SET=$ICONS/Sealmail.iconset
"$PY" packaging/common/render_icons.py "$ICONS" 16 32 64 128 256 512 1024
mkdir -p "$SET"
for s in 16 32 128 256 512; do
  cp "$ICONS/$s.png" "$SET/icon_${s}x${s}.png"; cp "$ICONS/$((s * 2)).png" "$SET/icon_${s}x${s}@2x.png"
done
iconutil -c icns -o "$ICONS/Sealmail.icns" "$SET"

rm -rf build/mac/dist
"$PY" -m PyInstaller --noconfirm --distpath build/mac/dist --workpath build/mac/work \
  packaging/macos/sealmail.spec
APP=build/mac/dist/Sealmail.app
# the CLI inside the bundle: /Applications/Sealmail.app/Contents/MacOS/sealmail
"$APP/Contents/MacOS/sealmail" --version

if [ -n "${SIGN_ID:-}" ]; then
  # hardened runtime (required for notarisation); Python needs no JIT entitlement, but
  # PySide6/shiboken load unsigned-by-us libraries: sign every Mach-O inside-out.
  find "$APP/Contents" -type f \( -name '*.so' -o -name '*.dylib' -o -perm -u+x \) -print0 |
    xargs -0 codesign --force --timestamp --options runtime --sign "$SIGN_ID"
  codesign --force --timestamp --options runtime \
    --entitlements packaging/macos/entitlements.plist --sign "$SIGN_ID" "$APP"
  codesign --verify --deep --strict --verbose=2 "$APP"
fi

DMG=build/mac/Sealmail-$VERSION.dmg
rm -f "$DMG"
STAGE=build/mac/dmg; rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"; ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Sealmail $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"

if [ -n "${SIGN_ID:-}" ]; then
  codesign --force --timestamp --sign "$SIGN_ID" "$DMG"
  if [ -n "${NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose "$DMG"
  fi
fi
echo "$DMG"
