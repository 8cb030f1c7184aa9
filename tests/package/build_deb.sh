#!/bin/sh
# make deb: builds libpam-twilio-sms with dpkg-buildpackage -us -uc -b from a copy of this
# tree (its tracked and new files, no build outputs) in a temp dir, so that neither the
# tree (debian/libpam-twilio-sms/, objects) nor its parent (../*.deb) gets build files.
# The .deb, the -dbgsym .ddeb, .buildinfo and .changes go to build/deb/; the build's
# output goes to stderr and the last line on stdout is the path of the .deb.
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
out="$top/build/deb"
command -v git >/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
	echo "make deb: $top is not a git work tree (the copy is made from git ls-files)" >&2
	exit 1
}
work=$(mktemp -d /tmp/tsms-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
# files deleted in the work tree but not in the index are listed too: skipped
git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read --warning=no-failed-read -T - -cf - 2>/dev/null |
	tar -xf - -C "$work/src"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) >&2
version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="libpam-twilio-sms_${version}_${arch}.deb"
[ -f "$work/$deb" ] || { echo "make deb: dpkg-buildpackage made no $deb" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/libpam-twilio-sms*_"$arch".deb "$out"/libpam-twilio-sms*_"$arch".ddeb \
	"$out"/pam-twilio-sms_*_"$arch".buildinfo "$out"/pam-twilio-sms_*_"$arch".changes
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
cp "$work"/*.ddeb "$out"/ 2>/dev/null || true
echo "$out/$deb"
