# tests/package/deb.mk - the Debian package (included by the top Makefile).
#   make deb        installs the missing build dependencies (apt-get, as root), builds
#                   libpam-twilio-sms from a copy of the tree (tests/package/build_deb.sh);
#                   the last line of output is the path of the .deb, under build/deb/
#   make test-deb   as root: builds, lintian, installs, authenticates, pam-auth-update on a
#                   private /etc/pam.d, purges (tests/package/run_deb.py; part of `make test`)

# debian/control's Build-Depends, with what dpkg-buildpackage itself needs
DEB_BUILD_DEBS := build-essential dpkg-dev debhelper fakeroot pkgconf libpam0g-dev libcurl4-openssl-dev \
                  libssl-dev libcjson-dev libsodium-dev libldap-dev libcmocka-dev git

.PHONY: deb test-deb

deb:
	@tests/install-deps.sh $(DEB_BUILD_DEBS)
	@tests/package/build_deb.sh

test-deb:
	python3 tests/package/run_deb.py
