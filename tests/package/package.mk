# tests/package/package.mk - `make install` and `make uninstall` against the README's Files
# table (included by the top Makefile).
#   make test-install   as root: build, then install into a temporary DESTDIR, compare the
#                       files with the README, run the installed command, uninstall
#                       (tests/package/run_install.py; part of `make test`)

.PHONY: test-install

test-install:
	$(MAKE) all
	python3 tests/package/run_install.py
