#!/bin/sh
# Installs the Debian packages named as arguments that are not installed yet.
# Used by `make deps`, `make test` and `make demo` on a fresh machine (as root).
set -eu
missing=""
for pkg in "$@"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages:$missing; run as root or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# another apt-get or dpkg (unattended-upgrades, a second suite) may hold the lock: wait for it
lock_wait="-o DPkg::Lock::Timeout=300"
# shellcheck disable=SC2086 # one word per option and package
apt-get $lock_wait update -qq
# shellcheck disable=SC2086
apt-get $lock_wait install -y -qq --no-install-recommends $missing >/dev/null
